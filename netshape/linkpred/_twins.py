"""Numpy twin of the walking kernel: the same float32 sums in the same order, no compilation.

The compiled ``l3n`` kernel (:mod:`netshape.linkpred._native`) adds, for each
input row, a sequence of float32 terms into the row's entries. ``np.add.at`` applies
unbuffered additions in the order of its index array, so listing the very same
terms in the very same order gives bit-identical sums: the twin stands in for
the kernel while it is built (see :mod:`netshape.linkpred._jit`) at the
cost of materialising the terms, a block of rows at a time.
"""

from __future__ import annotations

import numpy as np

#: terms materialised per block of rows (three arrays of this many entries)
_BLOCK_TERMS = 1 << 21


def _ragged(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``concatenate([arange(s, s + n) for s, n in zip(starts, lengths)])`` without a loop."""
    total = int(lengths.sum())
    ends = np.cumsum(lengths)
    return np.repeat(starts - (ends - lengths), lengths) + np.arange(total, dtype=np.int64)


def _row_blocks(terms_per_row: np.ndarray):
    """Consecutive row ranges holding about ``_BLOCK_TERMS`` terms each (at least one row)."""
    n = terms_per_row.size
    cum = np.concatenate([[0], np.cumsum(terms_per_row)])
    u0 = 0
    while u0 < n:
        u1 = int(np.searchsorted(cum, cum[u0] + _BLOCK_TERMS, side="right")) - 1
        u1 = min(n, max(u0 + 1, u1))
        yield u0, u1
        u0 = u1


def _per_row(indptr: np.ndarray, per_entry: np.ndarray) -> np.ndarray:
    """Sum of ``per_entry`` over each CSR row."""
    cum = np.concatenate([[0], np.cumsum(per_entry)])
    return cum[indptr[1:]] - cum[indptr[:-1]]


def _zero_links(S, indptr, indices, u0, u1):
    rows = np.repeat(np.arange(u0, u1), np.diff(indptr[u0:u1 + 1]))
    S[rows, indices[indptr[u0]:indptr[u1]]] = 0.0


def l3n_walks(indptr, indices, f_indptr, f_indices, f_data, g_indptr, g_indices, g_data, S):
    """Twin of the ``l3n`` kernel: ``S[u] += Σ_v F[u, v] A[v]``, then ``+= Σ_{k ∈ N(u)} G[k]``."""
    n_out = S.shape[1]
    flat = S.reshape(-1)
    deg = np.diff(indptr)
    g_len = np.diff(g_indptr)
    f_terms = _per_row(f_indptr, deg[f_indices])
    g_terms = _per_row(indptr, g_len[indices])
    for u0, u1 in _row_blocks(f_terms + g_terms):
        # F part of the block's rows, then their G part: per entry the kernel's order
        p = np.arange(f_indptr[u0], f_indptr[u1])
        v = f_indices[p]
        n = deg[v]
        owner = np.repeat(np.repeat(np.arange(u0, u1), np.diff(f_indptr[u0:u1 + 1])), n)
        np.add.at(flat, owner * n_out + indices[_ragged(indptr[v], n)], np.repeat(f_data[p], n))
        p = np.arange(indptr[u0], indptr[u1])
        k = indices[p]
        n = g_len[k]
        owner = np.repeat(np.repeat(np.arange(u0, u1), np.diff(indptr[u0:u1 + 1])), n)
        r = _ragged(g_indptr[k], n)
        np.add.at(flat, owner * n_out + g_indices[r], g_data[r])
        _zero_links(S, indptr, indices, u0, u1)
