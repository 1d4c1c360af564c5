"""netshape.train: run directory, resume equality, Ctrl-C safety, presets, helpers."""

from __future__ import annotations

import json
import math
import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from netshape.torch import PRESETS  # noqa: E402
from netshape.train import TrainConfig, compare, resume, train  # noqa: E402
from netshape.train import _rundir as rd  # noqa: E402
from netshape.train._model import anp_of_chain, build_mlp, epoch_order, linear_lr  # noqa: E402
from netshape.train._table import comparison_rows, format_markdown, format_text  # noqa: E402
from tests.run_checks import assert_same_state, strip_timings  # noqa: E402


def tiny(method="fc", **kw) -> TrainConfig:
    base = dict(dataset="digits", method=method, epochs=3, hidden=(24, 16), density=0.3,
                steps_per_epoch=6, rng=1)
    base.update(kw)
    return TrainConfig(**base)


# ---------------------------------------------------------------- run directory
def test_fc_run_directory_contents(tmp_path):
    s = train(tiny(), tmp_path / "run", progress=False)
    run = tmp_path / "run"
    assert {p.name for p in run.iterdir()} >= {"config.json", "metrics.csv", "checkpoint.pt",
                                               "summary.json"}
    assert not [p for p in run.iterdir() if p.name.startswith(".")]  # no temp files left
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["method"] == "fc" and cfg["hidden"] == [24, 16] and cfg["epochs"] == 3
    rows = rd.read_metrics(run / "metrics.csv")
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert [r["step"] for r in rows] == [6, 12, 18]
    assert (run / "metrics.csv").read_text().splitlines()[0] == ",".join(rd.METRIC_COLUMNS)
    for r in rows:
        assert 0 <= r["test_acc"] <= 1 and math.isfinite(r["train_loss"])
        assert r["density"] == 1.0 and r["anp"] == 1.0
    ck = torch.load(run / "checkpoint.pt", weights_only=True)
    assert ck["epoch"] == 3 and ck["step"] == 18
    assert set(ck["model"]) == {f"{i}.{p}" for i in (0, 2, 4) for p in ("weight", "bias")}
    summary = json.loads((run / "summary.json").read_text())
    assert summary["finished"] and summary["epochs_done"] == 3
    assert summary["test_acc"] == pytest.approx(rows[-1]["test_acc"])
    assert summary["best_test_acc"] == pytest.approx(max(r["test_acc"] for r in rows))
    assert s["test_acc"] == summary["test_acc"]


def test_lr_falls_linearly_to_the_end_value(tmp_path):
    train(tiny(epochs=2, lr=0.1, lr_end=0.001), tmp_path / "r", progress=False)
    rows = rd.read_metrics(tmp_path / "r" / "metrics.csv")
    # the lr column is the lr of each epoch's last step: step 6 of 12 and step 12 of 12
    assert rows[0]["lr"] == pytest.approx(linear_lr(5, 12, 0.1, 0.001), rel=1e-5)
    assert rows[1]["lr"] == pytest.approx(0.001, rel=1e-5)


def test_same_seed_same_run_and_other_seed_differs(tmp_path):
    a = train(tiny(), tmp_path / "a", progress=False)
    b = train(tiny(), tmp_path / "b", progress=False)
    c = train(tiny(rng=2), tmp_path / "c", progress=False)
    assert strip_timings(rd.read_metrics(tmp_path / "a" / "metrics.csv")) == \
        strip_timings(rd.read_metrics(tmp_path / "b" / "metrics.csv"))
    assert a["test_loss"] == b["test_loss"] and a["test_loss"] != c["test_loss"]


# ---------------------------------------------------------------- resume / Ctrl-C
class Stop(KeyboardInterrupt):
    pass


@pytest.mark.parametrize("method", ["fc", "chts", "rigl"])
def test_interrupt_mid_epoch_then_resume_equals_uninterrupted(tmp_path, method):
    full = tmp_path / "full"
    train(tiny(method), full, progress=False)

    part = tmp_path / "part"

    def boom(step):
        if step == 9:  # in the middle of epoch 2 (steps 6..11)
            raise Stop

    with pytest.raises(KeyboardInterrupt):
        train(tiny(method), part, progress=False, on_step=boom)
    ck = torch.load(part / "checkpoint.pt", weights_only=True)
    assert ck["epoch"] == 1  # the last complete epoch, intact
    assert [r["epoch"] for r in rd.read_metrics(part / "metrics.csv")] == [1]
    assert not json.loads((part / "summary.json").read_text())["finished"]

    s = resume(part, progress=False)
    assert s["finished"]
    assert strip_timings(rd.read_metrics(part / "metrics.csv")) == \
        strip_timings(rd.read_metrics(full / "metrics.csv"))
    assert_same_state(torch.load(part / "checkpoint.pt", weights_only=True),
                      torch.load(full / "checkpoint.pt", weights_only=True))


