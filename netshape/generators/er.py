"""Erdős–Rényi bipartite layer: a uniformly random set of exactly ``m`` links."""

from __future__ import annotations

import scipy.sparse as sp

from .._random import as_rng, uniform_cells
from ._lattice import check_sizes, csr_from_linear

__all__ = ["er", "uniform_cells"]


def er(n_in: int, n_out: int, density: float, *, rng=None) -> sp.csr_array:
    """Erdős–Rényi bipartite layer with exactly ``m = round(density * n_in * n_out)`` links.

    Every set of ``m`` cells of the ``n_in x n_out`` grid is equally likely
    (the uniform ``G(n_in, n_out, m)`` model), so each link is present with
    probability ``m / (n_in n_out)``.

    Parameters
    ----------
    n_in, n_out : int
        Number of input and output neurons (positive).
    density : float in (0, 1]
        Fraction of the ``n_in * n_out`` possible links; the count is rounded half up.
    rng : None, int, SeedSequence, BitGenerator or Generator
        Randomness (SPEC 7); the same seed gives the same layer.

    Returns
    -------
    scipy.sparse.csr_array of bool, shape ``(n_in, n_out)``
        Biadjacency: rows are inputs, columns outputs (a torch mask is ``A.T``).

    Examples
    --------
    >>> A = er(8, 4, 0.25, rng=0)
    >>> A.shape, A.nnz
    ((8, 4), 8)
    """
    n_in, n_out, m = check_sizes(n_in, n_out, density)
    gen = as_rng(rng)
    lin = uniform_cells(n_in * n_out, m, gen)
    return csr_from_linear(n_in, n_out, lin)
