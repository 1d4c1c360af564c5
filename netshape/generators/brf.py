"""Bipartite receptive field (BRF): links drawn near each output's centre on the input ring."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .._random import as_rng
from .._validation import check_choice, check_unit_interval
from ._brf_sampler import sample_receptive_fields
from ._lattice import check_sizes, csr_from_columns, fixed_degrees, lattice

__all__ = ["brf", "uniform_degrees"]


def uniform_degrees(m: int, n_in: int, n_out: int, gen: np.random.Generator) -> np.ndarray:
    """Output degrees drawn uniformly, then nudged so that they sum exactly to ``m``.

    With ``b = floor(m / n_out)`` and ``h = min(b, n_in - b)``, each degree is
    drawn independently and uniformly from the integers ``[b - h, b + h]`` (so
    it lies in ``[0, n_in]`` and its mean is ``b``). The difference between the
    sum and ``m`` is then removed one unit at a time, each unit going to an
    output drawn uniformly among those that still have room (``< n_in`` when
    adding, ``> 0`` when removing). ``m < n_out`` gives ``h = 0``: ``m`` outputs
    chosen uniformly get one link each.

    >>> k = uniform_degrees(500, 100, 50, np.random.default_rng(0))
    >>> int(k.sum()), int(k.min()) >= 0, int(k.max()) <= 100
    (500, True, True)
    """
    b = m // n_out
    h = min(b, n_in - b)
    k = gen.integers(b - h, b + h + 1, size=n_out, dtype=np.int64)
    diff = m - int(k.sum())
    while diff != 0:
        step = 1 if diff > 0 else -1
        room = np.flatnonzero(k < n_in) if step > 0 else np.flatnonzero(k > 0)
        pick = gen.choice(room, size=min(abs(diff), room.size), replace=False)
        k[pick] += step
        diff -= step * pick.size
    return k


def brf(n_in: int, n_out: int, density: float, *, r: float = 0.0, degrees: str = "fixed",
        rng=None) -> sp.csr_array:
    r"""Bipartite receptive-field layer (the paper's Eqs. 7–8, with fixed or uniform degrees).

    Inputs sit at ring positions :math:`i + \tfrac12` (circumference
    :math:`n_{in}`); output :math:`j` has its centre at
    :math:`c_j = (j + \tfrac12)\, n_{in} / n_{out}` (a fractional stride, so the
    centres cover the ring evenly). With the ring distance
    :math:`d_{ij} = \min(|i + \tfrac12 - c_j|,\ n_{in} - |i + \tfrac12 - c_j|)`,
    output :math:`j` draws :math:`k_j` distinct inputs by successive sampling
    without replacement with

    .. math:: p_{ij} \propto (1 + d_{ij})^{-(1 - r)/r}.

    ``r = 0`` takes the :math:`k_j` nearest inputs (ties at equal distance go
    to the window further along the ring), which is exactly ``bsw(beta=0)``
    when ``degrees="fixed"``; ``r = 1`` draws uniformly; the spread grows
    steadily with ``r`` in between. The output degrees are conserved:

    * ``"fixed"`` — :math:`k_j \in \{\lfloor K\rfloor, \lfloor K\rfloor + 1\}`,
      :math:`K = m / n_{out}`, the larger ones spread evenly;
    * ``"uniform"`` — see :func:`uniform_degrees` (uniform on
      :math:`[b - h, b + h]`, adjusted to sum to :math:`m`).

    At ``r = 0`` with fixed degrees the windows tile the ring: no input is left
    without a link whenever :math:`n_{out} \lfloor K \rfloor \ge n_{in}`.

    Drawing costs in proportion to the links, not to ``n_in * n_out``: see
    :mod:`netshape.generators._brf_sampler` (exact, exponential keys near the
    centre and a thinned Poisson process further away).

    Parameters
    ----------
    n_in, n_out : int
        Number of input and output neurons.
    density : float in (0, 1]
        Fraction of possible links; ``m = round(density * n_in * n_out)``.
    r : float in [0, 1]
        Spatial randomness: 0 nearest inputs, 1 uniform.
    degrees : {"fixed", "uniform"}
        Output degree distribution.
    rng : None, int, SeedSequence, BitGenerator or Generator
        Randomness (SPEC 7).

    Returns
    -------
    scipy.sparse.csr_array of bool, shape ``(n_in, n_out)``
        Rows are inputs, columns outputs (a torch mask is ``A.T``); column
        ``j`` holds exactly ``k_j`` links.

    Examples
    --------
    >>> A = brf(784, 1568, 0.05, r=0.25, rng=0)
    >>> A.shape, A.nnz
    ((784, 1568), 61466)
    >>> from netshape.generators import bsw
    >>> (brf(12, 6, 0.25) != bsw(12, 6, 0.25)).nnz
    0
    """
    n_in, n_out, m = check_sizes(n_in, n_out, density)
    r = check_unit_interval(r, "r")
    check_choice(degrees, "degrees", ("fixed", "uniform"))
    gen = as_rng(rng)
    if degrees == "fixed":
        k = fixed_degrees(m, n_out)
    else:
        k = uniform_degrees(m, n_in, n_out, gen)
    if r == 0.0:
        return lattice(n_in, n_out, k)
    alpha = (1.0 - r) / r
    counts, rows = sample_receptive_fields(n_in, n_out, k, alpha, gen)
    return csr_from_columns(n_in, n_out, counts, rows)