def _interrupt_after_epoch_two(run):
    def stop_after_two(row):
        if row["epoch"] == 2:
            raise Stop

    with pytest.raises(KeyboardInterrupt):
        train(tiny(), run, progress=False, on_epoch_end=stop_after_two)


def test_resume_drops_metrics_rows_after_the_checkpoint(tmp_path):
    run = tmp_path / "r"

    _interrupt_after_epoch_two(run)
    # simulate a crash between writing metrics and the next checkpoint
    rows = rd.read_metrics(run / "metrics.csv")
    rd.write_metrics(run / "metrics.csv", rows + [dict(rows[-1], epoch=3, test_acc=0.123)])
    ck = torch.load(run / "checkpoint.pt", weights_only=True)
    ck["epoch"] = 1
    del ck["metrics"]  # a checkpoint without its copy of the rows: the CSV is trimmed
    rd.save_checkpoint(run / "checkpoint.pt", ck)
    resume(run, progress=False)
    rows = rd.read_metrics(run / "metrics.csv")
    assert [r["epoch"] for r in rows] == [1, 2, 3] and rows[-1]["test_acc"] != 0.123


def test_resume_restores_metrics_rows_from_the_checkpoint(tmp_path):
    run = tmp_path / "r"

    _interrupt_after_epoch_two(run)
    before = rd.read_metrics(run / "metrics.csv")
    rd.write_metrics(run / "metrics.csv", [])  # the CSV lost its rows
    resume(run, progress=False)
    rows = rd.read_metrics(run / "metrics.csv")
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert strip_timings(rows[:2]) == strip_timings(before)


def test_resume_without_checkpoint_restarts_and_finished_run_is_returned(tmp_path):
    run = tmp_path / "r"

    def stop_now(step):
        raise Stop

    with pytest.raises(KeyboardInterrupt):
        train(tiny(), run, progress=False, on_step=stop_now)
    assert not (run / "checkpoint.pt").exists() and (run / "config.json").exists()
    s = resume(run, progress=False)
    assert s["finished"] and s["epochs_done"] == 3
    mtime = (run / "checkpoint.pt").stat().st_mtime_ns
    assert resume(run, progress=False)["test_acc"] == s["test_acc"]
    assert (run / "checkpoint.pt").stat().st_mtime_ns == mtime  # nothing retrained


# ---------------------------------------------------------------- presets
@pytest.mark.parametrize("method", PRESETS)
def test_every_preset_trains_a_few_steps(tmp_path, method):
    cfg = tiny(method, epochs=2, steps_per_epoch=4, density=0.25, hidden=(32, 32))
    s = train(cfg, tmp_path / method, progress=False)
    run = tmp_path / method
    assert s["finished"] and 0 <= s["test_acc"] <= 1
    ck = torch.load(run / "checkpoint.pt", weights_only=True)
    if method == "fc":
        assert s["density"] == 1.0
        return
    masks = ck["masks"]
    assert list(masks) == ["0", "2"]  # both hidden layers sparsified, classifier dense
    assert tuple(masks["0"].shape) == (32, 64)  # (out, in), as nn.Linear.weight
    w = ck["model"]["0.parametrizations.weight.original"]
    assert torch.all(w[~masks["0"]] == 0)  # masked weights exactly zero
    links = sum(int(m.sum()) for m in masks.values())
    assert s["density"] == pytest.approx(links / sum(m.numel() for m in masks.values()))
    if method in ("set", "rigl", "cht", "chts"):  # constant-density presets keep the target
        for m in masks.values():
            assert int(m.sum()) == round(0.25 * m.numel())
    assert s["layers"]["0"]["links"] == int(masks["0"].sum())
    assert 0 < s["anp"] <= 1 and 0 < s["itop"] <= 1
    assert sorted(p.name for p in (run / "snapshots").iterdir())  # the update wrote one


