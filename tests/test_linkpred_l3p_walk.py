"""The compiled CH-L3p path walk against a plain loop of its definition, bit for bit."""

from __future__ import annotations

import importlib
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp
from test_linkpred_reference import random_layers

from netshape.linkpred import _l3p_walk, _threads, ch2_l3p, ch3_l3p

ch3_module = importlib.import_module("netshape.linkpred._ch3_l3p")

pytestmark = pytest.mark.skipif(not _l3p_walk.available(),
                                reason="llvmlite (the fast extra) is not installed")


def _layers(seed: int, count: int, max_side: int = 40):
    return random_layers(seed, count, max_side)


def _args(Ab, ch2):
    csr = sp.csr_array(Ab)
    csc = csr.T.tocsr()
    G, H = ch3_module._weights(Ab.astype(np.float32), ch2)
    return [np.asarray(x, np.int64) for x in (csr.indptr, csr.indices, csc.indptr,
                                              csc.indices)], G, H


def _loop(indptr, indices, t_indptr, t_indices, G, H, shape):
    """The definition, one float32 product and one float32 sum at a time."""
    S = np.zeros(shape, np.float32)
    for u in range(shape[0]):
        for p in range(indptr[u], indptr[u + 1]):
            a = indices[p]
            for q in range(t_indptr[a], t_indptr[a + 1]):
                b = t_indices[q]
                if b != u:
                    for r in range(indptr[b], indptr[b + 1]):
                        j = indices[r]
                        S[u, j] = np.float32(S[u, j] + np.float32(G[a, j] * H[u, b]))
        S[u, indices[indptr[u]:indptr[u + 1]]] = 0.0
    return S


@pytest.mark.parametrize("ch2", [False, True], ids=["ch3", "ch2"])
def test_walk_is_bit_identical_to_the_loop(ch2):
    for Ab in _layers(2, 30):
        args, G, H = _args(Ab, ch2)
        ref = _loop(*args, G, H, Ab.shape)
        for parallel in (False, True):
            S = np.zeros(Ab.shape, np.float32)
            _l3p_walk.walk(*args, G, H, S, parallel=parallel)
            np.testing.assert_array_equal(S, ref)


def test_public_scores_are_the_walk():
    for Ab in _layers(3, 10):
        args, G, H = _args(Ab, False)
        np.testing.assert_array_equal(ch3_l3p(Ab, method="numba"), _loop(*args, G, H, Ab.shape))
        args, G, H = _args(Ab, True)
        np.testing.assert_array_equal(ch2_l3p(Ab, method="numba"), _loop(*args, G, H, Ab.shape))


def test_any_thread_split_is_bit_identical_to_one_serial_run():
    # chunks of rows on threads: any number of threads (more than rows included) and
    # any row range give the serial sums and leave the other rows alone
    kernel = _l3p_walk.kernel()
    for Ab in _layers(5, 25, max_side=90):
        args, G, H = _args(Ab, False)
        ref = np.zeros(Ab.shape, np.float32)
        _l3p_walk.walk(*args, G, H, ref, parallel=False)
        for n_threads in (2, 3, 7, 200):
            out = np.zeros(Ab.shape, np.float32)
            raw = _l3p_walk.raw_args(*args, G, H, out)
            _threads.Ranged(kernel, lambda *a: a[7], n_threads)(*raw)
            np.testing.assert_array_equal(out, ref)
        lo, hi = Ab.shape[0] // 3, Ab.shape[0] - Ab.shape[0] // 4
        part = np.full(Ab.shape, -1.0, np.float32)
        part[lo:hi] = 0.0
        raw = _l3p_walk.raw_args(*args, G, H, part)
        _threads.Ranged(kernel, lambda *a: a[7], 3).run(raw, lo, hi)
        np.testing.assert_array_equal(part[lo:hi], ref[lo:hi])
        assert (part[:lo] == -1.0).all() and (part[hi:] == -1.0).all()


