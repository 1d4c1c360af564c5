"""``netshape analyze CHECKPOINT_OR_RUN_DIR [-o REPORT_DIR]``."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import add_rng, check_output_dir


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "analyze",
        help="analyse a trained sparse network (checkpoint or run directory)",
        description=(
            "Read a checkpoint (PyTorch with weights_only=True, safetensors or .npz; masks from "
            "netshape, torch.nn.utils.prune, parametrize / torch.ao.pruning, else weight != 0) "
            "or a run directory (checkpoint.pt + snapshots/update_*.npz) and write a report: "
            "report.md, layers.csv, adjacency and degree-distribution PNGs and, from snapshots, "
            "ITOP and overlap curves (itop.png, overlap.png, curves.csv)."
        ),
    )
    p.add_argument("source", metavar="CHECKPOINT_OR_RUN_DIR",
                   help="checkpoint file, run directory or directory of update_*.npz snapshots")
    p.add_argument("-o", "--output", metavar="REPORT_DIR", default=None,
                   help="report directory (default: RUN_DIR/report, or <checkpoint>_report "
                        "beside a checkpoint file)")
    p.add_argument("--no-plots", action="store_true", help="write the tables only, no PNGs")
    add_rng(p)  # accepted for a uniform CLI; the analysis itself is deterministic
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..analyze import analyze_source, write_report

    src = Path(args.source)
    if args.output is not None:
        out = Path(args.output)
    elif src.is_dir():
        out = src / "report"
    else:
        out = src.with_name(f"{src.stem}_report")
    # the report directory is checked first, and created only once every input is measured
    check_output_dir(out, "--output")
    an = analyze_source(src)
    out.mkdir(parents=True, exist_ok=True)
    path = write_report(an, out, plots=not args.no_plots)
    s = an.summary
    print(f"analysed {an.source}: {s['layers']} layer(s), {s['links']} links, "
          f"density {s['density']:.4g}")
    if "anp" in s:
        cap_txt = f", CAP log10 {s['cap_log10']:.4g}" if an.chain else ""
        print(f"  ANP {s['anp']:.4g}{cap_txt}, percolation would remove "
              f"{s['perc_links_removed']} link(s)")
    if an.curves:
        print(f"  {len(an.curves['step'])} snapshot(s), final ITOP {an.curves['itop'][-1]:.4g}")
    for w in dict.fromkeys(an.warnings):
        print(f"  note: {w.splitlines()[0][:160]}")
    print(f"report: {path}")
    return 0
