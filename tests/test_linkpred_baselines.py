"""Baselines and the registry contract the torch adapter relies on."""

from __future__ import annotations

import numpy as np
import pytest
from test_linkpred_reference import TINY, as_numpy, converter, path_count, ra_l3, support

import netshape.linkpred as lp


@pytest.mark.parametrize("family", ["numpy", "scipy", "torch"])
def test_l3_paths_and_ra_match_loops(small_layers, family):
    conv = converter(family)
    for A in small_layers:
        np.testing.assert_allclose(as_numpy(lp.l3_paths(conv(A))), path_count(A), rtol=1e-6)
        np.testing.assert_allclose(as_numpy(lp.ra_l3(conv(A))), ra_l3(A), rtol=1e-5, atol=1e-7)


def test_random_scores():
    A = np.random.default_rng(0).random((20, 30)) < 0.2
    S1, S2 = lp.random_scores(A, rng=5), lp.random_scores(A, rng=5)
    np.testing.assert_array_equal(S1, S2)
    assert not np.array_equal(S1, lp.random_scores(A, rng=6))
    assert (S1[A] == 0).all() and (S1[~A] > 0).all() and (S1 <= 1).all()
    with pytest.raises(TypeError, match="rng"):
        lp.random_scores(A, rng="seed")


def test_random_scores_torch_match_numpy(torch):
    A = np.random.default_rng(0).random((20, 30)) < 0.2
    St = lp.random_scores(torch.from_numpy(A), rng=5)
    assert isinstance(St, torch.Tensor)
    np.testing.assert_array_equal(St.numpy(), lp.random_scores(A, rng=5))


def test_adapter_regrowth_reads_the_registry(torch):
    from netshape.torch import COMPONENTS

    regrowth = set(COMPONENTS["regrowth"])
    for name in lp.available():  # every predictor, top-k and soft, is a regrowth choice
        assert {name, f"{name}_soft"} <= regrowth
    assert regrowth - {*lp.available(), *(f"{n}_soft" for n in lp.available())} == {
        "gradient", "gradient_soft", "none"}


@pytest.mark.parametrize("name", lp.available())
def test_predict_contract_for_adapter(small_layers, name, torch):
    for A in small_layers:
        mask = torch.from_numpy(A.T.copy()).bool()  # nn.Linear orientation
        S = lp.predict(mask.T, name, **({"rng": 0} if name == "random" else {}))
        assert isinstance(S, torch.Tensor) and S.dtype == torch.float32
        assert S.shape == A.shape and S.device == mask.device
        S = S.numpy()
        assert np.isfinite(S).all() and (S[A != 0] == 0).all()
        if name != "random":
            np.testing.assert_array_equal(S > 0, support(A))
        else:
            assert (S[A == 0] > 0).all()


def test_predict_dispatch_and_kwargs():
    np.testing.assert_array_equal(lp.predict(TINY, "ch2_l3n", method="sparse"),
                                  lp.ch2_l3n(TINY))
    np.testing.assert_array_equal(lp.predict(TINY, "l3_paths"), path_count(TINY))
    with pytest.raises(ValueError, match="name='ch9'.*'ch2_l3n'"):
        lp.predict(TINY, "ch9")
    with pytest.raises(TypeError):
        lp.predict(TINY, "l3_paths", method="dense")


def test_graph_core_does_not_import_torch():
    import subprocess
    import sys

    code = ("import sys, numpy as np, netshape.linkpred as lp; lp.predict(np.eye(3), 'ch2_l3n'); "
            "lp.predict(np.eye(3), 'ch3_l3p'); "
            "print('torch' in sys.modules, 'cupy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