def test_update_every_sets_the_update_steps(tmp_path):
    # 2 epochs x 4 steps = 8 steps; an update every 3 steps: steps 3 and 6
    s = train(tiny("set", epochs=2, steps_per_epoch=4, update_every=3), tmp_path / "u3",
              progress=False)
    rows = rd.read_metrics(tmp_path / "u3" / "metrics.csv")
    assert [r["topology_updates"] for r in rows] == [1, 1] and s["finished"]
    sd = torch.load(tmp_path / "u3" / "checkpoint.pt", weights_only=True)["dst"]
    assert sd["update_every"] == 3 and sd["updates"] == 2
    s = train(tiny("set", epochs=2, steps_per_epoch=4, update_every=1), tmp_path / "u1",
              progress=False)
    rows = rd.read_metrics(tmp_path / "u1" / "metrics.csv")
    assert [r["topology_updates"] for r in rows] == [4, 3]  # steps 1..7; none at the last
    # the default is one update per epoch
    train(tiny("set", epochs=3, steps_per_epoch=4), tmp_path / "ud", progress=False)
    assert [r["topology_updates"] for r in rd.read_metrics(tmp_path / "ud" / "metrics.csv")] \
        == [1, 1, 0]


def test_update_every_longer_than_the_run_is_refused_before_writing(tmp_path):
    with pytest.raises(ValueError, match=r"update_every=8 leaves no topology update in a run "
                                         r"of 8 steps .* allowed: 1 to 7"):
        train(tiny("chts", epochs=2, steps_per_epoch=4, update_every=8), tmp_path / "r",
              progress=False)
    assert not (tmp_path / "r").exists()
    # fc has no topology: any update_every is accepted and ignored
    assert train(tiny("fc", epochs=1, steps_per_epoch=2, update_every=50), tmp_path / "fc",
                 progress=False)["finished"]


def test_rigl_update_steps_take_no_optimizer_step(tmp_path, monkeypatch):
    calls = []
    real = torch.optim.SGD.step

    def counting(self, *a, **k):
        calls.append(1)
        return real(self, *a, **k)

    monkeypatch.setattr(torch.optim.SGD, "step", counting)
    train(tiny("rigl", epochs=2, steps_per_epoch=4, update_every=2), tmp_path / "r",
          progress=False)
    # 8 steps, updates at 2, 4, 6 (rigl updates until 0.75 of training): 8 - 3 = 5 steps taken
    assert len(calls) == 5
    calls.clear()
    train(tiny("set", epochs=2, steps_per_epoch=4, update_every=2), tmp_path / "s",
          progress=False)
    assert len(calls) == 8


def test_zeta_and_overrides_reach_the_adapter(tmp_path):
    for zeta in (0.2, 0.4):
        cfg = tiny("set", epochs=2, steps_per_epoch=4, zeta=zeta)
        train(cfg, tmp_path / f"z{zeta}", progress=False)
        sd = torch.load(tmp_path / f"z{zeta}" / "checkpoint.pt", weights_only=True)["dst"]
        links = int(sd["masks"]["0"].sum())
        assert abs(sd["stats"]["0"]["removed"] - zeta * links) < 1
    with pytest.raises(ValueError, match="bogus"):
        train(tiny("chts", overrides={"bogus": 1}), tmp_path / "bad", progress=False)


