"""Randomness: one ``rng=`` keyword everywhere (SPEC 7), and fast samplers.

``rng`` accepts anything :func:`numpy.random.default_rng` accepts (None, an
int, a :class:`numpy.random.SeedSequence`, a BitGenerator or a Generator).
The same ``rng`` gives bit-identical results.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = [
    "as_rng",
    "sorted_distinct",
    "spawn",
    "uniform_cells",
    "uniform_sample_without_replacement",
    "weighted_sample_without_replacement",
]


def as_rng(rng=None) -> np.random.Generator:
    """Normalise ``rng`` to a :class:`numpy.random.Generator`.

    A Generator is returned as is (so that successive calls advance it), as
    SPEC 7 prescribes.

    >>> bool(as_rng(0).integers(10) == as_rng(0).integers(10))
    True
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (np.random.SeedSequence, np.random.BitGenerator)):
        return np.random.default_rng(rng)
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        if int(rng) < 0:
            raise ValueError(f"rng={rng!r} is negative; a seed must be a non-negative integer")
        return np.random.default_rng(int(rng))
    raise TypeError(
        f"rng={rng!r} ({type(rng).__name__}) is not allowed; use None, a non-negative int, "
        "a numpy SeedSequence, BitGenerator or Generator"
    )


def spawn(rng, n: int) -> list[np.random.Generator]:
    """Independent child generators (per-layer streams), via ``SeedSequence.spawn``."""
    return list(as_rng(rng).spawn(int(n)))


def sorted_distinct(x: np.ndarray) -> np.ndarray:
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
    cand = sorted_distinct(gen.integers(0, n, size=int(t) + 1, dtype=np.int64))
    if excl.size:
        pos = np.searchsorted(excl, cand)
        pos[pos == excl.size] = 0
        cand = cand[excl[pos] != cand]
    if cand.size >= k:
        return _drop_random(cand, cand.size - k, gen)
    # rare: too few; draw the rest from what is still free (still uniform overall)
    more = uniform_cells(n, k - cand.size, gen, sorted_distinct(np.concatenate([excl, cand])))
    return np.sort(np.concatenate([cand, more]))


def uniform_sample_without_replacement(n: int, k: int, rng=None) -> np.ndarray:
    """``k`` distinct integers drawn uniformly from ``range(n)``, as int64 (sorted).

    Every ``k``-subset is equally likely; :func:`uniform_cells` does the work,
    in ``O(k log k)`` when ``k`` is small next to ``n`` (no array of size ``n``).
    """
    n, k = int(n), int(k)
    if k < 0 or k > n:
        raise ValueError(f"k={k} must lie in [0, n={n}] when sampling without replacement")
    return uniform_cells(n, k, as_rng(rng))


def weighted_sample_without_replacement(weights, k: int, rng=None) -> np.ndarray:
    """Draw ``k`` distinct indices with probability proportional to ``weights``.

    Successive-sampling semantics (the same as ``torch.multinomial(...,
    replacement=False)`` and ``numpy.random.Generator.choice(p=...,
    replace=False)``), implemented with exponential keys (Efraimidis–Spirakis /
    Gumbel top-k): key_i = E_i / w_i with E_i ~ Exp(1); the ``k`` smallest keys
    win. Cost O(n) time and memory, no limit on the number of categories
    (``torch.multinomial`` stops at 2**24).

    Parameters
    ----------
    weights : array_like of float, shape (n,)
        Non-negative, finite weights. Zero-weight entries are never drawn.
    k : int
        Number of indices to draw; at most the number of positive weights.
    rng : see :func:`as_rng`

    Returns
    -------
    numpy.ndarray of int64, shape (k,)
        Indices in the order they were drawn (increasing key).

    Examples
    --------
    >>> idx = weighted_sample_without_replacement([0.0, 1.0, 5.0, 0.0], 2, rng=0)
    >>> sorted(idx.tolist())
    [1, 2]
    """
    w = np.asarray(weights)
    if w.ndim != 1:
        raise ValueError(f"weights must be one-dimensional, got shape {w.shape}")
    if not np.issubdtype(w.dtype, np.number) or np.issubdtype(w.dtype, np.complexfloating):
        raise TypeError(f"weights must be real numbers, got dtype {w.dtype}")
    k = int(k)
    if k < 0:
        raise ValueError(f"k={k} must be non-negative")
    if w.size and (not np.all(np.isfinite(w)) or np.any(w < 0)):
        raise ValueError("weights must be finite and non-negative")
    positive = np.flatnonzero(w > 0)
    if k > positive.size:
        raise ValueError(
            f"k={k} exceeds the number of positive weights ({positive.size}); "
            "cannot sample that many distinct indices"
        )
    gen = as_rng(rng)
    if k == 0:
        return np.empty(0, dtype=np.int64)
    wp = w[positive].astype(np.float64, copy=False)
    keys = gen.standard_exponential(positive.size) / wp
    if k < positive.size:
        part = np.argpartition(keys, k - 1)[:k]
    else:
        part = np.arange(positive.size)
    order = part[np.argsort(keys[part], kind="stable")]
    return positive[order].astype(np.int64, copy=False)
