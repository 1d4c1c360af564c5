"""The compiled link-prediction kernels against plain loops of their definitions, bit for bit.

Each loop below is the definition a kernel of netshape.linkpred._native implements
(float32 scalars, one operation at a time); the kernels must return the same bits
for any split of their outer loop over threads, and refuse arrays that would make
the machine code read or write outside them.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from test_linkpred_reference import random_layers
from test_linkpred_twins import _l3n_args

from netshape.linkpred import _kernels, _native
from netshape.linkpred._threads import Ranged

pytestmark = pytest.mark.skipif(not _kernels.compiled_available(),
                                reason="llvmlite (the fast extra) is not installed")


def _f(c, d, ch3):
    # CH2: (1 + di*) / (1 + de*), di* = c, de* = d - c - 1; clamped: N(v) ⊆ N(u) gives 0
    if c <= 0.0:
        return np.float32(0.0)
    den = d - c
    if den < 1.0:
        den = np.float32(1.0)
    num = np.float32(1.0) if ch3 else c + np.float32(1.0)
    return num / den


def _full_fill(X, deg, ch3, lo, hi):
    for i in range(lo, hi):
        for j in range(X.shape[1]):
            X[i, j] = _f(X[i, j], deg[j], ch3)


def _popcount(x):
    return int(x).bit_count()


def _gram_weights(B, deg, out, by_column, ch3, block, lo, hi):
    # out[u, v] = f(c, deg[v] if by_column else deg[u]) with c = |N(u) ∩ N(v)| counted as
    # popcount(B[u] & B[v]) on bit-packed rows. c is symmetric: each pair is counted once
    # and both out[u, v] and out[v, u] are written.
    n, words = B.shape
    n_blocks = (n + block - 1) // block
    for k in range(lo, hi):
        # long (early) and short (late) row blocks alternate, so equal chunks balance
        b = k // 2 if k % 2 == 0 else n_blocks - 1 - k // 2
        u0 = b * block
        u1 = min(n, u0 + block)
        for v in range(u0, n):
            Bv = B[v]
            for u in range(u0, min(u1, v + 1)):
                Bu = B[u]
                c = 0
                for w in range(words):
                    c += _popcount(Bu[w] & Bv[w])
                cf = np.float32(c)
                if by_column:
                    out[u, v] = _f(cf, deg[v], ch3)
                    out[v, u] = _f(cf, deg[u], ch3)
                else:
                    out[u, v] = _f(cf, deg[u], ch3)
                    out[v, u] = _f(cf, deg[v], ch3)


def _pack_columns(Ab, P, lo, hi):
    # P[j, w] bit r <- Ab[64 w + r, j]: the columns of Ab as bit rows, built from
    # contiguous reads of 64 rows at a time into one word per column
    n, m = Ab.shape
    for w in range(lo, hi):
        acc = np.zeros(m, dtype=np.uint64)
        for r in range(min(64, n - 64 * w)):
            row = Ab[64 * w + r]
            shift = np.uint64(r)
            for j in range(m):
                acc[j] |= np.uint64(row[j]) << shift
        for j in range(m):
            P[j, w] = acc[j]


def _row_popcounts(B, out, lo, hi):
    for u in range(lo, hi):
        c = 0
        for w in range(B.shape[1]):
            c += _popcount(B[u, w])
        out[u] = c


def _zero_links(row, indptr, indices, u):
    for p in range(indptr[u], indptr[u + 1]):
        row[indices[p]] = 0.0


def _add_const(row, indptr, indices, v, w):
    for r in range(indptr[v], indptr[v + 1]):
        row[indices[r]] += w


def _add_data(row, indptr, indices, data, k):
    for r in range(indptr[k], indptr[k + 1]):
        row[indices[r]] += data[r]


def _l3n_walks(indptr, indices, f_indptr, f_indices, f_data, g_indptr, g_indices, g_data, S,
               lo, hi):
    # Sparse CH-L3n into a dense, zeroed S: row u gets Σ_v F[u, v] A[v, :] and
    # Σ_{k ∈ N(u)} G[k, :] (G[k, j] = F'[j, k]); rows are independent tasks.
    for u in range(lo, hi):
        row = S[u]
        for p in range(f_indptr[u], f_indptr[u + 1]):
            _add_const(row, indptr, indices, f_indices[p], f_data[p])
        for p in range(indptr[u], indptr[u + 1]):
            _add_data(row, g_indptr, g_indices, g_data, indices[p])
        _zero_links(row, indptr, indices, u)


def _split(name, args, n_threads):
    kernel = _native.kernel(name)
    Ranged(kernel, _kernels._EXTENTS[name], n_threads)(*args)


@pytest.mark.parametrize("ch3", [False, True], ids=["ch2", "ch3"])
def test_fill_matches_the_loop(ch3):
    rng = np.random.default_rng(1)
    for _ in range(30):
        n, m = rng.integers(1, 40, size=2)
        C = rng.integers(0, 30, size=(n, m)).astype(np.float32)
        C[rng.random((n, m)) < 0.1] = rng.choice([np.nan, 0.5, -1.0])
        deg = rng.integers(0, 40, size=m).astype(np.float32)
        ref = C.copy()
        _full_fill(ref, deg, ch3, 0, n)
        for threads in (1, 3):
            X = C.copy()
            _split("fill", (X, deg, ch3), threads)
            np.testing.assert_array_equal(X, ref)


def _packed(seed, count):
    for Ab in random_layers(seed, count, 150):
        yield Ab, _kernels.pack_rows(Ab.astype(bool))


@pytest.mark.parametrize("ch3", [False, True], ids=["ch2", "ch3"])
@pytest.mark.parametrize("by_column", [False, True], ids=["by-row", "by-column"])
def test_gram_weights_match_the_loop(ch3, by_column):
    rng = np.random.default_rng(2)
    for _, B in _packed(3, 12):
        n = B.shape[0]
        deg = rng.integers(0, 50, size=n).astype(np.float32)
        block = int(rng.integers(1, 9))
        extent = -(-n // block)
        ref = np.full((n, n), -7.0, np.float32)
        _gram_weights(B, deg, ref, by_column, ch3, block, 0, extent)
        for threads in (1, 2):
            out = np.full((n, n), -7.0, np.float32)
            _split("gram", (B, deg, out, by_column, ch3, block), threads)
            np.testing.assert_array_equal(out, ref)
        # a strided output: the transposed view of a larger array
        big = np.full((n + 3, n), -7.0, np.float32)
        _split("gram", (B, deg, big[:n].T, by_column, ch3, block), 2)
        np.testing.assert_array_equal(big[:n].T, ref)


def test_pack_columns_and_popcounts_match_the_loops():
    for Ab, _ in _packed(4, 20):
        Ab = np.ascontiguousarray(Ab.astype(bool))
        n, m = Ab.shape
        words = max(1, -(-n // 64))
        ref = np.zeros((m, words), np.uint64)
        _pack_columns(Ab, ref, 0, words)
        P = np.empty((m, words), np.uint64)
        _split("pack_columns", (Ab, P), 3)
        np.testing.assert_array_equal(P, ref)
        np.testing.assert_array_equal(P, _kernels.pack_rows(Ab.T))
        counts = np.empty(m, np.float32)
        expected = np.empty(m, np.float32)
        _row_popcounts(P, expected, 0, m)
        _split("row_popcounts", (P, counts), 2)
        np.testing.assert_array_equal(counts, expected)
        np.testing.assert_array_equal(counts, Ab.sum(0).astype(np.float32))


@pytest.mark.parametrize("ch3", [False, True], ids=["ch2", "ch3"])
def test_l3n_walks_match_the_loop(ch3):
    for Ab in random_layers(5, 30, 40):
        args = _l3n_args(Ab, ch3)
        ref = np.zeros(Ab.shape, np.float32)
        _l3n_walks(*args, ref, 0, Ab.shape[0])
        for threads in (1, 3):
            S = np.zeros(Ab.shape, np.float32)
            _split("l3n", (*args, S), threads)
            np.testing.assert_array_equal(S, ref)


def test_kernels_refuse_arrays_of_the_wrong_kind():
    fill = _native.kernel("fill")
    deg = np.ones(4, np.float32)
    with pytest.raises(ValueError, match="X must be an aligned C-contiguous 2-D float32"):
        fill(np.zeros((3, 4)), deg, False, 0, 3)
    with pytest.raises(ValueError, match="X must be an aligned C-contiguous"):
        fill(np.zeros((4, 3), np.float32).T, deg, False, 0, 3)
    with pytest.raises(ValueError, match="deg must have one entry per column"):
        fill(np.zeros((3, 5), np.float32), deg, False, 0, 3)
    gram = _native.kernel("gram")
    B = np.zeros((3, 1), np.uint64)
    with pytest.raises(ValueError, match="out must be a writeable"):
        gram(B, np.ones(3, np.float32), np.zeros((3, 4), np.float32), False, False, 2, 0, 2)
    packed = np.zeros((4, 2), np.uint64)
    with pytest.raises(ValueError, match="apart from B"):  # out written over its own input
        gram(packed, np.ones(4, np.float32), packed.view(np.float32)[:, :4], False, False, 2, 0,
             2)
    with pytest.raises(ValueError, match="P must be a writeable"):
        _native.kernel("pack_columns")(np.zeros((70, 3), bool), np.zeros((3, 1), np.uint64), 0, 1)
    with pytest.raises(ValueError, match="indptr must be an aligned"):
        _native.kernel("l3n")(*([np.zeros(2, np.int32)] + [np.zeros(2, np.int64)] * 3
                                + [np.zeros(0, np.float32)] + [np.zeros(2, np.int64)] * 2
                                + [np.zeros(0, np.float32), np.zeros((1, 1), np.float32)]),
                              0, 1)


def test_building_the_kernels_never_imports_numba():
    code = ("import sys, numpy as np; from netshape.linkpred import ch2_l3n; "
            "from netshape.linkpred import _jit; _jit.MODE = 'eager'; "
            "A = np.random.default_rng(0).random((300, 200)) < 0.05; "
            "ch2_l3n(A, method='dense'); ch2_l3n(A, method='sparse'); "
            "assert 'numba' not in sys.modules, 'numba was imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_any_nonzero_byte_of_a_bool_array_is_one_link():
    rng = np.random.default_rng(6)
    for Ab in random_layers(7, 10, 150):
        Ab = np.ascontiguousarray(Ab.astype(bool))
        raw = Ab.view(np.uint8) * rng.integers(1, 256, size=Ab.shape).astype(np.uint8)
        odd = raw.view(bool)  # True stored as bytes other than 1
        n, m = Ab.shape
        P = np.empty((m, max(1, -(-n // 64))), np.uint64)
        _split("pack_columns", (odd, P), 2)
        np.testing.assert_array_equal(P, _kernels.pack_rows(Ab.T))


def test_kernels_refuse_an_outer_range_outside_the_loop():
    fill = _native.kernel("fill")
    X, deg = np.zeros((3, 4), np.float32), np.ones(4, np.float32)
    for lo, hi in ((0, 4), (-1, 2), (2, 1)):
        with pytest.raises(ValueError, match="must satisfy 0 <= lo <= hi <= 3"):
            fill(X, deg, False, lo, hi)
    with pytest.raises(ValueError, match="block must be a positive number of rows, got 0"):
        _native.kernel("gram")(np.zeros((3, 1), np.uint64), np.ones(3, np.float32),
                               np.zeros((3, 3), np.float32), False, False, 0, 0, 1)


def test_modules_built_and_dropped_leave_later_builds_working():
    # each engine owns its own target machine: dropping one must not break the next build
    code = ("import gc; from llvmlite import ir; from netshape import _llvm; "
            "from netshape.linkpred import _native; "
            "mods = []\n"
            "for _ in range(3):\n"
            "    m = ir.Module(); _native._fill(m)\n"
            "    mods.append(_llvm.build(m, {'fill': [_native.P] * 2 + [_native.I] * 4}))\n"
            "del mods; _llvm._kept.clear(); gc.collect()\n"
            "import numpy as np; X = np.full((2, 3), 2.0, np.float32)\n"
            "m = ir.Module(); _native._fill(m)\n"
            "f = _llvm.build(m, {'fill': [_native.P] * 2 + [_native.I] * 4})['fill']\n"
            "f(X.ctypes.data, np.ones(3, np.float32).ctypes.data, 0, 3, 0, 2)\n"
            "assert (X == 3.0).all(), X")
    subprocess.run([sys.executable, "-c", code], check=True)
