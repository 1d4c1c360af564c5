"""Torch-side edges: meta tensors, bad devices, mixed families, sparsify's run length."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import netshape as ns  # noqa: E402
from netshape.sampling import choose_links, removal_scores, torch_generator  # noqa: E402
from netshape.torch import sparsify  # noqa: E402


@pytest.mark.parametrize("name", sorted(ns.linkpred.available()))
def test_meta_tensors_are_refused_at_once(name):
    A = torch.empty(64, 64, device="meta")
    with pytest.raises(ValueError, match="'meta' device"):
        ns.linkpred.predict(A, name)


def test_meta_tensor_as_a_layer_is_refused():
    with pytest.raises(ValueError, match="'meta' device"):
        ns.metrics.degree_stats(torch.empty(5, 4, device="meta"))


def test_torch_generator_names_a_bad_device():
    with pytest.raises(ValueError, match="device='bogus'"):
        torch_generator(0, device="bogus")


def test_choose_links_with_torch_scores_and_numpy_allowed():
    s = torch.tensor([[0.0, 5.0], [1.0, 0.0]])
    idx, short = choose_links(s, 2, allowed=np.array([[True, True], [True, False]]), rng=0)
    assert sorted(idx.tolist()) == [1, 2] and short == 0


def test_removal_scores_torch_refuse_nan():
    with pytest.raises(ValueError, match="W has NaN or infinite weights"):
        removal_scores(torch.tensor([[1.0, float("nan")], [0.5, 2.0]]))


def test_sparsify_needs_total_steps():
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(TypeError, match="needs total_steps="):
        sparsify(model, opt, method="set", density=0.3, update_every=5, rng=0)
    assert not any("parametrizations" in k for k in model.state_dict())  # model untouched
