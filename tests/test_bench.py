"""The runtime sweep engine: rows, timeouts, CSV/markdown/PNG outputs, the plot."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

from netshape import bench
from netshape.bench import _sweep as bench_sweep
from netshape.bench import _worker as _bench_worker


@pytest.fixture(scope="module")
def quick_rows():
    return bench.run(sizes=(32, 64), densities=(0.05, 0.3),
                     predictors=("ch2_l3n:dense", "ch2_l3n:sparse", "ch2_l3n:auto", "ch3_l3p"),
                     repeats=2, timeout=60, progress=False)


def test_rows_are_tidy_and_complete(quick_rows):
    assert len(quick_rows) == 4 * 2 * 2
    for r in quick_rows:
        assert set(bench.COLUMNS) <= set(r)
        assert r["status"] == "ok", r
        assert r["seconds"] > 0 and r["seconds_min"] <= r["seconds"]
        assert r["gemm_seconds"] > 0
        assert math.isclose(r["ratio_to_gemm"], r["seconds"] / r["gemm_seconds"])
        assert r["nnz"] == round(r["density"] * r["n_in"] * r["n_out"])
        assert r["peak_mb"] > 0 and "numpy=" in r["versions"] and r["threads"] >= 1
        assert 1 <= r["repeats"] <= _bench_worker._MAX_REPEATS  # short calls repeat more


def test_timeout_is_recorded_not_timed():
    # a 1 ms budget: the first configuration times out, the larger/denser ones are skipped
    rows = bench.run(sizes=(400, 500), densities=(0.2, 0.3), predictors=("ch3_l3p:numpy",),
                     repeats=1, timeout=0.001, progress=False)
    status = [(r["n_in"], r["density"], r["status"]) for r in rows]
    assert status[0] == (400, 0.2, "timeout")
    assert all(s == "skipped" for *_, s in status[1:])
    assert all(math.isnan(r["seconds"]) for r in rows)


def test_csv_round_trip_and_outputs(quick_rows, tmp_path):
    paths = bench.write_results(quick_rows, tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {
        "linkpred_runtime.csv", "linkpred_runtime.md", "linkpred_runtime.png"}
    back = bench.read_csv(paths["csv"])
    assert len(back) == len(quick_rows)
    for a, b in zip(back, quick_rows, strict=True):
        assert a["method"] == b["method"] and a["n_in"] == b["n_in"]
        assert math.isclose(a["seconds"], b["seconds"], rel_tol=1e-5)
    md = paths["md"].read_text()
    assert "## GEMM reference" in md and "`ch2_l3n` (dense)" in md and "| 64 |" in md
    assert "## Targets" not in md  # the project's targets live in benchmarks/, not the library
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


ROW = dict(method="ch2_l3n", path="dense", backend="numpy", n_in=2048, n_out=2048,
           density=0.05, nnz=1, status="ok", seconds=3.0, seconds_min=3.0, repeats=1,
           gemm_seconds=1.0, ratio_to_gemm=3.0, peak_mb=10.0, threads=2, versions="x")
SLOW = dict(ROW, method="ch3_l3p", path="auto", n_in=1024, n_out=1024, status="timeout",
            seconds=float("nan"), ratio_to_gemm=float("nan"))


def test_markdown_marks_timeouts_and_takes_an_extra_section():
    md = bench.to_markdown([ROW, SLOW], extra=["## Mine", "", "text"])
    assert "| 1024 | timeout |" in md.split("## `ch3_l3p` (auto)")[1]
    assert md.index("## Mine") < md.index("## GEMM reference")


def _targets_module():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "linkpred_targets.py"
    spec = importlib.util.spec_from_file_location("linkpred_targets", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_project_targets_are_judged_in_benchmarks():
    targets = _targets_module()
    lines = targets.targets_text([ROW, SLOW])
    assert lines[0].endswith("[met]") and "3.00" in lines[0]
    assert "n/a" in lines[3]  # the timed-out CH3-L3p gives no number
    assert "[missed]" in targets.targets_text([dict(ROW, ratio_to_gemm=4.0)])[0]
    assert targets.targets_markdown([ROW])[0] == "## Targets"


def test_runtime_plot(quick_rows, tmp_path):
    import matplotlib.pyplot as plt

    from netshape.plot import runtime

    axes = runtime(quick_rows)
    assert len(axes) == 2 and axes[0].get_yscale() == "log"
    labels = [t.get_text() for t in axes[0].get_legend().get_texts()]
    assert "ch2_l3n (dense)" in labels and "one n×n GEMM" in labels
    fig, ax = plt.subplots()
    assert runtime(quick_rows, ax=ax, size=32) is ax
    with pytest.raises(ValueError, match="not in the results"):
        runtime(quick_rows, size=1000)
    plt.close("all")


@pytest.mark.parametrize("kw, words", [
    ({"sizes": (0,)}, "sizes"),
    ({"densities": (1.5,)}, "densities"),
    ({"predictors": ("ch9",)}, "unknown predictor"),
    ({"predictors": ("l3_paths:dense",)}, "has no path 'dense'"),
    ({"backend": "jax"}, "backend"),
    ({"timeout": -1}, "timeout"),
    ({"repeats": 0}, "repeats"),
])
def test_bad_arguments(kw, words):
    with pytest.raises((ValueError, TypeError), match=words):
        bench.run(**{"sizes": (16,), "densities": (0.1,), "progress": False, **kw})


def test_same_seed_same_layers():
    r1 = bench.run(sizes=(40,), densities=(0.1,), predictors=("l3_paths",), repeats=1,
                   progress=False, rng=3)
    r2 = bench.run(sizes=(40,), densities=(0.1,), predictors=("l3_paths",), repeats=1,
                   progress=False, rng=3)
    assert r1[0]["nnz"] == r2[0]["nnz"] == 160
    assert np.isfinite(r1[0]["seconds"])


def test_paths_of_one_predictor_share_a_worker_and_timeouts_stay_per_path(monkeypatch):
    # a path that overruns is killed and recorded; the other paths of the same
    # predictor are timed again in a fresh worker and keep their numbers
    rows = bench.run(sizes=(300,), densities=(0.3,),
                     predictors=("ch3_l3p:numpy", "ch3_l3p:numba", "ch3_l3p:numpy"),
                     repeats=1, timeout=0.002, progress=False)
    assert [(r["path"], r["status"]) for r in rows] == [("numpy", "timeout"),
                                                         ("numba", "timeout")]
    rows = bench.run(sizes=(24, 48), densities=(0.1,),
                     predictors=("l3_paths", "ch2_l3n:sparse", "ch2_l3n:dense"),
                     repeats=1, timeout=60, progress=False)
    assert [(r["method"], r["path"], r["n_in"]) for r in rows] == [
        ("l3_paths", "auto", 24), ("l3_paths", "auto", 48), ("ch2_l3n", "sparse", 24),
        ("ch2_l3n", "sparse", 48), ("ch2_l3n", "dense", 24), ("ch2_l3n", "dense", 48)]
    assert all(r["status"] == "ok" and r["seconds"] > 0 for r in rows)


class _FakeClock:
    """``time.perf_counter`` that advances ``step`` seconds per reading: every timed
    call lasts exactly ``step``, whatever the machine's load."""

    def __init__(self, step):
        self.now, self.step = 0.0, step

    def __call__(self):
        self.now += self.step
        return self.now


