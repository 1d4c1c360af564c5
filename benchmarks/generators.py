"""Generation time per topology model, beside ``er`` measured in the same run.

Run from the repository root::

    python benchmarks/generators.py            # 4096 x 16384 at 5% density, 7 rounds
    python benchmarks/generators.py --quick    # smoke test (512 x 2048, 2 rounds)

Writes ``benchmarks/results/generators.csv`` and ``generators.md`` (``--quick``:
``generators_quick.*``, not committed) and records the fingerprint of the
measured code in ``benchmarks/results/fingerprints.json``. Models are
timed round-robin (each round runs every model once, in a rotating order) so
that load from other processes hits all of them alike; the ratio column
divides each model's median by ``er``'s median from the same run, and
``ratio_best`` the best times (the least noisy estimate on a shared machine,
where other processes only ever add time); the 3x target is judged on both and
reported for both.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from _fingerprint import record

import netshape as ns
from netshape._fs import atomic_write_text

RESULTS = Path(__file__).resolve().parent / "results"
#: the code whose speed the results describe (benchmarks/results/fingerprints.json)
MEASURED = ["benchmarks/generators.py", "netshape/generators", "netshape/_random.py",
            "netshape/_validation.py"]


def models(n_in: int, n_out: int, density: float):
    g = ns.generators
    X = np.random.default_rng(0).normal(size=(256, n_in))
    return {
        "er": lambda s: g.er(n_in, n_out, density, rng=s),
        "brf r=0.25 fixed": lambda s: g.brf(n_in, n_out, density, r=0.25, rng=s),
        "brf r=0.25 uniform": lambda s: g.brf(n_in, n_out, density, r=0.25, degrees="uniform",
                                              rng=s),
        "bsw beta=0.25": lambda s: g.bsw(n_in, n_out, density, beta=0.25, rng=s),
        "bsw beta=0 (lattice)": lambda s: g.bsw(n_in, n_out, density, rng=s),
        "brf r=0.5 fixed": lambda s: g.brf(n_in, n_out, density, r=0.5, rng=s),
        "brf r=1 fixed": lambda s: g.brf(n_in, n_out, density, r=1.0, rng=s),
        "bsw beta=1": lambda s: g.bsw(n_in, n_out, density, beta=1.0, rng=s),
        "bsf gamma=2.76": lambda s: g.bsf(n_in, n_out, density, rng=s),
        "csti (256 samples)": lambda s: g.csti(X, n_out, density, rng=s),
    }


REQUIRED = ("brf r=0.25 fixed", "brf r=0.25 uniform", "bsw beta=0.25")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-in", type=int, default=4096)
    ap.add_argument("--n-out", type=int, default=16384)
    ap.add_argument("--density", type=float, default=0.05)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--out", default=None,
                    help="path stem for the .csv and .md files (default "
                         "benchmarks/results/generators)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: 512 x 2048, 2 rounds, results in generators_quick.*")
    args = ap.parse_args(argv)
    if args.quick:
        args.n_in, args.n_out, args.rounds = 512, 2048, 2
    default_stem = RESULTS / ("generators_quick" if args.quick else "generators")
    args.out = args.out or str(default_stem)
    table = models(args.n_in, args.n_out, args.density)
    names = list(table)
    for name in names:  # warm-up: imports, first-touch allocations
        table[name](0)
    times: dict[str, list[float]] = {n: [] for n in names}
    links = {}
    for rnd in range(args.rounds):
        order = names[rnd % len(names):] + names[:rnd % len(names)]
        for name in order:
            t0 = time.perf_counter()
            A = table[name](rnd + 1)
            times[name].append(time.perf_counter() - t0)
            links[name] = A.nnz
        print(f"round {rnd + 1}/{args.rounds} done", flush=True)
    er_med = statistics.median(times["er"])
    er_best = min(times["er"])
    rows = []
    for name in names:
        med = statistics.median(times[name])
        rows.append({"model": name, "n_in": args.n_in, "n_out": args.n_out,
                     "density": args.density, "links": links[name], "rounds": args.rounds,
                     "median_s": round(med, 4), "min_s": round(min(times[name]), 4),
                     "ratio_to_er": round(med / er_med, 2),
                     "ratio_best": round(min(times[name]) / er_best, 2)})
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    stem = Path(args.out)
    stem.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(stem.with_suffix(".csv"), buf.getvalue())
    ok_med = all(r["ratio_to_er"] <= 3.0 for r in rows if r["model"] in REQUIRED)
    ok_best = all(r["ratio_best"] <= 3.0 for r in rows if r["model"] in REQUIRED)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    md = [f"# Generator timings: {args.n_in} x {args.n_out} at density {args.density}", "",
          f"Median and best of {args.rounds} round-robin rounds, one process, "
          f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, "
          f"numpy {np.__version__}, {os.cpu_count()} CPUs, load average {load:.1f} at the end. "
          "`ratio` = median / er's median, `ratio best` = best / er's best, same run.", "",
          "Command: `python benchmarks/generators.py"
          + "".join(" " + a for a in (sys.argv[1:] if argv is None else argv)) + "`", "",
          "| model | links | median s | best s | ratio | ratio best |",
          "|---|---:|---:|---:|---:|---:|"]
    md += [f"| {r['model']} | {r['links']} | {r['median_s']:.3f} | {r['min_s']:.3f} | "
           f"{r['ratio_to_er']:.2f} | {r['ratio_best']:.2f} |" for r in rows]
    md += ["", "Target (brf r=0.25 fixed and uniform, bsw beta=0.25 within 3x of er): "
               f"medians {'met' if ok_med else 'NOT met'}, best times "
               f"{'met' if ok_best else 'NOT met'}. `bsf` and `csti` are shown for "
               "comparison (no target)."]
    if Path(args.out) == RESULTS / "generators":
        md += ["", f"Code fingerprint: `{record('generators', MEASURED)[:16]}` "
                   "(benchmarks/results/fingerprints.json)."]
    atomic_write_text(stem.with_suffix(".md"), "\n".join(md) + "\n")
    print("\n".join(md))
    return 0 if ok_best else 1


if __name__ == "__main__":
    raise SystemExit(main())
