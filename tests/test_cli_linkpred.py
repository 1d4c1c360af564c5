"""``netshape predict`` and ``netshape bench`` end to end."""

from __future__ import annotations

import csv

import numpy as np
import pytest

import netshape as ns
from netshape.cli import main


@pytest.fixture
def topo(tmp_path):
    A = ns.generators.er(30, 20, 0.1, rng=0)
    path = tmp_path / "A.npz"
    ns.io.save_topology(path, A)
    net = tmp_path / "net.npz"
    ns.io.save_topology(net, {"fc1": A, "fc2": ns.generators.er(20, 10, 0.2, rng=1)})
    return A, path, net


def test_predict_writes_scores_and_top_csv(topo, tmp_path, capsys):
    A, path, _ = topo
    out = tmp_path / "out" / "S.npz"
    assert main(["predict", str(path), "--predictor", "ch2_l3n", "-o", str(out), "--top", "5"]) == 0
    with np.load(out, allow_pickle=False) as d:
        S = d["scores"]
        assert str(d["method"]) == "ch2_l3n"
    np.testing.assert_array_equal(S, ns.linkpred.ch2_l3n(A))
    rows = list(csv.DictReader(open(tmp_path / "out" / "S_top5.csv")))
    assert [int(r["rank"]) for r in rows] == [1, 2, 3, 4, 5]
    scores = [float(r["score"]) for r in rows]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] == pytest.approx(S.max())
    for r in rows:  # each listed candidate is a missing link with that score
        u, j = int(r["input"]), int(r["output"])
        assert not A[u, j] and S[u, j] == pytest.approx(float(r["score"]))
    assert "candidate(s) with a positive score" in capsys.readouterr().out


def test_predict_network_file_and_layer(topo, tmp_path):
    _, _, net = topo
    out = tmp_path / "T.npz"
    assert main(["predict", str(net), "--predictor", "ch3_l3p", "--path", "numpy",
                 "-o", str(out)]) == 0
    with np.load(out, allow_pickle=False) as d:
        assert {"scores.fc1", "scores.fc2"} <= set(d.files)
    assert main(["predict", str(net), "--layer", "fc2", "--predictor", "random", "--rng", "4",
                 "-o", str(out)]) == 0
    with np.load(out, allow_pickle=False) as d:
        assert "scores.fc1" not in d.files and d["scores.fc2"].shape == (20, 10)


@pytest.mark.parametrize("argv, words", [
    (["predict", "missing.npz", "-o", "x.npz"], "no such topology file"),
    (["predict", "{A}", "--layer", "fc9", "-o", "x.npz"], "--layer='fc9'"),
    (["predict", "{A}", "--top", "0", "-o", "x.npz"], "--top=0"),
    (["predict", "{A}", "--predictor", "l3_paths", "--path", "dense", "-o", "x.npz"],
     "--path='dense' does not apply to l3_paths"),
    (["predict", "{A}", "--predictor", "ch2_l3n", "--method", "ch3_l3p", "-o", "x.npz"],
     "disagree"),
])
def test_predict_errors(topo, tmp_path, capsys, argv, words, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = [a.replace("{A}", str(topo[1])) for a in argv]
    assert main(argv) == 2
    assert words in capsys.readouterr().err
    assert not (tmp_path / "x.npz").exists()


@pytest.mark.parametrize("flag", ["--predictor", "--method"])
def test_predict_unknown_predictor_is_a_usage_error(topo, flag):
    with pytest.raises(SystemExit) as exc:
        main(["predict", str(topo[1]), flag, "magic", "-o", "x.npz"])
    assert exc.value.code == 2


def test_predict_method_is_a_deprecated_alias_of_predictor(topo, tmp_path, capsys):
    A, path, _ = topo
    out = tmp_path / "S.npz"
    assert main(["predict", str(path), "--method", "ch3_l3p", "-o", str(out)]) == 0
    assert "--method is deprecated; use --predictor" in capsys.readouterr().err
    with np.load(out, allow_pickle=False) as d:
        assert str(d["method"]) == "ch3_l3p"
        np.testing.assert_array_equal(d["scores"], ns.linkpred.ch3_l3p(A))


def test_bench_quick(tmp_path, capsys):
    out = tmp_path / "bench"
    assert main(["bench", "--quick", "--sizes", "32", "--predictors", "ch2_l3n:dense",
                 "ch2_l3n:sparse", "-o", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "4 configurations" in text and "4 ok" in text
    rows = ns.bench.read_csv(out / "linkpred_runtime.csv")
    assert {(r["path"], r["density"]) for r in rows} == {
        ("dense", 0.02), ("dense", 0.2), ("sparse", 0.02), ("sparse", 0.2)}
    assert (out / "linkpred_runtime.png").stat().st_size > 1000
    assert "`ch2_l3n` (sparse)" in (out / "linkpred_runtime.md").read_text()


@pytest.mark.parametrize("flag", ["--predictors", "--methods"])
def test_bench_bad_predictor(tmp_path, capsys, flag):
    assert main(["bench", "--quick", flag, "nope", "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown predictor" in err
    assert ("deprecated" in err) == (flag == "--methods")


# The child runs `netshape bench` with one hook: when the second configuration starts
# (its worker spawned, the first configuration saved), it says so on stdout and waits for
# the signal. SIGINT then goes to the whole process group, as a terminal's Ctrl-C does.
_BENCH_CHILD = """
import signal, sys
from netshape.bench import _worker
from netshape.cli import main

ask, calls = _worker._Worker.ask, []

def ask_then_wait(self, task):
    calls.append(task)
    if len(calls) == 2:
        def wait_for_ctrl_c(wait):
            print("second configuration started", flush=True)
            signal.pause()
        self._recv = wait_for_ctrl_c
    return ask(self, task)

if __name__ == "__main__":  # the spawned bench worker imports this file too
    _worker._Worker.ask = ask_then_wait
    sys.exit(main(sys.argv[1:]))
"""


def test_ctrl_c_during_bench_keeps_what_was_measured(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    out = tmp_path / "bench"
    script = tmp_path / "child.py"
    script.write_text(_BENCH_CHILD)
    argv = [sys.executable, str(script), "bench", "--sizes", "16", "--densities", "0.1", "0.2",
            "--predictors", "ch2_l3n:dense", "--repeats", "1", "--no-plot", "--no-progress",
            "-o", str(out)]
    # pytest-xdist workers ignore SIGINT and children inherit it: restore the default
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        line = proc.stdout.readline()  # blocks until the child reaches the hook
        assert line.strip() == "second configuration started", proc.stderr.read()
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "interrupted" in lines[0] and "kept 1 measured configuration" in lines[0]
    assert str(out / "linkpred_runtime.csv") in lines[0]
    rows = ns.bench.read_csv(out / "linkpred_runtime.csv")
    assert [(r["n_in"], r["density"], r["status"]) for r in rows] == [(16, 0.1, "ok")]
    assert rows[0]["seconds"] > 0
    assert "`ch2_l3n` (dense)" in (out / "linkpred_runtime.md").read_text()
    assert not list(out.glob(".*"))  # no temporary file left behind
