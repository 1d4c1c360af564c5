"""``netshape train`` on the command line: every preset, compare, resume, Ctrl-C, bad input."""

from __future__ import annotations

import json
import sys

import pytest

torch = pytest.importorskip("torch")

from netshape._cli.train import parse_hidden, parse_overrides  # noqa: E402
from netshape.cli import main  # noqa: E402
from netshape.torch import PRESETS  # noqa: E402
from tests.cli_runs import (  # noqa: E402
    assert_corrupt_compare_named,
    assert_refused,
    interrupt_when_ready,
)

QUICK = ["--hidden", "24,16", "--density", "0.3", "--epochs", "2", "--steps-per-epoch", "4",
         "-q"]


@pytest.mark.parametrize("method", PRESETS)
def test_each_method_trains_a_few_steps(tmp_path, capsys, method):
    out = tmp_path / method
    assert main(["train", "--method", method, *QUICK, "-o", str(out)]) == 0
    said = capsys.readouterr().out
    assert f"{method} on digits: test accuracy" in said and str(out) in said
    assert {"config.json", "metrics.csv", "checkpoint.pt", "summary.json"} <= \
        {p.name for p in out.iterdir()}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["finished"] and summary["epochs_done"] == 2 and summary["method"] == method
    assert len((out / "metrics.csv").read_text().splitlines()) == 3
    if method != "fc":
        assert any((out / "snapshots").glob("update_*.npz"))
        assert set(torch.load(out / "checkpoint.pt", weights_only=True)["masks"]) == {"0", "2"}


def test_compare_prints_one_table(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["train", "--compare", "fc,chts", *QUICK, "-o", str(out)]) == 0
    said = capsys.readouterr().out.splitlines()
    assert said[0].split()[:3] == ["method", "epochs", "density"]
    assert said[2].split()[0] == "fc" and said[3].split()[0] == "chts"
    assert (out / "comparison.md").is_file() and (out / "chts" / "checkpoint.pt").is_file()
    # a second call on the same directory is refused; --resume reuses the finished runs
    assert main(["train", "--compare", "fc,chts", *QUICK, "-o", str(out)]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(["train", "--resume", str(out), "-q"]) == 0
    assert capsys.readouterr().out.splitlines()[2].split()[0] == "fc"


@pytest.mark.parametrize("method", ["chts", "rigl"])
def test_sparse_execution_trains(tmp_path, capsys, method):
    out = tmp_path / "s"
    argv = ["train", "--method", method, "--hidden", "24,16", "--density", "0.3",
            "--steps-per-epoch", "4", "-q", "--execution", "sparse"]
    assert main([*argv, "--epochs", "1", "-o", str(out)]) == 0
    ck = torch.load(out / "checkpoint.pt", weights_only=True)
    assert {"0.values", "0.indices", "0.sparse_shape"} <= set(ck["model"])
    assert ck["model"]["0.values"].numel() == int(ck["masks"]["0"].sum())
    assert json.loads((out / "config.json").read_text())["execution"] == "sparse"
    capsys.readouterr()
    assert main(["train", "--resume", str(out)]) == 0  # a finished sparse run reloads
    assert "after 1 epoch" in capsys.readouterr().out


def test_resume_continues_a_run(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["train", "--method", "fc", *QUICK, "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", str(out)]) == 0
    assert "after 2 epochs" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--dataset", "imagenet"], "dataset='imagenet'"),
    (["--method", "sgd"], "method='sgd'"),
    (["--density", "0"], "density=0.0 is outside the allowed range (0, 1]"),
    (["--density", "nan"], "density=nan is outside the allowed range (0, 1]"),
    (["--density", "1.5"], "density=1.5"),
    (["--hidden", "12,abc"], "--hidden='12,abc'"),
    (["--epochs", "0"], "epochs=0"),
    (["--threads", "0"], "--threads=0"),
    (["--set", "nokey"], "KEY=VALUE"),
    (["--set", "bogus=1"], "bogus"),
    (["--method", "fc", "--compare", "fc,set"], "not both"),
    (["--compare", "fc,zzz"], "zzz"),
    (["--update-every", "0"], "update_every=0"),
    (["--update-every", "-5"], "update_every=-5"),
    (["--update-every", "1800"], "update_every=1800 leaves no topology update"),
    (["--execution", "fast"], "execution='fast' is not allowed"),
])
def test_bad_input_exits_2_before_training(tmp_path, capsys, argv, message):
    out = tmp_path / "r"
    assert_refused(capsys, ["train", *argv, "-q", "-o", str(out)], out, message)


