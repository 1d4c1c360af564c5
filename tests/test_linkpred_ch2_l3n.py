"""CH2-L3n / CH3-L3n: every path and backend against the plain-loop definition."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from test_linkpred_reference import TINY, as_numpy, ch_node, converter, support

from netshape.linkpred import _jit, _kernels, ch2_l3n, ch3_l3n, choose_path


@pytest.fixture(params=[True, False], ids=["numba", "no-numba"])
def numba_mode(request, monkeypatch):
    monkeypatch.setattr(_kernels, "USE_COMPILED", request.param)
    return request.param


@pytest.mark.parametrize("method", ["dense", "sparse", "auto"])
@pytest.mark.parametrize("ch3", [False, True], ids=["ch2", "ch3"])
def test_matches_loop_definition(small_layers, method, ch3, numba_mode):
    fn = ch3_l3n if ch3 else ch2_l3n
    for A in small_layers:
        S = fn(A, method=method)
        assert isinstance(S, np.ndarray) and S.dtype == np.float32 and S.shape == A.shape
        np.testing.assert_allclose(S, ch_node(A, ch3=ch3), rtol=1e-6, atol=0)


@pytest.mark.parametrize("family", ["numpy", "torch"])
@pytest.mark.parametrize("budget", [1, 64, 300])
def test_tiled_dense_matches_untiled(small_layers, budget, numba_mode, family):
    conv = converter(family)
    for A in small_layers:
        ref = ch_node(A)
        S = ch2_l3n(conv(A), method="dense", memory_budget=budget)
        np.testing.assert_allclose(as_numpy(S), ref, rtol=1e-6)


def test_zero_on_links_and_support(small_layers):
    for A in small_layers:
        for method in ("dense", "sparse"):
            S = ch2_l3n(A, method=method)
            assert np.isfinite(S).all()
            assert (S[A != 0] == 0).all()
            np.testing.assert_array_equal(S > 0, support(A))


def test_hand_computed():
    S = ch2_l3n(TINY)
    assert S[0, 2] == 7.0 and S[0, 3] == 3.0 and S[2, 0] == 8.0
    assert ch3_l3n(TINY)[0, 2] == pytest.approx(1 / 1 + 1 / 2 + 1 / 1 + 1 / 1)


def test_denominator_clamp_when_neighbourhood_contained():
    # input 1's outputs {0} are a subset of input 0's {0, 1}: deg 1 - C 1 = 0 -> clamped to 1
    A = np.array([[1, 1, 0], [1, 0, 1]])
    S = ch2_l3n(A, method="dense")
    assert np.isfinite(S).all()
    np.testing.assert_allclose(S, ch_node(A))


@pytest.mark.parametrize("seed", range(3))
def test_dense_sparse_agree_on_larger_layers(seed):
    rng = np.random.default_rng(seed)
    A = rng.random((150, 97)) < 0.04
    Sd = ch2_l3n(A, method="dense")
    np.testing.assert_allclose(ch2_l3n(A, method="sparse"), Sd, rtol=1e-5)
    np.testing.assert_allclose(ch2_l3n(A, method="dense", memory_budget=20_000), Sd, rtol=1e-5)


@pytest.mark.parametrize("seed", range(3))
def test_torch_dense_agrees_on_larger_layers(seed, torch):
    A = np.random.default_rng(seed).random((150, 97)) < 0.04
    np.testing.assert_allclose(ch2_l3n(torch.from_numpy(A), method="dense").numpy(),
                               ch2_l3n(A, method="dense"), rtol=1e-5)


def test_numba_and_fallback_agree_bitwise_on_counts(monkeypatch):
    A = np.random.default_rng(7).random((120, 80)) < 0.1
    fast = ch2_l3n(A, method="dense")
    monkeypatch.setattr(_kernels, "USE_COMPILED", False)
    np.testing.assert_allclose(ch2_l3n(A, method="dense"), fast, rtol=1e-6)


def test_nonbinary_values_are_links():
    A = TINY * np.array([2.5, -1.0, 7.0, 0.5])
    np.testing.assert_array_equal(ch2_l3n(A), ch2_l3n(TINY))


def test_scipy_families():
    A = sp.csr_matrix(TINY)
    S = ch2_l3n(A, method="sparse")
    assert isinstance(S, sp.csr_array) and S.dtype == np.float32
    np.testing.assert_array_equal(S.toarray(), ch2_l3n(TINY))
    assert (S.data > 0).all()  # only positive scores stored
    for method in ("dense", "auto"):
        out = ch2_l3n(sp.coo_array(TINY), method=method)
        assert isinstance(out, np.ndarray)
        np.testing.assert_array_equal(out, ch2_l3n(TINY))


@pytest.mark.parametrize("dtype", ["bool", "float16", "float32", "float64", "int8", "int64"])
@pytest.mark.parametrize("method", ["dense", "sparse", "auto"])
def test_torch_in_torch_out(dtype, method, torch):
    # nn.Linear orientation (out, in)
    mask = torch.from_numpy(TINY.T.copy()).to(getattr(torch, dtype))
    S = ch2_l3n(mask.T, method=method)  # a non-contiguous view
    assert isinstance(S, torch.Tensor) and S.dtype == torch.float32 and S.device == mask.device
    np.testing.assert_array_equal(S.numpy(), ch2_l3n(TINY))


@pytest.mark.gpu
def test_torch_cuda_matches_cpu(torch):
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA device")
    A = np.random.default_rng(0).random((300, 200)) < 0.05
    ref = ch2_l3n(A, method="dense")
    for method in ("dense", "sparse", "auto"):
        S = ch2_l3n(torch.from_numpy(A).cuda(), method=method)
        assert S.is_cuda and S.dtype == torch.float32
        np.testing.assert_allclose(S.cpu().numpy(), ref, rtol=1e-5)
    St = ch2_l3n(torch.from_numpy(A).cuda(), method="dense", memory_budget=100_000)
    np.testing.assert_allclose(St.cpu().numpy(), ref, rtol=1e-5)


@pytest.mark.gpu
def test_cupy_matches_cpu():
    from netshape._backend import has_cupy

    if not has_cupy():
        pytest.skip("CuPy has no device")
    import cupy

    A = np.random.default_rng(0).random((300, 200)) < 0.05
    ref = ch2_l3n(A, method="dense")
    for method in ("dense", "sparse", "auto"):
        S = ch2_l3n(cupy.asarray(A), method=method)
        assert isinstance(S, cupy.ndarray) and S.dtype == cupy.float32
        np.testing.assert_allclose(S.get(), ref, rtol=1e-5)


def test_choose_path_rule():
    # ultra-sparse large layers go sparse, moderately dense ones go dense
    assert choose_path(4096, 4096, int(0.001 * 4096**2)) == "sparse"
    assert choose_path(4096, 4096, int(0.003 * 4096**2)) == "sparse"
    assert choose_path(4096, 4096, int(0.05 * 4096**2)) == "dense"
    assert choose_path(1024, 1024, int(0.3 * 1024**2)) == "dense"
    assert choose_path(10, 10, 0) == "sparse"
    # monotone in density at a fixed size
    paths = [choose_path(2048, 2048, int(p * 2048**2)) for p in np.geomspace(1e-4, 0.5, 30)]
    assert paths == sorted(paths, key=lambda x: x != "sparse")


@pytest.mark.parametrize("bad, exc, words", [
    (np.zeros((2, 3, 4)), ValueError, "2-D"),
    (np.zeros((0, 3)), ValueError, "empty dimension"),
    (np.array([[1.0, np.nan]]), ValueError, "non-finite"),
    (np.array([[1.0, np.inf]]), ValueError, "non-finite"),
    (np.array([[1j, 0]]), TypeError, "real"),
    (np.array([["a", "b"]]), TypeError, "dtype"),
    ({"a": 1}, TypeError, "not a supported topology"),
])
def test_bad_input(bad, exc, words):
    with pytest.raises(exc, match=words):
        ch2_l3n(bad)


def test_bad_torch_input(torch):
    with pytest.raises(ValueError, match="non-finite"):
        ch2_l3n(torch.tensor([[1.0, float("nan")]]))
    with pytest.raises(ValueError, match="2-D"):
        ch2_l3n(torch.ones(3))


def test_bad_method_and_budget():
    with pytest.raises(ValueError, match="method='fast'.*'auto', 'dense', 'sparse'"):
        ch2_l3n(TINY, method="fast")
    with pytest.raises(ValueError, match="memory_budget"):
        ch2_l3n(TINY, memory_budget=0)
    with pytest.raises(TypeError, match="memory_budget"):
        ch2_l3n(TINY, memory_budget="1GB")


def test_memory_budget_bounds_the_dense_working_set():
    import tracemalloc

    # 2048 inputs: the untiled C = A Aᵀ alone is 16 MiB of float32
    A = np.random.default_rng(1).random((2048, 64)) < 0.05
    peaks = {}
    for budget in (1 << 20, None):
        # kernels compiling in the background allocate too: let them finish first
        ch2_l3n(A, method="dense", memory_budget=budget)
        _jit.wait_compiled()
        tracemalloc.start()
        S = ch2_l3n(A, method="dense", memory_budget=budget)
        peaks[budget] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        np.testing.assert_allclose(S, ch2_l3n(A, method="sparse"), rtol=1e-5)
    assert peaks[1 << 20] < 4.0  # A as float32 + S (0.5 MiB each) + one ~1 MiB tile
    assert peaks[None] > 16.0


@pytest.mark.parametrize("budget", [64, 1 << 30])
def test_array_api_dense_path_runs_on_numpy(small_layers, budget):
    # the CuPy dense path is dense_xp with xp=cupy; numpy exercises the same code on CPU
    import numpy

    from netshape.linkpred._dense import dense_xp

    for A in small_layers:
        S = dense_xp(numpy, A != 0, budget=budget)
        assert S.dtype == np.float32
        np.testing.assert_allclose(S, ch_node(A), rtol=1e-6)
        np.testing.assert_allclose(dense_xp(numpy, A != 0, ch3=True, budget=budget),
                                   ch_node(A, ch3=True), rtol=1e-6)


def _kernels_or_skip():
    k = _kernels.compiled_kernels()
    if k is None:
        pytest.skip("numba is not installed: the bit-packed Gram path does not exist")
    return k


def test_bit_packing_of_rows_and_columns():
    k = _kernels_or_skip()
    rng = np.random.default_rng(7)
    for n, m in [(0, 5), (5, 0), (1, 1), (63, 65), (64, 64), (65, 130), (200, 3), (3, 200)]:
        Ab = rng.random((n, m)) < 0.3
        rows = _kernels.pack_rows(Ab)
        assert rows.dtype == np.uint64 and rows.shape == (n, max(1, -(-m // 64)))
        # bit r of word w is entry 64 w + r
        for u, j in zip(*np.nonzero(Ab), strict=True):
            assert (int(rows[u, j // 64]) >> int(j % 64)) & 1
        assert int(np.sum([bin(int(x)).count("1") for x in rows.ravel()])) == Ab.sum()
        np.testing.assert_array_equal(k.pack_columns(Ab), _kernels.pack_rows(Ab.T))
        np.testing.assert_array_equal(k.row_popcounts(rows), Ab.sum(axis=1))


@pytest.mark.parametrize("variant", [0, 1], ids=["parallel", "serial"])
@pytest.mark.parametrize("ch3", [False, True], ids=["ch2", "ch3"])
def test_gram_weights_match_counts_then_fill(variant, ch3):
    # the fused popcount kernel against C = A Aᵀ by BLAS followed by the plain fill
    k = _kernels_or_skip()
    rng = np.random.default_rng(11)
    for _ in range(30):
        n, m = rng.integers(1, 150, size=2)
        Ab = rng.random((n, m)) < rng.uniform(0.01, 0.6)
        A = Ab.astype(np.float32)
        deg = rng.integers(0, 2 * m + 2, size=n).astype(np.float32)  # any degrees
        for by_column in (True, False):
            expected = _kernels.fill_xp(np, A @ A.T, deg, ch3)
            if not by_column:
                expected = _kernels.fill_xp(np, A @ A.T, deg, ch3).T
            out = np.full((n, n), np.nan, dtype=np.float32)
            k._gram[variant](_kernels.pack_rows(Ab), deg, out, by_column, ch3, 7)
            np.testing.assert_array_equal(out, expected)


def test_default_budget_takes_the_bit_gram_path(small_layers, monkeypatch):
    from netshape.linkpred import _dense

    _kernels_or_skip()
    calls = []
    real = _dense._bitgram_numpy
    monkeypatch.setattr(_dense, "_bitgram_numpy", lambda *a: calls.append(1) or real(*a))
    for A in small_layers:
        fused = ch2_l3n(A, method="dense")
        budget = _dense.bitgram_bytes(*A.shape) - 1  # one byte short: the tiled BLAS path
        np.testing.assert_allclose(ch2_l3n(A, method="dense", memory_budget=max(1, budget)),
                                   fused, rtol=1e-6, atol=0)
    assert len(calls) == len(small_layers)
