"""``netshape train --task lm`` on the command line: runs, compare, resume, Ctrl-C, bad input."""

from __future__ import annotations

import json
import sys

import pytest

torch = pytest.importorskip("torch")

from netshape.cli import main  # noqa: E402
from tests.cli_runs import (  # noqa: E402
    assert_corrupt_compare_named,
    assert_refused,
    interrupt_when_ready,
)


@pytest.fixture
def corpus(tmp_path):
    d = tmp_path / "texts"
    d.mkdir()
    for i in range(16):
        (d / f"note_{i:02d}.txt").write_text(f"note {i}: " + "the quick brown fox " * 12 + "\n")
    return d


def quick(corpus, steps=8):
    return ["--task", "lm", "--data-dir", str(corpus), "--steps", str(steps), "--context", "16",
            "--d-model", "16", "--layers", "1", "--heads", "2", "--ffn", "24",
            "--batch-size", "2", "--update-every", "2", "--eval-every", "4",
            "--eval-windows", "2", "--val-fraction", "0.25", "--density", "0.4", "-q"]


@pytest.mark.parametrize("method", ["fc", "chtss"])
def test_a_run_prints_its_summary_and_writes_the_run_directory(tmp_path, capsys, corpus,
                                                              method):
    out = tmp_path / method
    assert main(["train", "--method", method, *quick(corpus), "-o", str(out)]) == 0
    said = capsys.readouterr().out
    assert f"{method} language model on directory: validation perplexity" in said
    assert "after 8 steps (256 tokens)" in said and str(out) in said
    summary = json.loads((out / "summary.json").read_text())
    assert summary["finished"] and summary["task"] == "lm"
    assert json.loads((out / "config.json").read_text())["task"] == "lm"
    # netshape analyze reads the run directory
    rep = tmp_path / "rep"
    assert main(["analyze", str(out), "-o", str(rep), "--no-plots"]) == 0
    assert (rep / "report.md").is_file()


def test_compare_prints_one_table_and_resumes(tmp_path, capsys, corpus):
    out = tmp_path / "cmp"
    assert main(["train", "--compare", "fc,set", *quick(corpus), "-o", str(out)]) == 0
    said = capsys.readouterr().out.splitlines()
    assert said[0].split()[:4] == ["method", "steps", "density", "val"]
    assert said[2].split()[0] == "fc" and said[3].split()[0] == "set"
    assert (out / "comparison.md").is_file() and (out / "set" / "checkpoint.pt").is_file()
    assert main(["train", "--compare", "fc,set", *quick(corpus), "-o", str(out)]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(["train", "--resume", str(out), "-q"]) == 0
    assert capsys.readouterr().out.splitlines()[3].split()[0] == "set"


def test_resume_of_a_finished_run(tmp_path, capsys, corpus):
    out = tmp_path / "r"
    assert main(["train", "--method", "set", *quick(corpus), "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", str(out)]) == 0
    assert "after 8 steps" in capsys.readouterr().out
    assert main(["train", "--resume", str(out), "--steps", "9"]) == 2
    assert "drop --steps" in capsys.readouterr().err
    assert main(["train", "--resume", str(out), "--task", "lm"]) == 2
    assert "drop --task" in capsys.readouterr().err
    assert main(["train", "--resume", str(out), "--density", "0.2", "-o", "x"]) == 2
    assert "drop --density, --output" in capsys.readouterr().err


@pytest.mark.parametrize("extra, message", [
    (["--method", "sgd"], "method='sgd'"),
    (["--density", "1.5"], "density=1.5 is outside the allowed range (0, 1]"),
    (["--steps", "0"], "steps=0"),
    (["--heads", "3"], "n_heads=3"),
    (["--kv-heads", "3"], "n_kv_heads=3"),
    (["--context", "100000"], "fewer than context + 1 = 100001"),
    (["--update-every", "8"], "update_every=8 leaves no topology update"),
    (["--set", "bogus=1"], "bogus"),
    (["--hidden", "8x2"], "--hidden apply to the MLP runner only"),
    (["--epochs", "3"], "--epochs apply to the MLP runner only"),
    (["--method", "fc", "--compare", "fc,set"], "not both"),
    (["--compare", "fc,zzz"], "zzz"),
    (["--threads", "0"], "--threads=0"),
])
def test_bad_input_exits_2_before_writing(tmp_path, capsys, corpus, extra, message):
    out = tmp_path / "r"
    assert_refused(capsys, ["train", *quick(corpus), *extra, "-o", str(out)], out, message)


def test_missing_corpus_and_lm_flags_without_task(tmp_path, capsys, corpus):
    out = tmp_path / "r"
    argv = quick(corpus)
    argv[argv.index("--data-dir") + 1] = str(tmp_path / "nowhere")
    assert main(["train", *argv, "-o", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err and not out.exists()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for how in (["--method", "fc"], ["--compare", "fc,set"]):
        assert main(["train", *quick(corpus), *how, "-o", str(blocker / "sub")]) == 2
        assert "not a writable directory" in capsys.readouterr().err
    assert main(["train", "--steps", "5", "--context", "8", "-o", str(out)]) == 2
    assert "--steps, --context apply to --task lm only" in capsys.readouterr().err
    assert not out.exists()


_CHILD = """
import sys
from netshape.train import _rundir as rd
save = rd.save_checkpoint
def save_then_wait(path, payload):
    save(path, payload)
    if payload["step"] == 4:
        print("checkpoint", flush=True)  # the parent sends SIGINT on this line
        sys.stdin.readline()             # ... and it lands while the run waits here
rd.save_checkpoint = save_then_wait
from netshape.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_ctrl_c_leaves_a_resumable_checkpoint(tmp_path, corpus):
    """A real SIGINT, sent when the child says its first checkpoint is written."""
    out = tmp_path / "run"
    argv = [sys.executable, "-c", _CHILD, "train", "--method", "chts", *quick(corpus, 12),
            "--threads", "1", "-o", str(out)]
    returncode, err = interrupt_when_ready(argv, "checkpoint")
    assert returncode == 130, err
    assert f"netshape train --resume {out}" in err
    assert torch.load(out / "checkpoint.pt", weights_only=True)["step"] == 4
    assert not (out / "summary.json").exists()  # interrupted between checkpoint and summary
    assert main(["train", "--resume", str(out), "-q", "--threads", "1"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["finished"] and summary["steps_done"] == 12
    steps = [int(r.split(",")[0]) for r in (out / "metrics.csv").read_text().splitlines()[1:]]
    assert steps == [4, 8, 12]


@pytest.mark.parametrize("mode", ["--method", "--compare"])
def test_a_density_that_leaves_a_layer_empty_writes_nothing(tmp_path, capsys, corpus, mode):
    # 1e-5 of a 16x16 projection rounds to 0 links: refused before config.json,
    # split.json or snapshots/ exist, so that a corrected retry takes the same output
    out = tmp_path / "r"
    method = "set" if mode == "--method" else "fc,set"
    argv = ["train", mode, method, *quick(corpus, steps=4), "-o", str(out)]
    assert_refused(capsys, [*argv, "--density", "1e-5"], out, "gives 0 links on a 16x16 layer",
                   "density of blocks.0")
    assert main(argv) == 0


def test_a_corrupt_comparison_record_is_named(tmp_path, capsys):
    texts = ('{"config": {"task": "lm"}}', '{"methods": ["set"], "config": {"task": "lm"')
    assert_corrupt_compare_named(capsys, tmp_path, texts)
