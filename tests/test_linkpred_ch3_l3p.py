"""CH3-L3p / CH2-L3p: both engines against path-by-path enumeration."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from test_linkpred_reference import TINY, ch_path, support

from netshape.linkpred import _kernels, ch2_l3p, ch3_l3p


@pytest.mark.parametrize("engine", ["numba", "numpy", "auto"])
@pytest.mark.parametrize("ch2", [False, True], ids=["ch3", "ch2"])
def test_matches_path_enumeration(small_layers, engine, ch2):
    fn = ch2_l3p if ch2 else ch3_l3p
    for A in small_layers:
        S = fn(A, method=engine)
        assert S.dtype == np.float32 and S.shape == A.shape
        np.testing.assert_allclose(S, ch_path(A, ch2=ch2), rtol=1e-5, atol=1e-7)


def test_zero_on_links_and_support(small_layers):
    for A in small_layers:
        for engine in ("numba", "numpy"):
            S = ch3_l3p(A, method=engine)
            assert np.isfinite(S).all() and (S[A != 0] == 0).all()
            np.testing.assert_array_equal(S > 0, support(A))


def test_hand_computed():
    # the only path 0-1-2-3 has de*_a = 0 and de*_b = 1
    assert ch3_l3p(TINY)[0, 3] == pytest.approx(1 / np.sqrt(2))
    assert ch2_l3p(TINY)[0, 3] == pytest.approx(np.sqrt(4) / np.sqrt(2))


@pytest.mark.parametrize("seed", range(2))
def test_engines_agree_on_larger_layers(seed):
    A = np.random.default_rng(seed).random((90, 130)) < 0.06
    fast = ch3_l3p(A, method="numba")
    np.testing.assert_allclose(ch3_l3p(A, method="numpy"), fast, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(ch2_l3p(sp.csr_array(A), method="numpy"),
                               ch2_l3p(A, method="numba"), rtol=1e-5, atol=1e-7)


def test_auto_without_numba_uses_fallback(monkeypatch):
    monkeypatch.setattr(_kernels, "USE_COMPILED", False)
    np.testing.assert_allclose(ch3_l3p(TINY), ch_path(TINY), rtol=1e-6)
    with pytest.raises(ImportError, match="fast"):
        ch3_l3p(TINY, method="numba")


def test_torch_in_torch_out(torch):
    S = ch3_l3p(torch.from_numpy(TINY.T.copy()).bool().T)
    assert isinstance(S, torch.Tensor) and S.dtype == torch.float32
    np.testing.assert_allclose(S.numpy(), ch_path(TINY), rtol=1e-6)


@pytest.mark.gpu
def test_torch_cuda_in_cuda_out(torch):
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA device")
    S = ch2_l3p(torch.from_numpy(TINY).cuda())
    assert S.is_cuda
    np.testing.assert_allclose(S.cpu().numpy(), ch_path(TINY, ch2=True), rtol=1e-6)


def test_engine_is_a_deprecated_alias_of_method():
    with pytest.warns(DeprecationWarning, match="engine= is deprecated; use method="):
        S = ch3_l3p(TINY, engine="numpy")
    np.testing.assert_array_equal(S, ch3_l3p(TINY, method="numpy"))
    with pytest.warns(DeprecationWarning), \
            pytest.raises(ValueError, match="engine='c'.*'auto', 'numba', 'numpy'"):
        ch2_l3p(TINY, engine="c")


def test_bad_input():
    with pytest.raises(ValueError, match="method='c'.*'auto', 'numba', 'numpy'"):
        ch3_l3p(TINY, method="c")
    with pytest.raises(ValueError, match="non-finite"):
        ch3_l3p(np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match="2-D"):
        ch2_l3p(np.ones(4))
