"""Regression tests of sparse execution: export, load, ``.weight``, link checks, conversions."""

from __future__ import annotations

import warnings

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from netshape.torch import sparsify  # noqa: E402
from netshape.torch._sparse_linear import SparseLinear, sparse_linear  # noqa: E402
from netshape.torch.execution import to_masked, to_sparse  # noqa: E402
from netshape.torch.export import load_sparse, plain_model, save_sparse  # noqa: E402


def _net(seed=0, sizes=(16, 24, 5)):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(sizes[0], sizes[1]), nn.ReLU(), nn.Linear(sizes[1], sizes[2]))


def _sparse(model, execution="sparse", method="set", density=0.3, **kw):
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        dst = sparsify(model, opt, method=method, density=density, total_steps=20,
                       update_every=5, rng=3, execution=execution, **kw)
    return opt, dst


def _train(model, opt, dst, steps=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = torch.randn(8, model[0].in_features, generator=g)
        opt.zero_grad()
        model(x).pow(2).mean().backward()
        opt.step()
        dst.step()


# ---------------------------------------------------------------- 1, 2: export and load
def test_plain_model_of_sparse_execution_has_dense_weights(tmp_path):
    model = _net()
    opt, dst = _sparse(model)
    _train(model, opt, dst)
    assert isinstance(model[0], SparseLinear)
    plain = plain_model(model)
    keys = set(plain.state_dict())
    assert {"0.weight", "0.bias", "2.weight", "2.bias"} <= keys
    assert not any(k.endswith((".values", ".indices", ".sparse_shape")) for k in keys)
    x = torch.randn(4, 16)
    assert torch.allclose(plain(x), model(x), atol=1e-5)
    for n, m in dst.masks.items():
        assert torch.equal(plain.get_submodule(n).weight != 0, m & (plain.get_submodule(n)
                                                                    .weight != 0))
        assert not bool(plain.get_submodule(n).weight[~m].any())
    from safetensors.torch import load_file

    d = save_sparse(model, tmp_path / "out", dst)
    saved = load_file(str(d / "model.safetensors"))
    assert "0.weight" in saved and "0.values" not in saved


@pytest.mark.parametrize("execution", ["sparse", "auto", "masked"])
def test_load_sparse_roundtrip_under_sparse_execution(tmp_path, execution):
    model = _net()
    opt, dst = _sparse(model, execution="sparse")
    _train(model, opt, dst, steps=11)  # two topology updates
    d = save_sparse(model, tmp_path / "out", dst)
    from safetensors.torch import load_file

    fresh = _net(seed=5)
    fresh.load_state_dict(load_file(str(d / "model.safetensors")))
    opt2 = torch.optim.SGD(fresh.parameters(), lr=0.05, momentum=0.9)
    dst2 = load_sparse(fresh, opt2, d, update_every=5, total_steps=20, execution=execution)
    x = torch.randn(6, 16)
    assert torch.allclose(fresh(x), model(x), atol=1e-5)
    for n, m in dst.masks.items():
        assert torch.equal(dst2.masks[n], m)
    assert dst2.step_count == dst.step_count
    want = "sparse" if execution == "sparse" else "masked"  # auto: layers below AUTO_MIN_SIZE
    assert {s["execution"] for s in dst2.stats().values()} == {want}
    _train(fresh, opt2, dst2, steps=5)  # and training continues through an update
    assert all(int(m.sum()) == int(dst.masks[n].sum()) for n, m in dst2.masks.items())


def test_load_sparse_refuses_unsupported_sparse_before_touching(tmp_path):
    model = _net()
    opt, dst = _sparse(model, execution="masked")
    d = save_sparse(model, tmp_path / "out", dst)
    fresh = _net().double().half()  # float16: sparse cannot run it
    opt2 = torch.optim.SGD(fresh.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="execution='sparse'"):
        load_sparse(fresh, opt2, d, execution="sparse")
    assert not any(hasattr(m, "parametrizations") for m in fresh.modules())


def test_save_sparse_removes_stale_weight_files(tmp_path):
    model = _net()
    opt, dst = _sparse(model, execution="masked")
    out = tmp_path / "out"
    out.mkdir()
    (out / "model-00001-of-00002.safetensors").write_bytes(b"stale")
    (out / "model.safetensors.index.json").write_text("{}")
    save_sparse(model, out, dst)
    assert sorted(p.name for p in out.iterdir()) == ["model.safetensors",
                                                     "netshape_masks.safetensors"]
    # a directory with other files (a training checkpoint) keeps them; stale weights go
    (out / "trainer_state.json").write_text("{}")
    (out / "pytorch_model.bin").write_bytes(b"stale")
    save_sparse(model, out, dst)
    assert sorted(p.name for p in out.iterdir()) == ["model.safetensors",
                                                     "netshape_masks.safetensors",
                                                     "trainer_state.json"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporaries


# ---------------------------------------------------------------- 3: .weight
def test_weight_property_reads_like_linear_and_trains_like_masked():
    torch.manual_seed(0)
    lin = nn.Linear(7, 5).double()
    mask = torch.rand(5, 7) < 0.4
    sp = SparseLinear.from_dense(lin, mask)
    w = sp.weight
    assert w.shape == (5, 7) and w.dtype == torch.float64 and w.device == sp.values.device
    assert torch.equal(w.detach(), lin.weight.detach() * mask)
    x = torch.randn(3, 7, dtype=torch.float64)
    y = nn.functional.linear(x, sp.weight, sp.bias)
    (y.sin().sum()).backward()
    ref_w = (lin.weight.detach() * mask).requires_grad_(True)
    nn.functional.linear(x, ref_w, lin.bias.detach()).sin().sum().backward()
    assert torch.allclose(sp.values.grad, ref_w.grad.reshape(-1)[sp.indices])
    with pytest.raises((AttributeError, KeyError, TypeError)):
        sp.weight = nn.Parameter(torch.zeros(5, 7))


def test_auto_layer_read_by_its_parent():
    class T5Like(nn.Module):
        def __init__(self):
            super().__init__()
            self.wi, self.wo = nn.Linear(256, 512), nn.Linear(512, 256)

        def forward(self, x):
            h = torch.relu(self.wi(x.to(self.wi.weight.dtype)))
            return self.wo(h) + nn.functional.linear(h, self.wi.weight.t())

    torch.manual_seed(0)
    m = T5Like()
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    dst = sparsify(m, opt, "set", density=0.05, total_steps=10, update_every=5, rng=0,
                   pairs=[])
    assert dst.stats()["wi"]["execution"] == "sparse"
    m(torch.randn(2, 256)).sum().backward()
    assert m.wi.values.grad is not None and bool(m.wi.values.grad.abs().sum() > 0)


# ---------------------------------------------------------------- 4: link validation
def test_sparse_linear_checks_indices():
    x = torch.randn(2, 64)
    idx = torch.arange(0, 4096, 8)
    vals = torch.randn(idx.numel())
    with pytest.raises(ValueError, match="same length"):
        sparse_linear(x, vals[:10], idx, (64, 64))
    with pytest.raises(ValueError, match="strictly increasing"):
        sparse_linear(x, vals, idx.flip(0), (64, 64))
    with pytest.raises(ValueError, match=r"\[0, 4095\]"):
        sparse_linear(x, vals, idx + 8, (64, 64))
    with pytest.raises(ValueError, match="int64"):
        sparse_linear(x, vals, idx.int(), (64, 64))
    dup = idx.clone()
    dup[1] = dup[0]
    with pytest.raises(ValueError, match="strictly increasing"):
        sparse_linear(x, vals, dup, (64, 64))


@pytest.mark.parametrize("bad, match", [
    (lambda sd: sd["indices"].flip(0), "strictly increasing"),
    (lambda sd: sd["indices"] - sd["indices"][0] - 1, r"\[-1"),
    (lambda sd: sd["indices"] + 10_000, "allows"),
    (lambda sd: sd["indices"][:-1], "same length"),
])
def test_load_state_dict_checks_indices(bad, match):
    torch.manual_seed(0)
    sp = SparseLinear.from_dense(nn.Linear(8, 6), torch.rand(6, 8) < 0.5)
    sd = sp.state_dict()
    sd["indices"] = bad(sd)
    with pytest.raises(ValueError, match=r"state_dict\['indices'\]") as e:
        sp.load_state_dict(sd)
    assert e.match(match)
    sd = sp.state_dict()
    sd["sparse_shape"] = torch.tensor([8, 6])
    with pytest.raises(ValueError, match="sparse_shape"):
        sp.load_state_dict(sd)


def test_valid_state_dict_still_loads_and_resizes():
    torch.manual_seed(0)
    a = SparseLinear.from_dense(nn.Linear(8, 6), torch.rand(6, 8) < 0.5)
    b = SparseLinear.from_dense(nn.Linear(8, 6), torch.rand(6, 8) < 0.2)
    b.load_state_dict(a.state_dict())
    x = torch.randn(3, 8)
    assert torch.equal(a(x), b(x))


# ---------------------------------------------------------------- 10: dtype and device
def test_forward_dtype_rules_match_linear():
    torch.manual_seed(0)
    sp = SparseLinear.from_dense(nn.Linear(8, 6), torch.rand(6, 8) < 0.5)
    for x in (torch.randn(2, 8).half(), torch.randint(0, 3, (2, 8)), torch.randn(2, 8).double()):
        with pytest.raises(ValueError, match="dtype"):
            sp(x)
    assert sp(torch.randn(2, 8).bfloat16()).dtype == torch.bfloat16  # documented
    sp64 = SparseLinear.from_dense(nn.Linear(8, 6).double(), torch.rand(6, 8) < 0.5)
    with pytest.raises(ValueError, match="dtype"):
        sp64(torch.randn(2, 8))
    if torch.cuda.is_available():  # pragma: no cover - no GPU in CI
        with pytest.raises(ValueError, match="cpu"):
            sp.cuda()(torch.randn(2, 8))


# ---------------------------------------------------------------- 11: conversions keep state
def test_conversions_keep_hooks_training_flag_and_frozen_weight():
    model = _net()
    opt, dst = _sparse(model, execution="masked")
    model[0].weight  # noqa: B018 - a parametrized read
    seen = []
    handle = model[0].register_forward_hook(lambda m, a, o: seen.append(o.shape))
    model[0].parametrizations.weight.original.requires_grad_(False)
    model.eval()
    dst._layers["0"] = to_sparse(dst._layers["0"], model, opt)
    sp = model[0]
    assert isinstance(sp, SparseLinear) and not sp.training and not sp.values.requires_grad
    model(torch.randn(2, 16))
    assert seen == [(2, 24)]
    dst._layers["0"] = to_masked(dst._layers["0"], model, opt)
    lin = model[0]
    assert not lin.training
    assert not lin.parametrizations.weight.original.requires_grad
    model(torch.randn(3, 16))
    assert seen == [(2, 24), (3, 24)]
    handle.remove()  # the handle still reaches the hook
    model(torch.randn(1, 16))
    assert len(seen) == 2


# ---------------------------------------------------------------- 5: nothing dense kept
def test_sparse_slot_keeps_no_dense_mask_between_steps():
    model = _net(sizes=(64, 64, 5))
    opt, dst = _sparse(model, density=0.1)
    _train(model, opt, dst, steps=6)
    lay = dst._layers["0"]
    dense = 64 * 64
    for obj in (lay, model[0]):
        for k, v in vars(obj).items():
            items = v if isinstance(v, tuple) else (v,)
            for t in items:
                if isinstance(t, torch.Tensor) and k not in ("_parameters", "_buffers"):
                    assert t.numel() < dense, k


# ---------------------------------------------------------------- 12: NaN and inf
@pytest.mark.parametrize("compiled", [True, False])
def test_nan_and_inf_propagate_as_masked(compiled, monkeypatch):
    from netshape.torch import _sparse_kernels as k

    if compiled and not k.has_compiled():
        pytest.skip("llvmlite (the fast extra) is not installed")
    monkeypatch.setenv("NETSHAPE_SPARSE_NO_COMPILE", "0" if compiled else "1")
    torch.manual_seed(0)
    lin = nn.Linear(6, 4)
    mask = torch.ones(4, 6, dtype=torch.bool)
    mask[0, 2] = False  # an input read by some links only
    sp = SparseLinear.from_dense(lin, mask)
    x = torch.randn(3, 6)
    x[0, 1], x[1, 3], x[2, 4] = float("nan"), float("inf"), float("-inf")
    x.requires_grad_(True)
    y = sp(x)
    ref = nn.functional.linear(x.detach(), lin.weight.detach() * mask, lin.bias.detach())
    assert torch.equal(torch.isnan(y), torch.isnan(ref))
    assert torch.equal(torch.isinf(y), torch.isinf(ref))
    fin = torch.isfinite(ref)
    assert torch.allclose(y[fin], ref[fin], atol=1e-5)


def test_saving_leaves_the_model_trainable(tmp_path):
    model = _net()
    opt, dst = _sparse(model, execution="masked")
    x = torch.randn(3, 16)
    before = model(x)
    save_sparse(model, tmp_path / "out", dst)
    assert torch.equal(model(x), before)  # the parametrized weight is still there
    _train(model, opt, dst, steps=6)
    save_sparse(model, tmp_path / "out", dst)
