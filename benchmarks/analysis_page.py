"""The runs and figures of docs/analysis.md ("What the report looks like").

Run from the repository root (about two CPU-minutes)::

    python benchmarks/analysis_page.py                 # runs in runs/analysis-page/
    python benchmarks/analysis_page.py --quick         # smoke test: 4 epochs, nothing in docs/

Trains CHTs and CHTss on the embedded digits data (MLP 64-256-256-256-10, 5 %
final density, one topology update and one snapshot per epoch, 40 epochs,
``rng=0``, one thread), analyses both runs as ``netshape analyze`` does, copies
the CHTss layer-2 adjacency and degree figures to ``docs/img/analysis_*.png`` and
draws ITOP and re-growth overlap of both runs from their ``curves.csv``. A
finished run directory is reused. Prints the figures the page quotes.
"""

from __future__ import annotations

import argparse
import math
import shutil
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

import netshape as ns  # noqa: E402
from netshape._fs import read_csv  # noqa: E402
from netshape.analyze import analyze_source, write_report  # noqa: E402
from netshape.plot._layout import save_figure  # noqa: E402
from netshape.train import TrainConfig, train  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
IMG = ROOT / "docs" / "img"
METHODS = ("chts", "chtss")
#: the layer whose adjacency and degrees the page shows
LAYER = "2"


def _run(method: str, out: Path, epochs: int) -> Path:
    run = out / method
    if not (run / "summary.json").is_file():
        cfg = TrainConfig(dataset="digits", method=method, density=0.05, epochs=epochs,
                          snapshot_every=1, rng=0)
        train(cfg, run, progress=False, threads=1)
    an = analyze_source(run, progress=False)
    report = run / "report"
    report.mkdir(exist_ok=True)
    write_report(an, report)
    s = an.summary
    print(f"{method}: {s['layers']} layer(s), {s['links']} links, density {s['density']:.4g}, "
          f"ANP {s['anp']:.4g} (hidden {s['anp_hidden']:.4g}), CAP log10 {s['cap_log10']:.4g}, "
          f"final ITOP {an.curves['itop'][-1]:.4g}")
    for r in an.rows:
        print(f"  layer {r['layer']}: dead in {r['dead_in']}, dead out {r['dead_out']}, "
              f"hub alignment with next {r['hub_alignment_next']}")
    return report


def _curves(reports: dict[str, Path], dest: Path | None) -> None:
    rows = {m: read_csv(p / "curves.csv") for m, p in reports.items()}
    for kind, draw in (("itop", ns.plot.itop_curve), ("overlap", ns.plot.overlap_curve)):
        key = "itop" if kind == "itop" else "regrowth_overlap"
        series, steps = {}, None
        for m, rs in rows.items():
            kept = [r for r in rs if r[key] not in ("", None) and math.isfinite(float(r[key]))]
            series[m] = [float(r[key]) for r in kept]
            steps = [int(float(r["step"])) for r in kept]
            print(f"{m} {kind}: last {series[m][-1]:.3f}, mean of the last ten "
                  f"{sum(series[m][-10:]) / len(series[m][-10:]):.3f}")
        fig, ax = plt.subplots(figsize=(5.5, 3.5), layout="constrained")
        draw(series, steps=steps, ax=ax, xlabel="update")
        if dest is not None:
            save_figure(fig, dest / f"analysis_{kind}.png", dpi=110)
        plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="4 epochs; write nothing to docs/")
    ap.add_argument("-o", "--output", default="runs/analysis-page", help="run directories")
    args = ap.parse_args()
    out = Path(args.output + ("-quick" if args.quick else ""))
    reports = {m: _run(m, out, 4 if args.quick else 40) for m in METHODS}
    dest = None if args.quick else IMG
    _curves(reports, dest)
    if dest is not None:
        for kind in ("adjacency", "degrees"):
            shutil.copyfile(reports["chtss"] / f"{kind}_{LAYER}.png", dest / f"analysis_{kind}.png")
        print(f"figures -> {dest}")


if __name__ == "__main__":
    main()
