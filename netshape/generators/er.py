"""Erdős–Rényi bipartite layer: a uniformly random set of exactly ``m`` links."""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from .._random import as_rng
from ._lattice import check_sizes, csr_from_linear

__all__ = ["er", "uniform_cells"]


def _sorted_distinct(x: np.ndarray) -> np.ndarray:
    # np.unique is hash-based and slow on large int arrays in numpy 2.x; sort + mask is not
    x = np.sort(x)
    if x.size:
        keep = np.empty(x.size, dtype=bool)
        keep[0] = True
        np.not_equal(x[1:], x[:-1], out=keep[1:])
        x = x[keep]
    return x


def _drop_random(x: np.ndarray, n_drop: int, gen: np.random.Generator) -> np.ndarray:
    """Remove ``n_drop`` uniformly chosen entries of ``x`` (order kept)."""
    if n_drop <= 0:
        return x
    drop = uniform_cells(x.size, n_drop, gen)
    keep = np.ones(x.size, dtype=bool)
    keep[drop] = False
    return x[keep]


def uniform_cells(n: int, k: int, gen: np.random.Generator,
                  exclude: np.ndarray | None = None) -> np.ndarray:
    """``k`` distinct integers drawn uniformly from ``range(n)`` minus ``exclude``, sorted.

    ``exclude`` must be sorted and distinct. Sparse requests use rejection
    (draw with replacement, sort, drop repeats and excluded cells, then discard
    a uniform random surplus): by exchangeability the distinct cells hit are a
    uniform subset of their size, so the result is a uniform ``k``-subset.
    Dense requests enumerate the free cells instead. Cost ``O(k log k)`` when
    ``k`` is a small fraction of the free cells, ``O(n)`` otherwise.

    >>> cells = uniform_cells(10**12, 5, np.random.default_rng(0), exclude=np.array([3, 7]))
    >>> cells.size, bool(np.all(np.diff(cells) > 0)), bool(np.isin([3, 7], cells).any())
    (5, True, False)
    """
    n, k = int(n), int(k)
    excl = np.empty(0, np.int64) if exclude is None else np.asarray(exclude, np.int64)
    free = n - excl.size
    if not 0 <= k <= free:
        raise ValueError(f"k={k} must lie in [0, {free}] (free cells of {n})")
    if k == 0:
        return np.empty(0, dtype=np.int64)
    if n <= 1 << 16:
        # small grids: a permutation is cheap and ends the recursion of the surplus drops
        pool = np.setdiff1d(np.arange(n, dtype=np.int64), excl, assume_unique=True)
        return np.sort(pool[gen.permutation(pool.size)[:k]])
    if 2 * k > free:
        mask = np.ones(n, dtype=bool)
        mask[excl] = False
        cells = np.flatnonzero(mask)
        return _drop_random(cells, free - k, gen)
    # expected distinct free cells from t draws: free * (1 - exp(-t / n)); add a margin
    t = -n * math.log1p(-k / free) + 4.0 * math.sqrt(k) + 16
    cand = _sorted_distinct(gen.integers(0, n, size=int(t) + 1, dtype=np.int64))
    if excl.size:
        pos = np.searchsorted(excl, cand)
        pos[pos == excl.size] = 0
        cand = cand[excl[pos] != cand]
    if cand.size >= k:
        return _drop_random(cand, cand.size - k, gen)
    # rare: too few; draw the rest from what is still free (still uniform overall)
    more = uniform_cells(n, k - cand.size, gen, _sorted_distinct(np.concatenate([excl, cand])))
    return np.sort(np.concatenate([cand, more]))


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
