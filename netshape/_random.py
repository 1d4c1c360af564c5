"""Randomness: one ``rng=`` keyword everywhere (SPEC 7), and fast samplers.

``rng`` accepts anything :func:`numpy.random.default_rng` accepts (None, an
int, a :class:`numpy.random.SeedSequence`, a BitGenerator or a Generator).
The same ``rng`` gives bit-identical results.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = [
    "as_rng",
    "spawn",
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


def uniform_sample_without_replacement(n: int, k: int, rng=None) -> np.ndarray:
    """``k`` distinct integers drawn uniformly from ``range(n)``, as int64.

    Every ``k``-subset is equally likely; the order of the returned values is
    unspecified. Scales to huge ``n`` with small ``k`` (no array of size ``n`` is built
    when ``k`` is much smaller than ``n``).
    """
    n, k = int(n), int(k)
    if k < 0 or k > n:
        raise ValueError(f"k={k} must lie in [0, n={n}] when sampling without replacement")
    gen = as_rng(rng)
    if k == 0:
        return np.empty(0, dtype=np.int64)
    if k * 4 >= n:
        return gen.permutation(n)[:k].astype(np.int64, copy=False)
    # Rejection with oversampling: expected cost O(k log k), no O(n) allocation.
    # Distinct values hit by i.i.d. uniform draws form a uniform subset of their
    # size (exchangeability), so dropping a uniform random surplus keeps the
    # result a uniform k-subset. Sorting + a mask is much faster than np.unique.
    out = np.empty(0, dtype=np.int64)
    while out.size < k:
        draw = gen.integers(0, n, size=int((k - out.size) * 1.25) + 16, dtype=np.int64)
        merged = np.sort(np.concatenate([out, draw]))
        keep = np.empty(merged.size, dtype=bool)
        keep[0] = True
        np.not_equal(merged[1:], merged[:-1], out=keep[1:])
        out = merged[keep]
    if out.size > k:
        out = out[gen.permutation(out.size)[:k]]
    return out


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