TASK = {"name": "ch2_l3n", "paths": ["dense", "sparse"], "n": 16, "density": 0.2, "seed": 0,
        "backend": "numpy", "repeats": 1, "warmup": 1, "timeout": 5.0}


def test_worker_judges_each_path_by_its_own_clock(monkeypatch):
    # every call "takes" 10 s against a 5 s timeout: both paths are timeouts, by path
    monkeypatch.setattr(_bench_worker.time, "perf_counter", _FakeClock(10.0))
    sent = []
    _bench_worker._measure(TASK, sent.append)
    assert sent[0] == ("ready", 10.0)  # the start-up reference product, by the same clock
    assert sent[1:5] == [("call", ("warmup", "dense")), ("warm", ("dense", 10.0)),
                         ("call", ("warmup", "sparse")), ("warm", ("sparse", 10.0))]
    assert sent[-1] == ("ok", {"dense": "timeout", "sparse": "timeout"})
    # every call "takes" 0.5 s: numbers for both, repeats from the 3 s / 8 s budgets
    monkeypatch.setattr(_bench_worker.time, "perf_counter", _FakeClock(0.5))
    sent = []
    _bench_worker._measure(TASK, sent.append)
    status, out = sent[-1]
    assert status == "ok" and set(out) == {"dense", "sparse"}
    for res in out.values():
        assert res["seconds"] == res["seconds_min"] == res["gemm_seconds"] == 0.5
        assert res["repeats"] == 6 and res["nnz"] == round(0.2 * 16 * 16)


def test_worker_reports_timeouts_by_path(monkeypatch):
    task = {"name": "ch3_l3p", "paths": ["numba", "numpy"], "n": 400, "density": 0.3,
            "seed": 0, "backend": "numpy", "repeats": 1, "warmup": 1, "timeout": 1e-4}
    # the parent waits for each message without a deadline: the verdicts are the
    # worker's own (a warm-up call of 400² at 30 % over 0.1 ms), not a race with the clock
    monkeypatch.setattr(_bench_worker._Worker, "_recv", lambda self, wait: self.conn.recv())
    worker = _bench_worker._Worker()
    try:
        assert worker.ask(task) == ("ok", {"numba": "timeout", "numpy": "timeout"})
    finally:
        worker.close()
    # silence past the deadline (the first wait after "ready" gets nothing) names the
    # path whose call was running and kills the worker
    answers = []

    def ready_then_silence(self, wait):
        answers.append(self.conn.recv() if not answers else None)
        return answers[-1]

    monkeypatch.setattr(_bench_worker._Worker, "_recv", ready_then_silence)
    worker = _bench_worker._Worker()
    try:
        assert worker.ask(task) == ("timeout", "numba")
        assert worker.proc is None and answers[0][0] == "ready"
    finally:
        worker.close()