def test_arrays_the_kernel_would_overrun_are_refused():
    Ab = np.random.default_rng(0).random((7, 5)) < 0.5
    Ab[0, 0] = True
    (indptr, indices, t_indptr, t_indices), G, H = _args(Ab, False)
    S = np.zeros(Ab.shape, np.float32)
    good = [indptr, indices, t_indptr, t_indices, G, H, S]
    bad_cases = [
        ("indices must", 1, indices.astype(np.int32)),
        ("G must", 4, G[:-1]),
        ("H must", 5, H.astype(np.float64)),
        (r"G must .* shape \(6, 6\)", 6, np.zeros((7, 6), np.float32)),  # S sets the shapes
        ("indptr must", 0, indptr[:-1]),
        (r"indices of indptr must lie in \[0, 5\)", 1, indices + 5),
        (r"indices of t_indptr must lie in \[0, 7\)", 3, t_indices - 1),
        ("H must", 5, np.zeros((6, 6), np.float32)),
        ("indptr must be a CSR", 0, np.concatenate([[1], indptr[1:]])),
        ("indptr must be a CSR", 0, indptr[::-1].copy()),
        # differences of these extremes wrap around to non-negative values
        ("indptr must be a CSR", 0, np.array([0, 2**63 - 1, -2**63, -1, 3, 3, 3, 3])),
        ("lie in", 1, indices[:-1]),  # shorter than indptr[-1]
        ("S must not share memory with H", 6, H.reshape(-1)[:35].reshape(7, 5)),
    ]
    for match, i, value in bad_cases:
        args = list(good)
        args[i] = value
        with pytest.raises(ValueError, match=match):
            _l3p_walk.walk(*args, parallel=False)
    frozen = S.copy()
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        _l3p_walk.walk(*good[:6], frozen, parallel=False)


def _spy_routes(monkeypatch):
    taken = []
    for route, name in (("walk", "_walk_paths"), ("products", "_paths_numpy")):
        real = getattr(ch3_module, name)

        def spy(*args, _real=real, _route=route):
            taken.append(_route)
            return _real(*args)

        monkeypatch.setattr(ch3_module, name, spy)
    return taken


def test_without_llvmlite_auto_takes_the_products(monkeypatch):
    A = np.random.default_rng(1).random((40, 50)) < 0.05
    walked = ch3_l3p(A, method="numba")
    taken = _spy_routes(monkeypatch)
    assert ch3_l3p(A) is not None and taken == ["walk"]
    monkeypatch.setattr(_l3p_walk, "available", lambda: False)
    np.testing.assert_allclose(ch3_l3p(A), walked, rtol=1e-5, atol=1e-7)
    assert taken == ["walk", "products"]
    with pytest.raises(ImportError, match="fast"):
        ch3_l3p(A, method="numba")


def test_a_walk_that_cannot_be_built_leaves_auto_on_the_products(monkeypatch):
    def broken():
        raise RuntimeError("no JIT on this platform")

    monkeypatch.setattr(_l3p_walk, "_build", broken)
    monkeypatch.setattr(_l3p_walk, "_built", [])
    monkeypatch.setattr(_l3p_walk, "_failed", [])
    A = np.random.default_rng(2).random((40, 50)) < 0.05
    taken = _spy_routes(monkeypatch)
    with pytest.warns(RuntimeWarning, match="could not build.*no JIT on this platform"):
        S = ch3_l3p(A)
    assert taken == ["walk", "products"] and not _l3p_walk.available()
    np.testing.assert_allclose(S, ch3_l3p(A, method="numpy"), rtol=1e-5, atol=1e-7)
    assert taken == ["walk", "products", "products"]
    ch3_l3p(A)  # the failure is remembered: no second attempt, no second warning
    assert taken[-1] == "products"
    with pytest.raises(_l3p_walk.BuildError, match="no JIT"):
        ch3_l3p(A, method="numba")


def test_the_walk_needs_no_numba():
    # the compiled walk is built by llvmlite alone: a fresh process never imports numba
    code = ("import sys, numpy as np, netshape as ns\n"
            "A = np.random.default_rng(0).random((300, 200)) < 0.05\n"
            "ns.linkpred.ch3_l3p(A, method='numba'); ns.linkpred.ch2_l3p(A, method='numba')\n"
            "assert 'numba' not in sys.modules, 'numba was imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True)