def test_fan_in_rescaling_of_initial_weights():
    from netshape.torch import get_original, sparsify
    from netshape.torch._train_loop import _rescale_to_fan_in

    model = build_mlp(30, [20, 10], 3, seed=0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    dst = sparsify(model, opt, method="set", density=0.2, total_steps=10, update_every=5, rng=0)
    before = {k: get_original(model.get_submodule(k)).detach().clone() for k in dst.masks}
    _rescale_to_fan_in(model, dst)
    for k, mask in dst.masks.items():
        after = get_original(model.get_submodule(k)).detach()
        n_in = mask.shape[1]
        for j in range(mask.shape[0]):  # row by row, as the docstring says
            fan = max(int(mask[j].sum()), 1)
            np.testing.assert_allclose(after[j].numpy(),
                                       before[k][j].numpy() * math.sqrt(n_in / fan), rtol=1e-6)
        bound = 1 / torch.sqrt(mask.sum(1, keepdim=True).clamp(min=1).float())
        assert torch.all(after.abs() <= bound + 1e-6)


def test_fan_in_rescaling_in_sparse_execution():
    from netshape.torch import get_original, sparsify
    from netshape.torch._train_loop import _rescale_to_fan_in

    weights = {}
    for execution in ("masked", "sparse"):
        model = build_mlp(30, [20, 10], 3, seed=0)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        dst = sparsify(model, opt, method="set", density=0.2, total_steps=10, update_every=5,
                       rng=0, execution=execution)
        _rescale_to_fan_in(model, dst)
        weights[execution] = {
            k: (model.get_submodule(k).dense_weight() if execution == "sparse"
                else get_original(model.get_submodule(k)).detach()) for k in dst.masks}
    for k, w in weights["masked"].items():
        torch.testing.assert_close(weights["sparse"][k], w, rtol=0, atol=0)


def test_init_scale_choice(tmp_path):
    a = train(tiny("set", epochs=1, init_scale="dense"), tmp_path / "a", progress=False)
    b = train(tiny("set", epochs=1), tmp_path / "b", progress=False)
    assert a["test_loss"] != b["test_loss"]
    with pytest.raises(ValueError, match="init_scale='big'"):
        train(tiny("set", init_scale="big"), tmp_path / "c", progress=False)


# ---------------------------------------------------------------- compare
def test_compare_writes_table_and_is_incremental(tmp_path):
    out = tmp_path / "cmp"
    printed = []
    s = compare(["fc", "set"], tiny(epochs=2), out, progress=False, print_fn=printed.append)
    assert [x["method"] for x in s] == ["fc", "set"]
    md = (out / "comparison.md").read_text()
    assert "| fc |" in md and "| set |" in md
    csv_lines = (out / "comparison.csv").read_text().splitlines()
    assert csv_lines[0].startswith("method,epochs,density,test_acc") and len(csv_lines) == 3
    assert "fc" in printed[0] and "set" in printed[0]
    mtime = (out / "fc" / "checkpoint.pt").stat().st_mtime_ns
    again = compare(["fc", "set"], tiny(epochs=2), out, progress=False, print_fn=None)
    assert [x["test_acc"] for x in again] == [x["test_acc"] for x in s]
    assert (out / "fc" / "checkpoint.pt").stat().st_mtime_ns == mtime


def test_compare_rejects_bad_lists(tmp_path):
    with pytest.raises(ValueError, match="compare"):
        compare(["fc", "fc"], tiny(), tmp_path, progress=False)
    with pytest.raises(ValueError, match="nope"):
        compare(["fc", "nope"], tiny(), tmp_path / "x", progress=False)
    assert not (tmp_path / "x").exists()


def test_table_formats():
    rows = comparison_rows([
        {"method": "fc", "epochs": 2, "density": 1.0, "test_acc": 0.9123, "best_test_acc": 0.92,
         "anp": 1.0, "itop": 1.0, "train_seconds": 1.5, "topology_seconds": 0.0},
        {"method": "chts", "epochs": 2, "density": 0.01, "test_acc": 0.9, "best_test_acc": None,
         "anp": 0.5, "itop": None, "train_seconds": 2.0, "topology_seconds": 0.25}])
    text = format_text(rows).splitlines()
    assert text[0].split()[:3] == ["method", "epochs", "density"]
    assert "91.23" in text[2] and "50.0" in text[3] and " - " in text[3] + " "
    md = format_markdown(rows).splitlines()
    assert md[1].startswith("|---|---:") and md[3].startswith("| chts | 2 | 0.0100 | 90.00 | - |")


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("kw, match", [
    ({"dataset": "imagenet"}, "dataset='imagenet'"),
    ({"method": "sgd"}, "method='sgd'"),
    ({"density": 0.0}, "density=0.0"),
    ({"density": 1.5}, r"density=1.5 is outside the allowed range \(0, 1\]"),
    ({"density": float("nan")}, "density=nan"),
    ({"epochs": 0}, "epochs=0"),
    ({"hidden": ()}, "hidden"),
    ({"hidden": (8, -1)}, "hidden=-1"),
    ({"lr": -1.0}, "lr=-1.0"),
    ({"momentum": 1.0}, "momentum=1.0"),
    ({"zeta": 1.5}, "zeta=1.5"),
    ({"rng": -3}, "rng=-3"),
    ({"batch_size": 0}, "batch_size=0"),
])
def test_bad_config_is_refused_before_anything_is_written(tmp_path, kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        train(tiny(**kw), tmp_path / "r", progress=False)
    assert not (tmp_path / "r").exists()


def test_missing_data_files_refused_before_run_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("NETSHAPE_DATA", raising=False)
    with pytest.raises(FileNotFoundError, match="t10k-images-idx3-ubyte.gz"):
        train(tiny(dataset="mnist", data_dir=str(tmp_path / "data")), tmp_path / "r",
              progress=False)
    assert not (tmp_path / "r").exists()


def test_existing_run_dir_is_not_overwritten(tmp_path):
    train(tiny(epochs=1), tmp_path / "r", progress=False)
    before = (tmp_path / "r" / "metrics.csv").read_text()
    with pytest.raises(ValueError, match="already holds a run"):
        train(tiny(epochs=1), tmp_path / "r", progress=False)
    assert (tmp_path / "r" / "metrics.csv").read_text() == before


def test_unsafe_or_corrupt_checkpoint_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    bad = tmp_path / "evil.pt"
    bad.write_bytes(pickle.dumps({"model": Evil()}, protocol=2))
    with pytest.raises(ValueError, match="cannot read checkpoint"):
        rd.load_checkpoint(bad)
    torn = tmp_path / "torn.pt"
    rd.save_checkpoint(torn, {"model": {"w": torch.ones(100)}})
    torn.write_bytes(torn.read_bytes()[:50])
    with pytest.raises(ValueError, match="cannot read checkpoint"):
        rd.load_checkpoint(torn)
    with pytest.raises(FileNotFoundError):
        rd.load_checkpoint(tmp_path / "none.pt")


# ---------------------------------------------------------------- helpers
def test_linear_lr_end_points_and_monotone():
    vals = [linear_lr(t, 50, 0.025, 2.5e-4) for t in range(50)]
    assert vals[0] == 0.025 and vals[-1] == pytest.approx(2.5e-4)
    assert all(a > b for a, b in zip(vals, vals[1:], strict=False))
    assert linear_lr(0, 1, 0.3, 0.1) == 0.3


def test_epoch_order_is_a_permutation_per_epoch():
    a, b = epoch_order(0, 1, 100), epoch_order(0, 2, 100)
    assert sorted(a) == list(range(100)) and not np.array_equal(a, b)
    assert np.array_equal(a, epoch_order(0, 1, 100))


def test_build_mlp_deterministic_and_leaves_global_rng():
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a, b = build_mlp(5, [4, 3], 2, seed=7), build_mlp(5, [4, 3], 2, seed=7)
    assert torch.equal(torch.get_rng_state(), state)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)


def _anp_by_peeling(masks):
    """Plain-loop definition: repeatedly drop hidden neurons missing an in- or out-link."""
    sizes = [masks[0].shape[1]] + [m.shape[0] for m in masks]
    alive = [np.ones(n, bool) for n in sizes]
    changed = True
    while changed:
        changed = False
        for lvl in range(len(sizes)):
            for j in range(sizes[lvl]):
                if not alive[lvl][j]:
                    continue
                has_in = lvl == 0 or any(masks[lvl - 1][j, i] and alive[lvl - 1][i]
                                         for i in range(sizes[lvl - 1]))
                has_out = lvl == len(sizes) - 1 or any(masks[lvl][k, j] and alive[lvl + 1][k]
                                                       for k in range(sizes[lvl + 1]))
                if not (has_in and has_out):
                    alive[lvl][j] = False
                    changed = True
    return sum(a.sum() for a in alive) / sum(sizes)


def test_anp_of_chain_matches_peeling_on_random_chains():
    rng = np.random.default_rng(0)
    for _ in range(60):
        widths = rng.integers(1, 7, size=rng.integers(2, 5))
        p = rng.uniform(0.05, 0.6)
        masks = [rng.random((b, a)) < p for a, b in zip(widths[:-1], widths[1:], strict=True)]
        assert anp_of_chain(masks) == pytest.approx(_anp_by_peeling(masks))


@pytest.mark.parametrize("code", [
    # netshape.train and its config load lazily: torch is imported by the loop only
    "import netshape.train; from netshape.train import TrainConfig, resolve; TrainConfig()",
    # LMConfig and LMShape are plain data
    "from netshape.lm import LMConfig, LMShape; LMConfig(); LMShape().validated()",
], ids=["train", "lm"])
def test_configs_import_without_torch(code):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", f"import sys; {code}; "
                          "print('torch' in sys.modules)"], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