def test_worker_names_the_running_path_and_allows_for_reference_products(monkeypatch):
    # every call "takes" 0.5 s: the worker announces each phase before its call
    monkeypatch.setattr(_bench_worker.time, "perf_counter", _FakeClock(0.5))
    sent = []
    _bench_worker._measure(TASK, sent.append)
    calls = [m[1] for m in sent if m[0] == "call"]
    assert calls[:4] == [("warmup", "dense"), ("probe", "dense"), ("warmup", "sparse"),
                         ("probe", "sparse")]
    timed = [p for phase, p in calls if phase == "timed"]
    assert sorted(timed) == ["dense"] * 6 + ["sparse"] * 6
    assert [p for phase, p in calls if phase == "peak"] == ["dense", "sparse"]
    # the parent blames the path announced last, waiting the phase's allowance,
    # which counts the reference product measured at start-up
    script = iter([("ready", 3.0), ("call", ("warmup", "dense")), ("warm", ("dense", 0.1)),
                   ("call", ("warmup", "sparse")), ("warm", ("sparse", 0.1)),
                   ("call", ("timed", "sparse")), ("call", ("timed", "dense")), None])
    waits = []

    def scripted(self, wait):
        waits.append(wait)
        return next(script)

    monkeypatch.setattr(_bench_worker._Worker, "_recv", scripted)
    worker = _bench_worker._Worker()
    try:
        assert worker.ask(TASK) == ("timeout", "dense")
    finally:
        worker.close()
    T = TASK["timeout"]
    assert waits[-1] == 2 * T + 4 * 3.0 + 5.0 == _bench_worker.allowance("timed", T, 0.1,
                                                                          3.0, 1)
    assert waits[1] == T * 1 + 5.0  # a warm-up phase


def _exit_at_once(conn):  # a worker that dies on its first task, before "ready"
    conn.recv()
    os._exit(3)


def _exit_after_ready(conn):  # ... or in the middle of a path's warm-up
    conn.recv()
    conn.send(("ready", 0.0))
    conn.send(("call", ("warmup", "sparse")))
    os._exit(7)


@pytest.mark.parametrize(("target", "code", "path"), [(_exit_at_once, 3, "dense"),
                                                      (_exit_after_ready, 7, "sparse")])
def test_a_dead_worker_is_an_error_not_a_timeout(target, code, path):
    worker = _bench_worker._Worker(target=target)
    try:
        status, message = worker.ask(TASK)
    finally:
        worker.close()
    assert (status, message) == ("error", f"worker exited {code} (during {path})")
    assert worker.proc is None


def test_sweep_records_a_dead_worker_as_an_error(monkeypatch):
    real = _bench_worker._Worker
    monkeypatch.setattr(bench_sweep, "_Worker", lambda: real(target=_exit_at_once))
    rows = bench.run(sizes=(16,), densities=(0.2,), predictors=("ch2_l3n:dense",), repeats=1,
                     progress=False)
    assert [r["status"] for r in rows] == ["error: worker exited 3 (during dense)"]


def test_worker_environment_quiets_idle_thread_pools(monkeypatch):
    import os

    monkeypatch.delenv("OPENBLAS_THREAD_TIMEOUT", raising=False)
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")  # a user's own choice is kept
    with _bench_worker._quiet_thread_pools():
        assert os.environ["OPENBLAS_THREAD_TIMEOUT"] == "4"
        assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
    assert "OPENBLAS_THREAD_TIMEOUT" not in os.environ
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"


def _runtime_script(monkeypatch):
    import importlib.util
    from pathlib import Path

    folder = Path(__file__).resolve().parent.parent / "benchmarks"
    monkeypatch.syspath_prepend(str(folder))  # it imports linkpred_targets beside it
    spec = importlib.util.spec_from_file_location("linkpred_runtime", folder /
                                                  "linkpred_runtime.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_quick_sweep_reports_times_and_no_verdicts(monkeypatch, tmp_path):
    script = _runtime_script(monkeypatch)
    bench.write_results([dict(ROW, ratio_to_gemm=4.0)], tmp_path, plot=False)
    md_before = (tmp_path / "linkpred_runtime.md").read_text()
    quick = script.finish(tmp_path, quick=True)
    assert not any("[missed]" in line or "[met]" in line for line in quick)
    assert "not judged" in quick[0]
    assert (tmp_path / "linkpred_runtime.md").read_text() == md_before  # no targets added
    full = script.finish(tmp_path, quick=False)
    assert "[missed]" in full[0]
    assert "## Targets" in (tmp_path / "linkpred_runtime.md").read_text()
