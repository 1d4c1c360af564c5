"""Update mechanics: regrowth never picks existing links, shortfall, historical weights,
gradient capture, optimizer-state reset, percolation groups, CSTI calibration."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from netshape.sampling import torch_generator  # noqa: E402
from netshape.torch import percolation_pairs, sparsify  # noqa: E402


def _engine(tiny, method="chts", kind="mlp", density=0.3, **kw):
    make_model, _, _ = tiny
    model = make_model(kind)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    dst = sparsify(model, opt, method=method, density=density, total_steps=40, update_every=4,
                   rng=0, **kw)
    return model, opt, dst


@pytest.mark.parametrize("regrowth", ["random", "ch2_l3n", "ch2_l3n_soft", "ch3_l3p",
                                      "gradient", "gradient_soft", "random_soft"])
def test_regrowth_adds_only_missing_links_exactly(tiny, regrowth):
    model, opt, dst = _engine(tiny, regrowth=regrowth)
    _, make_batch, train = tiny
    train(model, opt, dst, "mlp", 3)  # next step is an update: gradients are captured
    x, y = make_batch("mlp", 99)
    torch.nn.functional.cross_entropy(model(x), y).backward()
    rng = np.random.default_rng(5)
    for lay in dst._layers.values():
        for trial in range(10):
            pruned = lay.mask.clone()
            on = torch.nonzero(pruned.view(-1)).view(-1)
            drop = on[torch.from_numpy(rng.permutation(on.numel())[: 3 + trial])]
            pruned.view(-1)[drop] = False
            new, short = dst._regrow(lay, pruned, int(pruned.sum()), dst.density,
                                     torch_generator(rng))
            assert torch.all(new[pruned])  # nothing existing is touched
            added = new & ~pruned
            assert int(added.sum()) == 3 + trial  # exactly back to the target count
            assert 0 <= short <= 3 + trial


def test_shortfall_filled_uniformly_and_counted(tiny):
    model, opt, dst = _engine(tiny, regrowth="ch2_l3n")
    lay = dst._layers["net.2"]
    pruned = torch.zeros_like(lay.mask)
    pruned[0, 0] = True  # one link: no length-3 path, every CH score is 0
    need = int(lay.mask.sum()) - 1
    new, short = dst._regrow(lay, pruned, int(pruned.sum()), dst.density, torch_generator(0))
    assert short == need and int(new.sum()) == need + 1 and bool(new[0, 0])
    # a path-rich layer has positive scores for the first candidates: no shortfall
    pruned = lay.mask.clone()
    pruned.view(-1)[torch.nonzero(pruned.view(-1)).view(-1)[:2]] = False
    _, short = dst._regrow(lay, pruned, int(pruned.sum()), dst.density, torch_generator(0))
    assert short == 0


def test_shortfall_reported_in_stats(tiny):
    make_model, _, train = tiny
    model = make_model("mlp")
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    # one link per column in a 12 -> 16 layer at density 1/12 leaves few 3-paths
    dst = sparsify(model, opt, method="cht", density=0.07, total_steps=8, update_every=4,
                   rng=0, regrowth="ch2_l3n", zeta=0.9, percolation=False)
    train(model, opt, dst, "mlp", 4)
    st = dst.stats()
    assert any(s["shortfall"] > 0 for s in st.values())
    for name, s in st.items():
        assert s["links"] == s["target_links"] == dst._target(dst._layers[name], 0.07)


def test_historical_weights_restore_old_values(tiny):
    model, opt, dst = _engine(tiny, method="chts")
    lay = dst._layers["net.0"]
    W = lay.weight
    old = lay.mask.clone()
    on = torch.nonzero(old.view(-1)).view(-1)
    off = torch.nonzero(~old.view(-1)).view(-1)
    a, b = int(on[0]), int(on[1])
    W.view(-1)[a], W.view(-1)[b] = 1.25, -0.5
    pruned = old.clone()
    pruned.view(-1)[[a, b]] = False
    new = pruned.clone()
    new.view(-1)[int(off[0])] = True
    new.view(-1)[int(off[1])] = True
    dst._apply(lay, old, pruned, new)  # a, b removed; two never-seen links start at 0
    assert W.view(-1)[a] == 0 and W.view(-1)[int(off[0])] == 0
    old2 = lay.mask.clone()
    pruned2 = old2.clone()
    pruned2.view(-1)[int(off[0])] = False
    new2 = pruned2.clone()
    new2.view(-1)[a] = True
    dst._apply(lay, old2, pruned2, new2)  # a comes back with the value it had
    assert W.view(-1)[a] == 1.25
    assert lay.stats["removed"] == 1 and lay.stats["regrown"] == 1


def test_zero_init_for_set(tiny):
    model, opt, dst = _engine(tiny, method="set")
    lay = dst._layers["net.0"]
    old = lay.mask.clone()
    a = int(torch.nonzero(old.view(-1))[0])
    lay.weight.view(-1)[a] = 3.0
    pruned = old.clone()
    pruned.view(-1)[a] = False
    new = old.clone()  # removed and regrown in the same update
    dst._apply(lay, old, pruned, new)
    assert lay.weight.view(-1)[a] == 0
    assert lay.stats["overlap"] == 1.0


def test_dense_gradient_captured_only_before_updates(tiny):
    make_model, make_batch, _ = tiny
    model = make_model("mlp")
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    dst = sparsify(model, opt, method="rigl", density=0.3, total_steps=40, update_every=4, rng=0)
    for step in range(1, 9):
        lay = dst._layers["net.2"]
        assert lay.pm.capture == (step % 4 == 0)
        x, y = make_batch("mlp", step)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        if step % 4 == 0:
            # reference: the same forward with a plain dense weight equal to the masked one
            ref = [torch.nn.Parameter(m.weight.detach().clone())
                   for m in (model.net[0], model.net[2], model.net[4], model.net[6])]
            h = x
            for i, (m, w) in enumerate(zip((model.net[0], model.net[2], model.net[4],
                                             model.net[6]), ref, strict=True)):
                h = torch.nn.functional.linear(h, w, m.bias)
                h = torch.relu(h) if i < 3 else h
            torch.nn.functional.cross_entropy(h, y).backward()
            assert torch.allclose(lay.pm.dense_grad, ref[1].grad, atol=1e-6)
            assert bool((lay.pm.dense_grad[~lay.mask] != 0).any())
            # what the optimizer sees stays masked
            assert torch.all(lay.param.grad[~lay.mask] == 0)
        else:
            assert lay.pm.dense_grad is None
        opt.step()
        dst.step()


def test_gradient_regrowth_is_topk_of_missing(tiny):
    model, opt, dst = _engine(tiny, method="rigl")
    lay = dst._layers["net.2"]
    g = torch.randn(lay.mask.shape, generator=torch.Generator().manual_seed(0))
    lay.pm.dense_grad = g
    pruned = lay.mask.clone()
    on = torch.nonzero(pruned.view(-1)).view(-1)[:5]
    pruned.view(-1)[on] = False
    new, short = dst._regrow(lay, pruned, int(pruned.sum()), dst.density, torch_generator(0))
    added = (new & ~pruned).view(-1)
    cand = g.abs().masked_fill(pruned, -1).view(-1)
    want = torch.topk(cand, 5).indices
    assert short == 0 and set(torch.nonzero(added).view(-1).tolist()) == set(want.tolist())


def test_optimizer_state_reset_on_changed_links(tiny):
    make_model, make_batch, _ = tiny
    model = make_model("mlp")
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    dst = sparsify(model, opt, method="set", density=0.3, total_steps=40, update_every=4, rng=0)
    for step in range(1, 5):
        before = {n: lay.mask.clone() for n, lay in dst._layers.items()}
        x, y = make_batch("mlp", step)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        dst.step()
    for n, lay in dst._layers.items():
        changed = before[n] ^ lay.mask
        st = opt.state[lay.param]
        assert int(changed.sum()) > 0
        for key in ("exp_avg", "exp_avg_sq"):
            assert torch.all(st[key][changed] == 0)
            assert bool((st[key][lay.mask & before[n]] != 0).any())  # kept links keep state


def test_percolation_pairs_by_name(tiny):
    make_model, _, _ = tiny
    for kind, want in [
        ("mlp", {("chain", "net.0", "net.2"), ("chain", "net.2", "net.4")}),
        ("transformer", {("couple", "enc.layers.0.self_attn.q", "enc.layers.0.self_attn.k"),
                         ("chain", "enc.layers.0.self_attn.v", "enc.layers.0.self_attn.out_proj"),
                         ("chain", "enc.layers.0.linear1", "enc.layers.0.linear2")}),
        ("llama", {("couple", "blocks.0.attn.q_proj", "blocks.0.attn.k_proj"),
                   ("chain", "blocks.0.attn.v_proj", "blocks.0.attn.o_proj"),
                   ("couple", "blocks.0.mlp.gate_proj", "blocks.0.mlp.up_proj"),
                   ("chain", "blocks.0.mlp.up_proj", "blocks.0.mlp.down_proj"),
                   ("chain", "blocks.0.mlp.gate_proj", "blocks.0.mlp.down_proj")}),
    ]:
        model = make_model(kind)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        dst = sparsify(model, opt, method="set", density=0.3, total_steps=4, update_every=2)
        pairs = set(percolation_pairs(dst._slots))
        assert want <= pairs
        if kind != "mlp":  # nothing chains across residual connections
            assert not any(p[1].split(".")[:3] != p[2].split(".")[:3] for p in pairs)
            assert len(pairs) == len(want) * 2  # two blocks, same relations each


def test_percolation_removes_dead_neurons_then_regrows(tiny):
    make_model, _, _ = tiny
    model = make_model("mlp")
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    dst = sparsify(model, opt, method="chts", density=0.3, total_steps=8, update_every=4)
    pruned = {n: lay.mask.clone() for n, lay in dst._layers.items()}
    pruned["net.0"][5, :] = False  # hidden neuron 5 has no input: its outputs must go
    assert bool(pruned["net.2"][:, 5].any())
    counts = dst._percolate(pruned)
    assert not bool(pruned["net.2"][:, 5].any())
    assert counts == {n: int(m.sum()) for n, m in pruned.items()}


def test_csti_uses_calibration(tiny):
    make_model, make_batch, train = tiny
    model = make_model("mlp")
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, _ = make_batch("mlp", 0, n=64)
    dst = sparsify(model, opt, method="chts", density=0.3, total_steps=8, update_every=4,
                   init="csti", calibration=x, rng=0)
    assert int(dst.masks["net.0"].sum()) == round(0.3 * 12 * 16)
    train(model, opt, dst, "mlp", 8)
    # a numpy batch works too and gives the same topology for the same rng
    model2 = make_model("mlp")
    opt2 = torch.optim.SGD(model2.parameters(), lr=0.1)
    dst2 = sparsify(model2, opt2, method="chts", density=0.3, total_steps=8, update_every=4,
                    init="csti", calibration=x.numpy(), rng=0)
    model3 = make_model("mlp")
    opt3 = torch.optim.SGD(model3.parameters(), lr=0.1)
    dst3 = sparsify(model3, opt3, method="chts", density=0.3, total_steps=8, update_every=4,
                    init="csti", calibration=x, rng=0)
    assert all(torch.equal(dst2.masks[n], dst3.masks[n]) for n in dst2.masks)


def test_anp_stat_matches_shared_metric(tiny):
    from netshape.metrics import anp

    make_model, _, train = tiny
    model = make_model("llama")
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    dst = sparsify(model, opt, method="chts", density=0.08, total_steps=8, update_every=4)
    train(model, opt, dst, "llama", 5)
    for name, st in dst.stats().items():
        assert st["anp"] == anp({name: dst.masks[name].T.numpy()})


def test_uniform_missing_is_uniform_and_exact():
    from netshape.torch.components import uniform_missing

    mask = torch.zeros(40, 50, dtype=torch.bool)
    mask.view(-1)[::7] = True
    counts = torch.zeros(2000, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    for _ in range(300):
        idx = uniform_missing(mask, 30, g)
        assert idx.numel() == 30 and idx.unique().numel() == 30
        assert not bool(mask.view(-1)[idx].any())
        counts[idx] += 1
    missing = ~mask.view(-1)
    assert counts[~missing].sum() == 0
    expect = 300 * 30 / int(missing.sum())
    assert float(counts[missing].double().mean()) == pytest.approx(expect)
    assert float(counts[missing].std()) < 3 * expect ** 0.5  # no position favoured
    dense = torch.ones(5, 5, dtype=torch.bool)
    dense[0, :3] = False  # dense layer: the full-pass branch
    assert sorted(uniform_missing(dense, 3, g).tolist()) == [0, 1, 2]
    with pytest.raises(ValueError, match="only 3 are missing"):
        uniform_missing(dense, 4, g)


def test_soft_regrowth_really_samples(tiny):
    results = {}
    for regrowth in ("ch2_l3n", "ch2_l3n_soft"):
        model, opt, dst = _engine(tiny, regrowth=regrowth, density=0.4)
        lay = dst._layers["net.2"]
        pruned = lay.mask.clone()
        on = torch.nonzero(pruned.view(-1)).view(-1)
        pruned.view(-1)[on[::3]] = False
        links = int(pruned.sum())
        sets = set()
        for seed in range(6):
            new, short = dst._regrow(lay, pruned, links, dst.density, torch_generator(seed))
            assert short == 0
            sets.add(tuple(torch.nonzero((new & ~pruned).view(-1)).view(-1).tolist()))
        results[regrowth] = sets
    assert len(results["ch2_l3n"]) == 1  # top-k: the same links whatever the seed
    assert len(results["ch2_l3n_soft"]) > 1


def test_temperature_and_delta_ramps(tiny):
    model, opt, dst = _engine(tiny, T=(2.0, 0.5), delta=(0.5, 0.75), delta_end=0.5)
    assert dst.temperature_at(0) == 2.0 and dst.temperature_at(20) == 0.5
    assert dst.temperature_at(10) == pytest.approx(1.25)
    assert dst.delta_at(0) == 0.5 and dst.delta_at(40) == 0.75
    with pytest.raises(ValueError, match="T="):
        _engine(tiny, T=(1.0, 2.0, 3.0))


def _ri_loop(W, mask):
    """Relative importance (Eq. 1) of each existing link, by plain loops."""
    n_out, n_in = len(W), len(W[0])
    out = {}
    for j in range(n_out):
        for i in range(n_in):
            if mask[j][i]:
                a = abs(W[j][i])
                row = sum(abs(W[j][k]) for k in range(n_in) if mask[j][k])
                col = sum(abs(W[k][i]) for k in range(n_out) if mask[k][i])
                out[j * n_in + i] = (a / row if row else 0) + (a / col if col else 0)
    return out


@pytest.mark.parametrize("removal", ["magnitude", "ri", "magnitude_gradient"])
def test_hard_removal_matches_plain_loop(tiny, removal):
    rng = np.random.default_rng(11)
    for trial in range(8):
        model, opt, dst = _engine(tiny, method="set", removal=removal, density=0.4)
        lay = dst._layers["net.2"]
        W = torch.from_numpy(rng.normal(size=lay.mask.shape)).float() * lay.mask
        lay.weight.copy_(W)
        g = torch.from_numpy(rng.normal(size=lay.mask.shape)).float()
        lay.pm.dense_grad = g
        zeta = [0.1, 0.3, 0.5, 0.9][trial % 4]
        pruned, links = dst._remove(lay, lay.mask.clone(), dst.density, zeta, 0.5,
                                    torch_generator(trial))
        n = int(lay.mask.sum())
        Wl, ml, gl = W.tolist(), lay.mask.tolist(), g.tolist()
        if removal == "ri":
            score = _ri_loop(Wl, ml)
        else:
            n_in = lay.mask.shape[1]
            score = {j * n_in + i: abs(Wl[j][i]) + (0.01 * abs(gl[j][i])
                                                    if removal == "magnitude_gradient" else 0)
                     for j in range(len(ml)) for i in range(n_in) if ml[j][i]}
        keep = n - int(zeta * n)
        want = set(sorted(score, key=score.get, reverse=True)[:keep])
        got = set(torch.nonzero(pruned.view(-1)).view(-1).tolist())
        assert links == keep and got == want


@pytest.mark.gpu
def test_cuda_layers_stay_on_device(tiny):
    make_model, make_batch, _ = tiny
    model = make_model("llama").cuda()
    opt = torch.optim.AdamW(model.parameters(), lr=0.01)
    dst = sparsify(model, opt, method="chtss", density=0.2, total_steps=12, update_every=3,
                   rng=0, initial_density=0.5)
    for step in range(12):
        x, y = make_batch("llama", step)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x.cuda()), y.cuda()).backward()
        opt.step()
        dst.step()
    for name, m in dst.masks.items():
        assert m.is_cuda
        lay = dst._layers[name]
        assert int(m.sum()) == dst._target(lay, dst.density_at(9))
        assert torch.all(lay.weight[~m] == 0)


def test_gmp_pruned_weights_can_return(tiny):
    make_model, _, _ = tiny
    model = make_model("mlp")
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    dst = sparsify(model, opt, method="gmp", density=0.2, total_steps=40, update_every=4,
                   rng=0, initial_density=0.5)
    lay = dst._layers["net.2"]
    W = lay.weight
    old = lay.mask.clone()
    on = torch.nonzero(old.view(-1)).view(-1)
    off = torch.nonzero(~old.view(-1)).view(-1)
    W.view(-1)[on] = torch.linspace(0.01, 1.0, on.numel())
    lay.hist = torch.zeros_like(W)
    back = int(off[0])
    lay.hist.view(-1)[back] = 5.0  # was large when it was pruned
    momentum = opt.state[lay.param] = {"momentum_buffer": torch.ones_like(lay.param)}
    target = int(on.numel()) - 10
    d = target / old.numel()
    pruned, links = dst._remove(lay, old, d, 0.0, 0.5, torch_generator(0))
    assert links == target and bool(pruned.view(-1)[back])
    # the 11 smallest current weights went, the historical one came back
    assert not bool(pruned.view(-1)[on[:11]].any()) and bool(pruned.view(-1)[on[11:]].all())
    dst._apply(lay, old, pruned, pruned)
    assert W.view(-1)[back] == 5.0 and lay.stats["regrown"] == 1 and lay.stats["removed"] == 11
    assert momentum["momentum_buffer"].view(-1)[back] == 0
    assert float(lay.hist.view(-1)[int(on[0])]) == pytest.approx(0.01)


def test_topological_early_stop(tiny):
    make_model, _, train = tiny
    model = make_model("mlp")
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    dst = sparsify(model, opt, method="cht", density=0.3, total_steps=40, update_every=4,
                   rng=0, regrowth="ch2_l3n")
    assert dst.config["early_stop"] == 0.9
    before = {n: m.clone() for n, m in dst.masks.items()}
    # an update that regrows exactly what it removed is an epitopological local minimum
    dst._regrow = lambda lay, pruned, links, density, gen: (before[lay.slot.name].clone(), 0)
    train(model, opt, dst, "mlp", 4)
    assert dst.update_count == 1 and dst.stopped
    assert all(s["overlap"] == 1.0 for s in dst.stats().values())
    train(model, opt, dst, "mlp", 12, start=4)
    assert dst.update_count == 1  # no update after the stop
    assert dst.state_dict()["stopped"] is True
    from netshape.torch import resolve_method

    assert resolve_method("set", {})["early_stop"] is None
    with pytest.raises(ValueError, match="early_stop=0"):
        resolve_method("cht", {"early_stop": 0})
