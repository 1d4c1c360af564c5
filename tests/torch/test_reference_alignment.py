"""Presets against their references: RigL's update rule by a plain oracle, the
optimizer step an update replaces, the relative-importance variants, and the
warning for a decay schedule cut into too few updates."""

from __future__ import annotations

import warnings

import pytest

torch = pytest.importorskip("torch")

from netshape.torch import PRESETS, sparsify  # noqa: E402
from netshape.torch.masking import get_original  # noqa: E402


def _mlp(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(12, 20), torch.nn.ReLU(),
                               torch.nn.Linear(20, 20), torch.nn.ReLU(),
                               torch.nn.Linear(20, 3))


def _batch(i):
    g = torch.Generator().manual_seed(1000 + i)
    return torch.randn(16, 12, generator=g), torch.randint(0, 3, (16,), generator=g)


def _rigl_oracle(mask, W, G, n_remove):
    """RigL's update (reference code) written as plain loops over the links of one layer."""
    flat_w, flat_g, flat_m = W.reshape(-1), G.reshape(-1), mask.reshape(-1)
    active = [i for i in range(flat_m.numel()) if flat_m[i]]
    dropped = set(sorted(active, key=lambda i: abs(float(flat_w[i])))[:n_remove])
    kept = set(active) - dropped
    candidates = [i for i in range(flat_m.numel()) if i not in kept]  # dropped ones included
    grown = set(sorted(candidates, key=lambda i: -abs(float(flat_g[i])))[:n_remove])
    new = kept | grown
    fresh = {i for i in grown if not flat_m[i]}  # only links absent before are new
    return new, fresh, dropped


@pytest.mark.parametrize("seed", range(4))
def test_rigl_update_matches_a_loop_oracle(seed):
    model = _mlp(seed)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    dst = sparsify(model, opt, method="rigl", density=0.3, total_steps=40, update_every=4,
                   rng=seed)
    both_seen = 0
    for i in range(30):
        x, y = _batch(i)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        update = dst.replaces_optimizer_step()
        assert update == (dst._is_update(dst.step_count + 1))  # rigl replaces every update step
        if not update:
            opt.step()
            dst.step()
            continue
        before = {}
        for name, lay in dst._layers.items():
            W = lay.weight.clone()
            mom = opt.state[lay.param]["momentum_buffer"][lay.rows].clone()
            before[name] = (lay.mask.clone(), W, lay.pm.dense_grad.clone(), mom)
        zeta = dst.zeta_at(dst.step_count + 1)
        dst.step()
        for name, lay in dst._layers.items():
            mask, W, G, mom = before[name]
            n_remove = int(zeta * int(mask.sum()))
            new, fresh, dropped = _rigl_oracle(mask, W, G, n_remove)
            got = set(torch.nonzero(lay.mask.reshape(-1)).reshape(-1).tolist())
            assert got == new
            w_now = lay.weight.reshape(-1)
            m_now = opt.state[lay.param]["momentum_buffer"][lay.rows].reshape(-1)
            for j in new:
                if j in fresh:
                    assert w_now[j] == 0 and m_now[j] == 0
                else:  # kept, or removed and regrown in the same update: both survive
                    assert w_now[j] == W.reshape(-1)[j] and m_now[j] == mom.reshape(-1)[j]
            both_seen += len(dropped & (new - fresh))
            s = dst.stats()[name]
            assert s["removed"] == n_remove and s["regrown"] == n_remove
    assert both_seen > 0  # the case the alignment is about did occur


def test_set_still_restarts_a_link_removed_and_regrown():
    # SET's reference gives every regrown link a new weight; netshape's set restarts it at 0
    assert PRESETS["set"].get("reregrown", "restart") == "restart"
    model = _mlp(3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    dst = sparsify(model, opt, method="set", density=0.3, total_steps=40, update_every=4,
                   rng=3, reregrown="restart")
    for i in range(12):
        x, y = _batch(i)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        assert not dst.replaces_optimizer_step()
        opt.step()
        old = {n: lay.mask.clone() for n, lay in dst._layers.items()}
        if dst.step():
            for n, lay in dst._layers.items():
                # regrown links (stats) all start at zero, even those that were in old
                W = lay.weight
                fresh = lay.mask & ~old[n]
                assert torch.all(W[fresh] == 0)


@pytest.mark.parametrize("method, replaces", [("rigl", True), ("granet", False), ("set", False),
                                              ("chts", False)])
def test_replaces_optimizer_step_only_on_rigl_update_steps(method, replaces):
    model = _mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    dst = sparsify(model, opt, method=method, density=0.3, total_steps=40, update_every=5, rng=0)
    flags = []
    for i in range(40):
        x, y = _batch(i)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        flags.append(dst.replaces_optimizer_step())
        if not flags[-1]:
            opt.step()
        dst.step()
    # steps are counted from 1; rigl updates until 0.75 of training (step 30)
    expected = [replaces and (s % 5 == 0 and s <= 30) for s in range(1, 41)]
    assert flags == expected


def test_relative_importance_presets():
    for name, base in (("chts_ri", "chts"), ("chtss_ri", "chtss")):
        ri = {k: v for k, v in PRESETS[name].items() if k != "description"}
        ref = {k: v for k, v in PRESETS[base].items() if k != "description"}
        assert ri.pop("alpha") == 0.0 and ref.pop("alpha") == 1.0
        assert ri == ref
    model = _mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    dst = sparsify(model, opt, method="chts_ri", density=0.3, total_steps=20, update_every=5,
                   rng=0)
    assert dst.config["alpha"] == 0.0 and dst.config["removal"] == "soft"


def test_steep_decay_warns_and_gentle_decay_does_not():
    model = _mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    with pytest.warns(UserWarning, match=r"update 1 \(step 50\) removes \d+ % of the remaining"):
        sparsify(model, opt, method="chtss", density=0.05, total_steps=100, update_every=50,
                 rng=0)
    model = _mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dst = sparsify(model, opt, method="chtss", density=0.05, total_steps=2000,
                       update_every=10, rng=0)
    update, step, before, after = dst.steepest_cut()
    assert 1 - after / before <= 0.5 and step % 10 == 0
    # the reported cut is the largest of all scheduled updates, checked by brute force
    cuts = [1 - dst.density_at(s) / dst.density_at(s - 10) for s in range(10, 1500 + 1, 10)]
    assert max(cuts) == pytest.approx(1 - after / before)
    # constant schedules never warn
    model = _mlp()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sparsify(model, torch.optim.SGD(model.parameters(), lr=0.1), method="set",
                 density=0.3, total_steps=10, update_every=9, rng=0)


def test_original_weights_stay_zero_off_mask_under_keep():
    model = _mlp(5)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    dst = sparsify(model, opt, method="granet", density=0.2, total_steps=60, update_every=3,
                   rng=5)
    for i in range(60):
        x, y = _batch(i)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        dst.step()
        for lay in dst._layers.values():
            orig = get_original(lay.slot.module, lay.slot.param)[lay.rows]
            assert torch.all(orig[~lay.mask] == 0)
            assert torch.all(opt.state[lay.param]["momentum_buffer"][lay.rows][~lay.mask] == 0)
