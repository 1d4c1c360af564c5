"""netshape.torch.lr: noam and inoam against a plain reimplementation; torch scheduler protocol."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch.optim.lr_scheduler import LRScheduler  # noqa: E402

from netshape.torch import sparsify  # noqa: E402
from netshape.torch.lr import INoamLR, NoamLR, inoam_factor, noam_factor  # noqa: E402


def plain_lrs(base, warmup, iterative, n_steps, update_after):
    """Learning rate of steps 1..n_steps, written from the formula with a loop."""
    out, last = [], None
    for s in range(1, n_steps + 1):
        lr = base * min(s / warmup, math.sqrt(warmup / s))
        if last is not None:
            lr *= min(1.0, (s - last) / iterative)
        out.append(lr)
        if s in update_after:  # the update runs after step s
            last = s
    return out


class FakeEngine:
    """Only what INoamLR reads: the number of topology updates so far."""

    update_count = 0


def _drive(opt, sched, n_steps, update_after=(), engine=None):
    seen = []
    for s in range(1, n_steps + 1):
        seen.append([g["lr"] for g in opt.param_groups])
        opt.step()
        if engine is not None and s in update_after:
            engine.update_count += 1
        sched.step()
    return seen


def _optimizer(kind, lrs=(0.1,)):
    params = [torch.nn.Parameter(torch.zeros(2)) for _ in lrs]
    groups = [{"params": [p], "lr": lr} for p, lr in zip(params, lrs, strict=True)]
    return torch.optim.SGD(groups) if kind == "sgd" else torch.optim.Adam(groups)


@pytest.mark.parametrize("seed", range(12))
def test_inoam_matches_the_formula_on_random_schedules(seed):
    gen = np.random.default_rng(seed)
    warmup, iterative = int(gen.integers(1, 30)), int(gen.integers(1, 25))
    n = int(gen.integers(5, 120))
    updates = set(gen.choice(np.arange(1, n + 1), size=int(gen.integers(0, 6)),
                             replace=False).tolist())
    base = (0.3, 0.01)
    opt = _optimizer("adam" if seed % 2 else "sgd", base)
    engine = FakeEngine()
    sched = INoamLR(opt, engine, warmup, iterative)
    seen = _drive(opt, sched, n, updates, engine)
    for i, b in enumerate(base):
        want = plain_lrs(b, warmup, iterative, n, updates)
        np.testing.assert_allclose([row[i] for row in seen], want, rtol=1e-12, atol=0)
        # the pure functions say the same
        last = None
        for s in range(1, n + 1):
            assert inoam_factor(s, warmup, last, iterative) * b == pytest.approx(want[s - 1])
            if s in updates:
                last = s


@pytest.mark.parametrize("seed", range(6))
def test_noam_matches_the_formula_and_peaks_at_the_warmup(seed):
    gen = np.random.default_rng(100 + seed)
    warmup, n = int(gen.integers(1, 40)), int(gen.integers(2, 150))
    opt = _optimizer("sgd", (0.5,))
    sched = NoamLR(opt, warmup)
    seen = [r[0] for r in _drive(opt, sched, n)]
    np.testing.assert_allclose(seen, plain_lrs(0.5, warmup, 1, n, ()), rtol=1e-12)
    assert noam_factor(warmup, warmup) == 1.0
    assert max(seen) <= 0.5 + 1e-15
    if n >= warmup:
        assert seen[warmup - 1] == pytest.approx(0.5)


def test_inoam_without_updates_or_engine_is_noam():
    a, b, c = (_optimizer("adam") for _ in range(3))
    seen_a = _drive(a, NoamLR(a, 7), 40)
    seen_b = _drive(b, INoamLR(b, None, 7), 40)
    seen_c = _drive(c, INoamLR(c, FakeEngine(), 7), 40)
    assert seen_a == seen_b == seen_c


def test_is_a_torch_scheduler_and_follows_a_real_engine():
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 8),
                                torch.nn.ReLU(), torch.nn.Linear(8, 2))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    dst = sparsify(model, opt, method="set", density=0.5, total_steps=40, update_every=10, rng=0)
    sched = INoamLR(opt, dst, warmup_steps=8, iterative_warmup=5)
    assert isinstance(sched, LRScheduler)
    seen = []
    for _ in range(35):
        seen.append(opt.param_groups[0]["lr"])
        opt.zero_grad()
        model(torch.randn(4, 6)).pow(2).mean().backward()
        opt.step()
        dst.step()
        sched.step()
    assert dst.update_count == 3  # after steps 10, 20, 30
    want = plain_lrs(0.01, 8, 5, 35, {10, 20, 30})
    np.testing.assert_allclose(seen, want, rtol=1e-12)
    assert sched.get_last_lr() == [opt.param_groups[0]["lr"]]


def test_state_dict_round_trip_continues_the_same_schedule():
    engine = FakeEngine()
    opt = _optimizer("adam", (0.2, 0.05))
    sched = INoamLR(opt, engine, 6, 4)
    updates = {5, 9, 17}
    first = _drive(opt, sched, 10, updates, engine)
    state = sched.state_dict()
    assert "dst" not in state and state["last_update"] == 9
    buf = io.BytesIO()
    torch.save({"sched": state, "opt": opt.state_dict()}, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=True)

    engine2 = FakeEngine()
    engine2.update_count = engine.update_count
    opt2 = _optimizer("adam", (0.2, 0.05))
    opt2.load_state_dict(loaded["opt"])
    sched2 = INoamLR(opt2, engine2, 6, 4)
    sched2.load_state_dict(loaded["sched"])
    rest = []
    for s in range(11, 25):
        rest.append([g["lr"] for g in opt2.param_groups])
        opt2.step()
        if s in updates:
            engine2.update_count += 1
        sched2.step()
    full = plain_lrs(0.2, 6, 4, 24, updates)
    np.testing.assert_allclose([r[0] for r in first + rest], full, rtol=1e-12)


def test_bad_arguments_are_refused():
    opt = _optimizer("sgd")
    for bad in (0, -3, 2.5, True):
        with pytest.raises((TypeError, ValueError), match="warmup_steps"):
            NoamLR(opt, bad)
    with pytest.raises(ValueError, match="iterative_warmup"):
        INoamLR(_optimizer("sgd"), None, 5, iterative_warmup=0)
    sched = INoamLR(_optimizer("sgd"), None, 5)
    with pytest.raises(TypeError, match="no epoch"):
        sched.step(3)
