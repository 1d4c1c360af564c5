"""Cold start: the first call of a fresh process against the warm call, fresh and warm caches.

Every measurement runs in its own Python process with its own cache directory
for compiled code (``NUMBA_CACHE_DIR``; netshape's kernels are built in memory
by llvmlite and cache nothing on disk, so the directory only catches anything
else that would):

* **fresh cache** — an empty directory, as after a fresh install;
* **warm cache** — a directory a previous process filled (the second and later
  processes after an install).

Inside each process the first call is timed (it includes importing llvmlite,
building kernels, first-touch allocations), then the process
waits for the background compilation to finish and times the warm call
(median of a few) — the reference, measured in the same process. Reported:
first - warm, per case, and for the README's main command the wall time of
the whole command on a fresh cache against a warm one (same run).

Run from the repository root::

    python benchmarks/cold_start.py            # 1024^2 cases, README command, 3 repeats
    python benchmarks/cold_start.py --quick    # smoke test: small sizes, one repeat

Writes ``benchmarks/results/cold_start.{csv,md}`` (``--quick``:
``cold_start_quick.*``, not committed).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
#: the code whose speed the results describe (benchmarks/results/fingerprints.json)
MEASURED = ["benchmarks/cold_start.py", "netshape/linkpred", "netshape/generators",
            "netshape/_random.py", "netshape/_llvm.py", "netshape/torch", "netshape/train",
            "netshape/_cli"]
README_COMMAND = ["netshape", "train", "--compare", "fc,chts"]
TARGET_CALL_S, GOAL_CALL_S, TARGET_README_S = 1.0, 0.3, 2.0


def _case(name: str, n: int):
    """``(setup, call)`` for one case; ``call()`` is what gets timed."""
    import numpy as np

    import netshape as ns

    ns.generators, ns.linkpred  # noqa: B018 - imports outside the timed call
    if name.startswith("brf"):
        degrees = "uniform" if name.endswith("uniform") else "fixed"
        seeds = iter(range(10**6))
        return lambda: ns.generators.brf(n, 4 * n, 0.05, r=0.25, degrees=degrees,
                                         rng=next(seeds))
    if name == "chts first update":
        return _dst_case(n)
    density = 0.01 if name.endswith("sparse") else 0.05
    A = ns.generators.er(n, n, density, rng=0)
    Ab = A.toarray()
    if name == "ch2_l3n dense":
        return lambda: ns.linkpred.ch2_l3n(Ab, method="dense")
    if name == "ch2_l3n sparse":
        return lambda: ns.linkpred.ch2_l3n(Ab, method="sparse")
    if name == "ch3_l3p":
        return lambda: ns.linkpred.ch3_l3p(np.asarray(Ab))
    raise ValueError(f"unknown case {name!r}")


def _dst_case(n: int):
    """The topology update of a small chts MLP (n-4n-4n-10 at 5 %), as ``dst.step()`` runs it."""
    import torch

    from netshape.torch import sparsify

    torch.set_num_threads(1)  # as `netshape train` runs
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(n, 4 * n), torch.nn.ReLU(),
                                torch.nn.Linear(4 * n, 4 * n), torch.nn.ReLU(),
                                torch.nn.Linear(4 * n, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    dst = sparsify(model, opt, method="chts", density=0.05, total_steps=10**6,
                   update_every=10**5, rng=0)
    X, y = torch.randn(32, n), torch.randint(0, 10, (32,))
    loss = torch.nn.functional.cross_entropy(model(X), y)
    loss.backward()
    opt.step()

    def update():
        with torch.no_grad():
            dst._update()  # exactly the work dst.step() does on an update step

    return update


def worker(name: str, n: int, warm_repeats: int) -> dict:
    """In a fresh process: time the first call, then the warm one."""
    t0 = time.perf_counter()
    call = _case(name, n)
    setup = time.perf_counter() - t0
    t0 = time.perf_counter()
    call()
    first = time.perf_counter() - t0
    from netshape.linkpred import _jit

    _jit.wait_compiled()
    call()  # the compiled kernels' own first run (thread pools, allocations)
    warm = []
    for _ in range(warm_repeats):
        t0 = time.perf_counter()
        call()
        warm.append(time.perf_counter() - t0)
    return {"setup_s": setup, "first_s": first, "warm_s": statistics.median(warm)}


def _run_worker(name: str, n: int, cache: str, warm_repeats: int) -> dict:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache)
    env.pop("NETSHAPE_JIT", None)
    out = subprocess.run([sys.executable, __file__, "--worker", name, "--n", str(n),
                          "--warm-repeats", str(warm_repeats)], env=env, cwd=ROOT,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _run_readme(cache: str, extra: list[str]) -> float:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache)
    env.pop("NETSHAPE_JIT", None)
    with tempfile.TemporaryDirectory() as cwd:
        t0 = time.perf_counter()
        subprocess.run([*README_COMMAND, *extra, "-q"], env=env, cwd=cwd, check=True,
                       capture_output=True, text=True)
        return time.perf_counter() - t0


def measure(cases: list[tuple[str, int]], repeats: int, warm_repeats: int) -> list[dict]:
    rows = []
    for name, n in cases:
        fresh, warm_cache = [], []
        for _ in range(repeats):
            with tempfile.TemporaryDirectory() as cache:
                fresh.append(_run_worker(name, n, cache, warm_repeats))
                warm_cache.append(_run_worker(name, n, cache, warm_repeats))  # filled above
        warm = statistics.median([r["warm_s"] for r in fresh + warm_cache])
        first_fresh = statistics.median([r["first_s"] for r in fresh])
        first_cached = statistics.median([r["first_s"] for r in warm_cache])
        rows.append({"case": name, "n": n, "repeats": repeats, "warm_s": round(warm, 4),
                     "first_fresh_cache_s": round(first_fresh, 4),
                     "first_warm_cache_s": round(first_cached, 4),
                     "excess_fresh_s": round(first_fresh - warm, 4),
                     "excess_warm_cache_s": round(first_cached - warm, 4)})
        print(f"{name} n={n}: warm {warm:.3f} s, first {first_fresh:.3f} s (fresh cache), "
              f"{first_cached:.3f} s (warm cache)", flush=True)
    return rows


def measure_readme(repeats: int, extra: list[str]) -> dict:
    fresh, warm = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as cache:
            fresh.append(_run_readme(cache, extra))
            warm.append(_run_readme(cache, extra))
    f, w = statistics.median(fresh), statistics.median(warm)
    print(f"README command: {f:.2f} s fresh cache, {w:.2f} s warm cache", flush=True)
    return {"fresh_cache_s": round(f, 2), "warm_cache_s": round(w, 2),
            "excess_s": round(f - w, 2), "repeats": repeats}


def write(rows: list[dict], readme: dict | None, stem: Path, argv: list[str],
          quick: bool) -> bool:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    if readme is not None:
        buf.write(f"# README command ({' '.join(README_COMMAND)}): fresh cache "
                  f"{readme['fresh_cache_s']} s, warm cache {readme['warm_cache_s']} s\n")
    ok_calls = all(r["excess_fresh_s"] <= TARGET_CALL_S for r in rows if r["n"] >= 1024)
    ok_readme = readme is None or readme["excess_s"] <= TARGET_README_S
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    import numpy as np

    md = ["# Cold start: first call of a fresh process", "",
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}, numpy {np.__version__}; load average {load:.1f} at "
          f"the end. Each process has its own cache directory (`NUMBA_CACHE_DIR`): *fresh* "
          f"is empty (a "
          f"fresh install), *warm cache* was filled by the process before. `warm` is the "
          f"median warm call in the same processes (after background compilation); "
          f"`excess` = first - warm. Medians of {rows[0]['repeats']} process pairs.", "",
          "Command: `python benchmarks/cold_start.py" + (" " + " ".join(argv) if argv else "")
          + "`", "",
          "| case | n | warm s | first s (fresh cache) | first s (warm cache) "
          "| excess s (fresh) | excess s (warm cache) |",
          "|---|---:|---:|---:|---:|---:|---:|"]
    md += [f"| {r['case']} | {r['n']} | {r['warm_s']:.3f} | {r['first_fresh_cache_s']:.3f} | "
           f"{r['first_warm_cache_s']:.3f} | {r['excess_fresh_s']:.3f} | "
           f"{r['excess_warm_cache_s']:.3f} |" for r in rows]
    md += ["", "Cases: `ch2_l3n` dense on an n x n ER layer at 5 %, sparse at 1 %; "
               "`ch3_l3p` at 5 %; `brf` n x 4n at 5 %, r = 0.25; the first topology update "
               "of a chts MLP n-4n-4n-10 at 5 % density."]
    if readme is not None:
        md += ["", f"README main command `{' '.join(README_COMMAND)}`: "
                   f"{readme['fresh_cache_s']:.2f} s on a fresh cache, "
                   f"{readme['warm_cache_s']:.2f} s on a warm one (excess "
                   f"{readme['excess_s']:.2f} s; medians of {readme['repeats']})."]
    md += ["", f"Targets: first call at most {TARGET_CALL_S:g} s beyond the warm call on 1024² "
               f"(goal {GOAL_CALL_S:g} s): {'met' if ok_calls else 'NOT met'}; README "
               f"command at most {TARGET_README_S:g} s slower on a fresh cache: "
               f"{'met' if ok_readme else 'NOT met'}."]
    if not quick:
        md += ["", f"Code fingerprint: `{_record()[:16]}` (benchmarks/results/fingerprints.json)."]
    from netshape._fs import atomic_write_text

    stem.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(stem.with_suffix(".csv"), buf.getvalue())
    atomic_write_text(stem.with_suffix(".md"), "\n".join(md) + "\n")
    print("\n".join(md))
    return ok_calls and ok_readme


def _record() -> str:
    sys.path.insert(0, str(HERE))
    from _fingerprint import record

    return record("cold_start", MEASURED)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke test: small sizes, 1 repeat")
    ap.add_argument("--repeats", type=int, default=None, help="process pairs per case (3)")
    ap.add_argument("--no-readme", action="store_true", help="skip the README command")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, default=1024, help=argparse.SUPPRESS)
    ap.add_argument("--warm-repeats", type=int, default=5, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.n, args.warm_repeats)))
        return 0
    n, gen_n, dst_n = (256, 512, 64) if args.quick else (1024, 4096, 256)
    repeats = args.repeats or (1 if args.quick else 3)
    cases = [("ch2_l3n dense", n), ("ch2_l3n sparse", n), ("ch3_l3p", n), ("brf fixed", gen_n),
             ("brf uniform", gen_n), ("chts first update", dst_n)]
    rows = measure(cases, repeats, 2 if args.quick else 5)
    readme = None
    if not args.no_readme:
        extra = ["--epochs", "1", "--steps-per-epoch", "5"] if args.quick else []
        readme = measure_readme(repeats, extra)
    given = list(sys.argv[1:] if argv is None else argv)
    stem = RESULTS / ("cold_start_quick" if args.quick else "cold_start")
    return 0 if write(rows, readme, stem, given, args.quick) else 1


if __name__ == "__main__":
    raise SystemExit(main())
