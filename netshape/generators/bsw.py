"""Bipartite small world (BSW): a ring lattice with each link rewired with probability beta."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .._random import as_rng
from .._validation import check_unit_interval
from ._lattice import check_sizes, csr_from_linear, fixed_degrees, lattice, linear_indices
from .er import uniform_cells

__all__ = ["bsw"]


def bsw(n_in: int, n_out: int, density: float, *, beta: float = 0.0, rng=None) -> sp.csr_array:
    r"""Bipartite small-world layer (Watts–Strogatz on a bipartite ring).

    **Lattice** (``beta = 0``): inputs sit at ring positions ``i + 1/2``,
    output ``j`` has its centre at :math:`c_j = (j + \tfrac12)\, n_{in}/n_{out}`
    and links to the :math:`k_j` inputs nearest to :math:`c_j` in ring distance,
    where :math:`k_j \in \{\lfloor K \rfloor, \lfloor K \rfloor + 1\}`,
    :math:`K = m / n_{out}` and :math:`\sum_j k_j = m = \mathrm{round}(\text{density}\,
    n_{in} n_{out})`. When :math:`n_{out} \lfloor K \rfloor \ge n_{in}` every input
    has a link. This is exactly ``brf(r=0, degrees="fixed")``.

    **Rewiring**: every lattice link is independently chosen with probability
    ``beta``; the chosen links are removed and the same number of new links is
    drawn uniformly among the cells not held by a kept link (a removed cell can
    come back). The link count stays exactly ``m`` and there are no duplicates;
    at ``beta = 1`` nothing is kept, so the layer is exactly Erdős–Rényi.

    Parameters
    ----------
    n_in, n_out : int
        Number of input and output neurons.
    density : float in (0, 1]
        Fraction of possible links (count rounded half up).
    beta : float in [0, 1]
        Rewiring probability.
    rng : None, int, SeedSequence, BitGenerator or Generator
        Randomness (SPEC 7); unused when ``beta = 0``.

    Returns
    -------
    scipy.sparse.csr_array of bool
        The ``(n_in, n_out)`` biadjacency (torch mask ``A.T``).

    Examples
    --------
    >>> bsw(6, 3, 1/3).toarray().astype(int)
    array([[1, 0, 0],
           [1, 0, 0],
           [0, 1, 0],
           [0, 1, 0],
           [0, 0, 1],
           [0, 0, 1]])
    >>> bsw(100, 50, 0.1, beta=0.5, rng=0).nnz
    500
    """
    n_in, n_out, m = check_sizes(n_in, n_out, density)
    beta = check_unit_interval(beta, "beta")
    gen = as_rng(rng)
    base = lattice(n_in, n_out, fixed_degrees(m, n_out))
    if beta == 0.0:
        return base
    lin = linear_indices(base)
    moved = gen.random(lin.size) < beta
    n_moved = int(moved.sum())
    if n_moved == 0:
        return base
    kept = lin[~moved]
    new = uniform_cells(n_in * n_out, n_moved, gen, exclude=kept)
    merged = np.concatenate([kept, new])
    merged.sort(kind="stable")  # two sorted runs: the stable sort merges them in linear time
    return csr_from_linear(n_in, n_out, merged)
