"""Sparse execution: bit-identical resume, checkpoints read by netshape analyze, export."""

from __future__ import annotations

import warnings

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from netshape.io import read_checkpoint  # noqa: E402
from netshape.torch import SparseLinear, sparsify, to_biadjacency  # noqa: E402


def _build(method, execution, seed_model=0, opt_name="sgd"):
    torch.manual_seed(seed_model)
    model = nn.Sequential(nn.Linear(12, 300), nn.ReLU(), nn.Linear(300, 300), nn.ReLU(),
                          nn.Linear(300, 3))
    if opt_name == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        dst = sparsify(model, opt, method=method, density=0.03, total_steps=24,
                       update_every=3, rng=123, initial_density=0.3, execution=execution)
    return model, opt, dst


def _train(model, opt, dst, steps, start=0):
    losses = []
    for i in range(start, start + steps):
        g = torch.Generator().manual_seed(i)
        x, y = torch.randn(8, 12, generator=g), torch.randint(0, 3, (8,), generator=g)
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        if not dst.replaces_optimizer_step():
            opt.step()
        dst.step()
        losses.append(float(loss.detach()))
    return losses


@pytest.mark.parametrize("method, execution, opt_name", [
    ("chts", "sparse", "sgd"), ("rigl", "sparse", "adam"), ("chtss", "sparse", "sgd"),
    ("gmp", "auto", "sgd")])  # gmp under auto switches layer 2 to sparse mid-run
def test_sparse_resume_is_bit_identical(tmp_path, method, execution, opt_name):
    model, opt, dst = _build(method, execution, opt_name=opt_name)
    full = _train(model, opt, dst, 24)
    full_masks = {n: m.clone() for n, m in dst.masks.items()}
    full_modes = {n: s["execution"] for n, s in dst.stats().items()}

    model, opt, dst = _build(method, execution, opt_name=opt_name)
    first = _train(model, opt, dst, 12)
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "dst": dst.state_dict()},
               tmp_path / "ck.pt")

    model, opt, dst = _build(method, execution, seed_model=7, opt_name=opt_name)
    ck = torch.load(tmp_path / "ck.pt", weights_only=True)
    dst.prepare_resume(ck["dst"])  # modes first: the model's keys follow them
    model.load_state_dict(ck["model"])
    opt.load_state_dict(ck["opt"])
    dst.load_state_dict(ck["dst"])
    rest = _train(model, opt, dst, 12, start=12)
    assert first + rest == full  # exact float equality
    assert {n: s["execution"] for n, s in dst.stats().items()} == full_modes
    assert "sparse" in full_modes.values()
    for n, m in dst.masks.items():
        assert torch.equal(m, full_masks[n])


def test_dst_state_without_model_state_is_refused():
    model, opt, dst = _build("set", "sparse")
    _train(model, opt, dst, 4)
    sd = dst.state_dict()
    m2, _, d2 = _build("set", "sparse", seed_model=3)
    sd["masks"]["2"] = ~sd["masks"]["2"]
    with pytest.raises(ValueError, match="load model.state_dict"):
        d2.load_state_dict(sd)


def test_read_checkpoint_reads_sparse_layers(tmp_path):
    model, opt, dst = _build("set", "auto")
    _train(model, opt, dst, 7)
    modes = {n: s["execution"] for n, s in dst.stats().items()}
    assert modes == {"0": "masked", "2": "sparse"}  # 12x300 is below AUTO_MIN_SIZE
    torch.save({"model": model.state_dict()}, tmp_path / "ck.pt")
    layers = read_checkpoint(tmp_path / "ck.pt")
    assert list(layers) == ["0", "2"]
    for n, m in dst.masks.items():
        assert (layers[n] != to_biadjacency(m)).nnz == 0
    bad = model.state_dict()
    bad["2.sparse_shape"] = torch.tensor([3, 3])
    torch.save(bad, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="outside the 3x3 layer"):
        read_checkpoint(tmp_path / "bad.pt")


def test_model_state_dict_holds_nnz_sized_tensors():
    model, opt, dst = _build("set", "sparse")
    sd = model.state_dict()
    assert isinstance(model[2], SparseLinear)
    assert sd["2.values"].shape == sd["2.indices"].shape == (dst.stats()["2"]["links"],)
    assert sd["2.sparse_shape"].tolist() == [300, 300]
    assert not any(k.startswith("2.") and v.numel() >= 300 * 300 for k, v in sd.items())
