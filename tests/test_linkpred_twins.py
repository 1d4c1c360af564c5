"""The routes that need no compilation agree bit for bit with the compiled kernels.

The first calls of a process run numpy twins while numba compiles in the
background (netshape.linkpred._jit); these tests pin that the choice can never
change a result, and that the engine rules do not depend on what is compiled.
(The ch3_l3p walk needs no numba: tests/test_linkpred_l3p_walk.py.)
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import scipy.sparse as sp
from test_linkpred_reference import random_layers

from netshape.linkpred import (
    _dense,
    _jit,
    _kernels,
    _sparse,
    _threads,
    _twins,
    ch2_l3n,
    ch3_l3p,
    choose_path,
)
from netshape.linkpred._ch3_l3p import choose_engine

ch3_module = importlib.import_module("netshape.linkpred._ch3_l3p")


def _layers(seed: int, count: int, max_side: int = 90):
    return random_layers(seed, count, max_side)


@pytest.fixture(scope="module")
def kernels():
    k = _kernels.compiled_kernels()
    if k is None:
        pytest.skip("numba is not installed: there is no compiled kernel to agree with")
    return k


def _l3n_args(Ab, ch3):
    A = sp.csr_matrix(Ab, dtype=np.float32)
    At = A.T.tocsr()
    F = (A @ At).tocsr()
    _sparse._weights(F, np.diff(A.indptr).astype(np.float32), ch3, np)
    G = (At @ A).tocsr()
    rows = np.repeat(np.arange(G.shape[0]), np.diff(G.indptr))
    _sparse._weigh(G, np.diff(At.indptr).astype(np.float32)[rows], ch3, np)
    i64 = [np.asarray(x, dtype=np.int64) for x in (A.indptr, A.indices, F.indptr, F.indices)]
    return [*i64, F.data.astype(np.float32), np.asarray(G.indptr, np.int64),
            np.asarray(G.indices, np.int64), G.data.astype(np.float32)]


@pytest.mark.parametrize("ch3", [False, True], ids=["ch2", "ch3"])
def test_l3n_twin_is_bit_identical(kernels, ch3, monkeypatch):
    monkeypatch.setattr(_twins, "_BLOCK_TERMS", 97)  # many row blocks, including 1-row ones
    for Ab in _layers(1, 60):
        args = _l3n_args(Ab, ch3)
        outs = [np.zeros(Ab.shape, np.float32) for _ in range(3)]
        _twins.l3n_walks(*args, outs[0])
        kernels._l3n[1](*args, outs[1])
        kernels._l3n[0](*args, outs[2])
        np.testing.assert_array_equal(outs[0], outs[1])
        np.testing.assert_array_equal(outs[2], outs[1])


def test_an_error_in_a_kernel_thread_reaches_the_caller():
    calls = []

    def kernel(x, lo, hi):
        calls.append((lo, hi))
        if lo <= 5 < hi:
            raise ValueError("row 5")

    with pytest.raises(ValueError, match="row 5"):
        _threads.Ranged(kernel, lambda x: 10, 3)(None)
    # the other threads went on with the remaining chunks: each row ran exactly once
    rows = [r for lo, hi in calls for r in range(lo, hi)]
    assert sorted(rows) == list(range(10))


@pytest.mark.parametrize("ch3", [False, True], ids=["ch2", "ch3"])
def test_dense_blas_counts_are_bit_identical_to_popcounts(kernels, ch3, monkeypatch):
    for Ab in _layers(3, 60, max_side=200):
        Ab = np.ascontiguousarray(Ab)
        compiled = _dense._counts_compiled(Ab)
        if compiled is None:  # force the kernels this shape picks to be compiled now
            _jit.wait_compiled()
            compiled = _dense._counts_compiled(Ab)
        assert compiled is not None
        fast = _dense._bitgram_numpy(Ab, ch3)
        with monkeypatch.context() as m:
            m.setattr(_dense, "_counts_compiled", lambda _: None)
            blas = _dense._bitgram_numpy(Ab, ch3)
        np.testing.assert_array_equal(blas, fast)


@pytest.mark.parametrize("ch3", [False, True], ids=["ch2", "ch3"])
def test_fill_kernel_is_bit_identical_to_ufuncs(kernels, ch3):
    rng = np.random.default_rng(4)
    for _ in range(40):
        n, m = rng.integers(1, 120, size=2)
        C = rng.integers(0, 40, size=(n, m)).astype(np.float32)
        deg = rng.integers(0, 60, size=m).astype(np.float32)
        ref = _kernels.fill_xp(np, C.copy(), deg, ch3)
        for variant in (0, 1):
            X = C.copy()
            kernels._fill[variant](X, deg, ch3)
            np.testing.assert_array_equal(X, ref)


def test_public_results_do_not_depend_on_what_is_compiled(kernels, monkeypatch):
    # every route with the compiled kernels, then with none ready (the twins)
    layers = _layers(5, 25, max_side=120)
    _jit.wait_compiled()
    calls = [lambda A: ch2_l3n(A, method="dense"), lambda A: ch2_l3n(A, method="sparse")]
    for key in [("gram", False), ("pack_columns", False), ("row_popcounts", False),
                ("l3n", False)]:
        _jit.compiled(*key)
    warm = [[f(A) for f in calls] for A in layers]
    monkeypatch.setattr(_kernels, "pick", lambda *a, **k: None)
    for A, ref in zip(layers, warm, strict=True):
        for f, r in zip(calls, ref, strict=True):
            np.testing.assert_array_equal(f(A), r)


def test_eager_mode_returns_the_compiled_kernel(kernels, monkeypatch):
    monkeypatch.setattr(_jit, "MODE", "eager")
    assert _kernels.pick("l3n", 10) is _jit.ready("l3n", False)
    assert _kernels.pick("l3n", 10) is not None


def test_background_compilation_makes_kernels_ready(kernels):
    _kernels.pick("row_popcounts", 0)
    _jit.wait_compiled()
    assert _jit.ready("row_popcounts", False) is not None
    assert _kernels.pick("row_popcounts", 0) is _jit.ready("row_popcounts", False)


def test_nothing_is_picked_without_numba(monkeypatch):
    monkeypatch.setattr(_kernels, "USE_COMPILED", False)
    assert not _kernels.compiled_available()
    assert _kernels.pick("l3n", 1 << 30) is None
    assert _kernels.compiled_kernels() is None


def test_engine_rules_are_unchanged():
    # path-based CH: grouped products for near-dense layers, the walk for sparse ones
    assert choose_engine(170, 170, int(0.99 * 170 * 170)) == "numpy"
    assert choose_engine(1024, 1024, int(0.05 * 1024 * 1024)) == "numba"
    assert choose_engine(1024, 1024, int(0.13 * 1024 * 1024)) == "numba"
    assert choose_engine(1024, 1024, int(0.15 * 1024 * 1024)) == "numpy"
    # node-based CH: sparse at very low density, dense otherwise
    assert choose_path(4096, 4096, int(0.003 * 4096 * 4096)) == "sparse"
    assert choose_path(1024, 1024, int(0.05 * 1024 * 1024)) == "dense"


@pytest.mark.parametrize(("shape", "density", "engine"),
                         [((170, 170), 0.99, "numpy"), ((1024, 1024), 0.05, "numba")])
def test_auto_follows_the_engine_rule(kernels, monkeypatch, shape, density, engine):
    taken = []
    monkeypatch.setattr(ch3_module, "_walk_paths",
                        lambda csr, G, H: taken.append("numba") or np.zeros(csr.shape, np.float32))
    monkeypatch.setattr(ch3_module, "_paths_numpy",
                        lambda csr, *a: taken.append("numpy") or np.zeros(csr.shape, np.float32))
    monkeypatch.setattr(ch3_module, "_weights", lambda A, ch2: (None, None))
    A = np.random.default_rng(0).random(shape) < density
    ch3_l3p(A, engine="auto")
    assert taken == [engine]


def test_an_interrupted_compilation_is_not_recorded_as_a_failure(monkeypatch):
    """A Ctrl-C during a compile stops that call only; the next call compiles again."""
    calls = []

    def builder(name, parallel):
        calls.append((name, parallel))
        if len(calls) == 1:
            raise KeyboardInterrupt
        if len(calls) == 2:
            return "kernel"
        raise AssertionError("compiled twice")

    monkeypatch.setattr(_jit, "_builder", builder)
    monkeypatch.setattr(_jit, "_done", {})
    monkeypatch.setattr(_jit, "_failed", {})
    monkeypatch.setattr(_jit, "_key_locks", {})
    with pytest.raises(KeyboardInterrupt):
        _jit.compiled("probe", False)
    assert _jit.compiled("probe", False) == "kernel"
    assert _jit.compiled("probe", False) == "kernel"


def test_a_kernel_that_cannot_compile_stays_refused(monkeypatch):
    calls = []

    def builder(name, parallel):
        calls.append(name)
        raise TypeError("no such signature")

    monkeypatch.setattr(_jit, "_builder", builder)
    monkeypatch.setattr(_jit, "_done", {})
    monkeypatch.setattr(_jit, "_failed", {})
    monkeypatch.setattr(_jit, "_key_locks", {})
    for _ in range(2):
        with pytest.raises(TypeError, match="no such signature"):
            _jit.compiled("probe", False)
    assert calls == ["probe"]


def test_kernel_threads_follow_numba_num_threads(monkeypatch):
    import os

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    monkeypatch.setenv("NUMBA_NUM_THREADS", "3")
    assert _threads.threads() == 3
    for unset in ("", "0", "two"):
        monkeypatch.setenv("NUMBA_NUM_THREADS", unset)
        assert _threads.threads() == max(1, usable)
