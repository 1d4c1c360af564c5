"""One density rule everywhere: a layer's density lies in (0, 1].

Every public function and command-line option that takes a density is called
with the same boundary values; all of them must accept and refuse the same
ones, with a message that names the argument, the value and the range.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import pytest

import netshape as ns
from netshape import bench, schedules
from netshape._validation import DENSITY_RANGE
from netshape.cli import main

IN_RANGE = (1.0, 1e-9, 1 - 1e-9, 0.5)
OUT_OF_RANGE = (0.0, math.nan, 1.5, -0.1)
REFUSAL = f"is outside the allowed range {DENSITY_RANGE}"


class _Reached(KeyboardInterrupt):
    """Raised where a command would start its work: every argument was accepted."""


def _verdict(call, value: float, name: str) -> str:
    """'refused' for a range error naming ``name``; 'accepted' otherwise.

    An accepted density may still be refused for another reason that the test
    does not judge (1e-9 of a small layer rounds to 0 links: "gives 0 links").
    """
    try:
        call(value)
    except ValueError as exc:
        if REFUSAL in str(exc):
            assert f"{name}=" in str(exc), f"{exc} does not name {name}"
            return "refused"
        assert "gives 0 links" in str(exc), exc
    return "accepted"


def _cli_verdict(argv, name: str, capsys) -> str:
    rc = main(argv)
    err = capsys.readouterr().err
    if rc == 2 and "gives 0 links" not in err:
        assert REFUSAL in err and f"{name}=" in err, err
        return "refused"
    assert rc in (0, 2, 130), (rc, err)  # 130: reached the (stubbed) work
    return "accepted"


X = np.random.default_rng(0).normal(size=(30, 12))
CORE = {
    "generators.er": (lambda v: ns.generators.er(12, 10, v, rng=0), "density"),
    "generators.bsw": (lambda v: ns.generators.bsw(12, 10, v, beta=0.5, rng=0), "density"),
    "generators.bsf": (lambda v: ns.generators.bsf(12, 10, v, rng=0), "density"),
    "generators.brf": (lambda v: ns.generators.brf(12, 10, v, r=0.3, rng=0), "density"),
    "generators.csti": (lambda v: ns.generators.csti(X, 10, v, rng=0), "density"),
    "schedules.constant": (lambda v: schedules.constant(0, value=v), "value"),
    "schedules.sigmoid_density": (
        lambda v: schedules.sigmoid_density(3, start=0, end=10, s_init=v, s_final=v), "s_init"),
    "schedules.cubic_density": (
        lambda v: schedules.cubic_density(3, start=0, end=10, s_init=0.5, s_final=v), "s_final"),
    "schedules.mest_density": (
        lambda v: schedules.mest_density(3, start=0, end=10, s_init=v, s_final=v), "s_init"),
    "bench.check_arguments": (
        lambda v: bench.check_arguments((16,), (v,), ("ch2_l3n:dense",)), "densities"),
}


@pytest.mark.parametrize("entry", sorted(CORE))
def test_core_entry_points_share_the_rule(entry):
    call, name = CORE[entry]
    assert [_verdict(call, v, name) for v in IN_RANGE] == ["accepted"] * len(IN_RANGE)
    assert [_verdict(call, v, name) for v in OUT_OF_RANGE] == \
        ["refused"] * len(OUT_OF_RANGE)


def test_the_message_names_argument_value_and_range():
    with pytest.raises(ValueError, match=r"^density=1\.5 is outside the allowed range \(0, 1\]$"):
        ns.generators.er(10, 10, 1.5)
    with pytest.raises(ValueError, match=r"^densities=nan is outside the allowed range"):
        bench.check_arguments((16,), (math.nan,), ("ch2_l3n",))
    with pytest.raises(TypeError, match="density='0.1' must be a real number"):
        ns.generators.er(10, 10, "0.1")


def test_density_one_is_the_complete_layer():
    for gen in (ns.generators.er, ns.generators.bsw, ns.generators.bsf, ns.generators.brf):
        A = gen(7, 5, 1.0, rng=0)
        assert A.nnz == 35


def _cli_generate(tmp_path):
    return lambda v: ["generate", "er", "--n-in", "12", "--n-out", "10", "--density", repr(v),
                      "--rng", "0", "-o", str(tmp_path / f"g{v!r}.npz")]


@pytest.mark.parametrize("value", IN_RANGE + OUT_OF_RANGE)
def test_cli_generate_and_bench_share_the_rule(tmp_path, capsys, monkeypatch, value):
    want = "accepted" if value in IN_RANGE else "refused"
    assert _cli_verdict(_cli_generate(tmp_path)(value), "density", capsys) == want

    def reached(**kwargs):
        raise _Reached

    monkeypatch.setattr(bench, "run", reached)
    argv = ["bench", "--sizes", "16", "--densities", repr(value), "--predictors", "ch2_l3n",
            "-o", str(tmp_path / "b")]
    assert _cli_verdict(argv, "densities", capsys) == want
    if want == "refused":
        assert not (tmp_path / "b").exists()


# ----------------------------------------------------------------- torch adapter and runners
@pytest.fixture
def adapter():
    torch = pytest.importorskip("torch")
    from netshape.torch import resolve_method, sparsify

    def sparsify_at(v):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(12, 10), torch.nn.ReLU(),
                                    torch.nn.Linear(10, 3))
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        with pytest.warns(UserWarning, match="density=1 keeps every link") if v == 1.0 \
                else contextlib.nullcontext():
            return sparsify(model, opt, method="set", density=v, total_steps=10, rng=0)

    return sparsify_at, resolve_method


def test_torch_and_runner_entry_points_share_the_rule(adapter):
    from netshape.lm import LMConfig
    from netshape.lm.config import resolve as resolve_lm
    from netshape.train import TrainConfig, resolve

    sparsify_at, resolve_method = adapter
    entries = {
        "sparsify": (sparsify_at, "density"),
        "initial_density": (lambda v: resolve_method("gmp", {"initial_density": v}),
                            "initial_density"),
        "TrainConfig": (lambda v: resolve(TrainConfig(dataset="digits", density=v)), "density"),
        "LMConfig": (lambda v: resolve_lm(LMConfig(density=v)), "density"),
    }
    for entry, (call, name) in entries.items():
        got = [_verdict(call, v, name) for v in IN_RANGE + OUT_OF_RANGE]
        assert got == ["accepted"] * len(IN_RANGE) + ["refused"] * len(OUT_OF_RANGE), entry


def test_density_one_trains_every_link(adapter):
    sparsify_at, _ = adapter
    dst = sparsify_at(1.0)
    assert [int(m.sum()) for m in dst.masks.values()] == [120]  # the last layer stays dense


@pytest.mark.parametrize("value", IN_RANGE + OUT_OF_RANGE)
def test_cli_train_shares_the_rule(adapter, tmp_path, capsys, monkeypatch, value):
    import netshape.torch._lm_runner as lm_runner
    import netshape.train as tr
    from netshape.lm.config import resolve as resolve_lm

    def reached_mlp(cfg, *args, **kwargs):
        tr.resolve(cfg)
        raise _Reached

    def reached_lm(cfg, *args, **kwargs):
        resolve_lm(cfg)
        raise _Reached

    monkeypatch.setattr(tr, "train", reached_mlp)
    monkeypatch.setattr(lm_runner, "train", reached_lm)
    want = "accepted" if value in IN_RANGE else "refused"
    for task in ("mlp", "lm"):
        argv = ["train", "--task", task, "--density", repr(value), "-q",
                "-o", str(tmp_path / task)]
        assert _cli_verdict(argv, "density", capsys) == want, task