@pytest.mark.parametrize("mode", ["--method", "--compare"])
def test_a_density_that_leaves_a_layer_empty_writes_nothing(tmp_path, capsys, mode):
    # 1e-5 of a 24x16 layer rounds to 0 links: refused by layer, before any file, so
    # that the same output takes a corrected run afterwards
    out = tmp_path / "r"
    method = "set" if mode == "--method" else "fc,set"
    argv = ["train", mode, method, *QUICK, "--epochs", "1", "-o", str(out)]
    assert_refused(capsys, [*argv, "--density", "1e-5"], out, "gives 0 links on a", "density of")
    assert main(argv) == 0


def test_a_corrupt_comparison_record_is_named(tmp_path, capsys):
    texts = ("{not json", '{"methods": ["fc"]}', '{"methods": "fc", "config": {}}')
    assert_corrupt_compare_named(capsys, tmp_path, texts)


def test_missing_data_and_unwritable_output(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("NETSHAPE_DATA", raising=False)
    assert main(["train", "--dataset", "mnist", "--data-dir", str(tmp_path), "-q",
                 "-o", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "mnist") in err and "train-labels-idx1-ubyte.gz" in err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["train", "--method", "fc", *QUICK, "-o", str(blocker / "sub")]) == 2
    assert "not a writable directory" in capsys.readouterr().err


def test_resume_refuses_run_flags_and_non_run_dirs(tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path), "--epochs", "3"]) == 2
    assert "drop --epochs" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path)]) == 2
    assert "config.json" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "nope")]) == 2


def test_parsers():
    assert parse_hidden("64x2") == (64, 64) and parse_hidden("8, 4") == (8, 4)
    for bad in ("", "0x3", "-1", "ax2"):
        with pytest.raises(ValueError, match="--hidden"):
            parse_hidden(bad)
    assert parse_overrides(["r=0.25", "init=csti", "delta=[0.5, 0.9]"]) == \
        {"r": 0.25, "init": "csti", "delta": [0.5, 0.9]}


# The child runs `netshape train` with one hook: right after the first checkpoint is
# written it says so on stdout and waits for the signal, so that SIGINT lands mid-run
# whatever the machine's load (no race between the signal and the training).
_TRAIN_CHILD = """
import signal, sys
import netshape.train._rundir as rundir
from netshape.cli import main

save, saved = rundir.save_checkpoint, []

def save_then_wait(path, payload):
    save(path, payload)
    saved.append(path)
    if len(saved) == 1:
        print("first checkpoint written", flush=True)
        signal.pause()

if __name__ == "__main__":
    rundir.save_checkpoint = save_then_wait
    sys.exit(main(sys.argv[1:]))
"""


def test_ctrl_c_leaves_a_resumable_checkpoint(tmp_path):
    """A real SIGINT to the CLI process: exit 130, checkpoint intact, --resume finishes."""
    out = tmp_path / "run"
    script = tmp_path / "child.py"
    script.write_text(_TRAIN_CHILD)
    epochs = 3
    argv = [sys.executable, str(script), "train", "--method", "set", "--hidden", "24,16",
            "--density", "0.3", "--epochs", str(epochs), "--steps-per-epoch", "4", "-q",
            "--threads", "1", "-o", str(out)]
    returncode, err = interrupt_when_ready(argv, "first checkpoint written")
    assert returncode == 130, err
    assert f"netshape train --resume {out}" in err
    ck = torch.load(out / "checkpoint.pt", weights_only=True)
    assert ck["epoch"] == 1
    rows = (out / "metrics.csv").read_text().splitlines()[1:]
    assert len(rows) == 1  # metrics.csv is written just before the checkpoint
    if (out / "summary.json").exists():
        assert not json.loads((out / "summary.json").read_text())["finished"]
    # one thread: two threads on a loaded 2-core machine run ~10x slower
    assert main(["train", "--resume", str(out), "-q", "--threads", "1"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["finished"] and summary["epochs_done"] == epochs
    done_epochs = [int(r.split(",")[0])
                   for r in (out / "metrics.csv").read_text().splitlines()[1:]]
    assert done_epochs == list(range(1, epochs + 1))
