"""The paper's Table 3 (LLaMA on OpenWebText) as a miniature: byte-level LM on the stdlib sources.

FC, SET, RigL, CHTs and CHTss at 70 % and 90 % sparsity, all through
``netshape.lm`` (the code path of ``netshape train --task lm``): a 4-block
LLaMA-style decoder (d_model 128, 4 heads, SwiGLU 344, context 128 bytes,
0.86 M parameters, 0.79 M of them in the sparsified block layers) trained for
2000 steps of 16 sequences (4.1 M tokens) on the running interpreter's
standard-library sources, with the paper's Table 6 recipe scaled down (Adam,
peak lr 3e-3 for DST and 1e-3 for FC, inoam / noam with a 10 % warm-up and a
20-step warm-up after each update, zeta 0.1, an update every 100 steps, every
linear layer of the blocks sparse, embedding and head dense). CHTss decays
from density 0.5 (the paper's s_i = 0.5). Validation perplexity on 64 fixed
windows of the validation files every 200 steps.

Budget: one step of this model took 0.56 CPU-seconds (fc) and 0.58 (chtss at
90 %, topology updates included) at one thread, so a run of 2000 steps is
about 19 CPU-minutes and the 9 runs (FC once) about 3 CPU-hours; each run's
own time is in the CSV.

Incremental and resumable: a row is appended to the CSV as each run finishes
(runs already there are skipped) and an interrupted run resumes from its last
evaluation in ``--runs-dir``. After every run the per-evaluation curves of the
finished runs are copied into ``lm_sparsity_curves.csv`` beside the results,
and the results page and the loss-curve figure are rewritten from the two CSVs
(``--report`` rewrites them without running anything), so the committed page
never depends on run directories that are not committed.

Usage (the full run; ``--quick`` is a smoke test into runs/lm_sparsity_quick)::

    nohup python benchmarks/lm_sparsity.py --threads 1 > lm_sparsity.log 2>&1 &
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import platform
import time
from pathlib import Path

import torch

from netshape._fs import atomic_path, atomic_write_text
from netshape.lm import LMConfig, resume, train
from netshape.torch._lm_runner import METRIC_COLUMNS
from netshape.train import _rundir as rd

#: paper Table 3, LLaMA-60M validation perplexity: {method: {sparsity: ppl}}; FC has one value
PAPER = {"fc": {0.7: 26.56, 0.9: 26.56}, "set": {0.7: 31.77, 0.9: 35.26},
         "rigl": {0.7: 39.96, 0.9: 45.34}, "chts": {0.7: 28.12, 0.9: 33.03},
         "chtss": {0.7: 27.62, 0.9: 31.42}}
METHODS = ("fc", "set", "rigl", "chts", "chtss")
#: the full-size model and budget; --quick replaces them
FULL = dict(steps=2000, batch_size=16, context=128, d_model=128, n_layers=4, n_heads=4, ffn=344,
            eval_every=200, eval_windows=64, update_every=100)
QUICK = dict(steps=40, batch_size=4, context=32, d_model=32, n_layers=1, n_heads=2, ffn=64,
             eval_every=20, eval_windows=4, update_every=10)
CURVE_COLUMNS = ("method", "sparsity", "step", "tokens", "train_loss", "val_loss", "val_ppl")
COLUMNS = ("method", "sparsity", "density", "steps", "tokens", "rng", "val_loss", "val_ppl",
           "best_val_ppl", "train_loss", "anp", "itop", "params_total", "params_nonzero",
           "train_seconds", "topology_seconds", "threads", "paper_ppl", "finished_utc")


def read_rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def write_rows(path: Path, rows: list[dict], columns=COLUMNS) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def plan(methods, sparsities) -> list[tuple[str, float]]:
    """(method, sparsity) runs: FC once (sparsity 0), every other method at each sparsity."""
    runs = [("fc", 0.0)] if "fc" in methods else []
    runs += [(m, s) for s in sparsities for m in methods if m != "fc"]
    return runs


def run_name(method: str, sparsity: float, steps: int, rng: int) -> str:
    return f"{method}-s{round(100 * sparsity)}-t{steps}-r{rng}"


def _ppl(rows, method, sparsity):
    s = 0.0 if method == "fc" else sparsity
    for r in rows:
        if r["method"] == method and math.isclose(float(r["sparsity"]), s):
            return float(r["val_ppl"])
    return None


def verdicts(rows: list[dict], sparsities) -> list[str]:
    """Plain statements of the paper's Table 3 ordering, each observed or not, with numbers."""
    out = []
    for sp in sparsities:
        got = {m: _ppl(rows, m, sp) for m in METHODS}
        have = {m: v for m, v in got.items() if v is not None}
        pct = f"{round(100 * sp)} %"
        if any(sp not in PAPER[m] for m in METHODS):
            out.append(f"- {pct}: the paper's Table 3 has no column to compare with")
            continue
        if len(have) < len(METHODS):
            out.append(f"- {pct}: incomplete ({len(have)} of {len(METHODS)} methods done)")
            continue
        paper = sorted(METHODS, key=lambda m: PAPER[m][sp])
        seen = sorted(METHODS, key=lambda m: have[m])
        nums = ", ".join(f"{m} {have[m]:.3f}" for m in seen)
        claims = [
            ("CHTs and CHTss both below SET and RigL",
             max(have["chts"], have["chtss"]) < min(have["set"], have["rigl"])),
            ("CHTss below CHTs", have["chtss"] < have["chts"]),
            ("RigL the worst DST method",
             have["rigl"] > max(have[m] for m in ("set", "chts", "chtss"))),
            ("FC below every sparse method", have["fc"] < min(have[m] for m in METHODS[1:])),
        ]
        out.append(f"- {pct} sparsity, observed order (lowest perplexity first): {nums}. "
                   f"Paper order: {' < '.join(paper)}. Same order: "
                   f"{'observed' if seen == paper else 'not observed'}.")
        out += [f"  - {text}: {'observed' if ok else 'not observed'}" for text, ok in claims]
        gap = 100 * (min(have["chts"], have["chtss"]) / have["fc"] - 1)
        paper_gap = 100 * (min(PAPER["chts"][sp], PAPER["chtss"][sp]) / PAPER["fc"][sp] - 1)
        out.append(f"  - best CHT variant vs FC: {gap:+.1f} % perplexity "
                   f"(paper, LLaMA-60M: {paper_gap:+.1f} %)")
    return out


def update_curves(path: Path, runs_dir: Path, done: list[tuple[str, float, str]]) -> list[dict]:
    """Per-evaluation curves of the finished runs, from their run directories into ``path``.

    A run whose directory is gone keeps the rows already in ``path``.
    """
    old = read_rows(path)
    rows = []
    for method, sp, name in done:
        metrics = rd.read_metrics(runs_dir / name / rd.METRICS, METRIC_COLUMNS)
        if not metrics:
            rows += [r for r in old if r["method"] == method
                     and math.isclose(float(r["sparsity"]), sp)]
            continue
        rows += [{"method": method, "sparsity": sp, "step": m["step"], "tokens": m["tokens"],
                  "train_loss": f"{m['train_loss']:.6f}", "val_loss": f"{m['val_loss']:.6f}",
                  "val_ppl": f"{m['val_ppl']:.6f}"} for m in metrics]
    write_rows(path, rows, CURVE_COLUMNS)
    return rows


def write_figure(path: Path, curves: list[dict], sparsities) -> None:
    from netshape._backend import require

    plt = require("matplotlib.pyplot")
    fig, axes = plt.subplots(1, len(sparsities), figsize=(5.5 * len(sparsities), 3.8),
                             layout="constrained", sharey=True, squeeze=False)
    for ax, sp in zip(axes[0], sparsities, strict=True):
        for method in METHODS:
            s = 0.0 if method == "fc" else sp
            pts = [r for r in curves if r["method"] == method
                   and math.isclose(float(r["sparsity"]), s)]
            if pts:
                ax.plot([int(r["tokens"]) / 1e6 for r in pts],
                        [float(r["val_loss"]) for r in pts], marker="o", ms=3, label=method,
                        ls="--" if method == "fc" else "-")
        ax.set_title(f"{round(100 * sp)} % sparsity", fontsize="medium")
        ax.set_xlabel("tokens seen (millions)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    axes[0][0].set_ylabel("validation loss (nats / byte)")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def write_markdown(path: Path, rows: list[dict], args, sizes: dict, command: str,
                   figure: str) -> None:
    sps = args.sparsities
    head = "| method | " + " | ".join(f"{round(100 * s)} % ppl | paper" for s in sps) + \
        " | train s | topology s |"
    sep = "|---|" + "---:|---:|" * len(sps) + "---:|---:|"
    lines = [
        "# Language modelling at 70 % and 90 % sparsity (paper Table 3, in miniature)", "",
        f"Command: `{command}`", "",
        f"Model: byte-level LLaMA-style decoder, d_model {sizes['d_model']}, "
        f"{sizes['n_layers']} blocks, {sizes['n_heads']} heads, SwiGLU {sizes['ffn']}, context "
        f"{sizes['context']}; {args.steps} steps of {sizes['batch_size']} sequences "
        f"({args.steps * sizes['batch_size'] * sizes['context'] / 1e6:.2f} M tokens per run); "
        f"the running interpreter's standard-library sources (split by file, see each run's "
        f"split.json); seed {args.rng}; {args.threads} torch thread(s); "
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}. The paper: "
        "LLaMA-60M (8 blocks of 512), 10 000 steps of 512 x 256 tokens of OpenWebText.", "",
        head, sep]
    by_method: dict[str, dict] = {}
    for r in rows:
        by_method.setdefault(r["method"], {})[float(r["sparsity"])] = r
    for m in METHODS:
        if m not in by_method:
            continue
        cells, secs, topo = [], [], []
        for s in sps:
            r = by_method[m].get(0.0 if m == "fc" else s)
            cells.append("-" if r is None else f"{float(r['val_ppl']):.3f}")
            paper = PAPER[m].get(round(s, 6))
            cells.append("-" if paper is None else f"{paper:.2f}")
            if r is not None and (m != "fc" or not secs):
                secs.append(float(r["train_seconds"]))
                topo.append(float(r["topology_seconds"]))
        lines.append(f"| {m} | " + " | ".join(cells) +
                     f" | {' / '.join(f'{x:.0f}' for x in secs) or '-'} "
                     f"| {' / '.join(f'{x:.1f}' for x in topo) or '-'} |")
    lines += ["", "Validation perplexity per byte at the end of training (lower is better); "
              "`paper`: LLaMA-60M on OpenWebText (per token, so only the order compares). "
              "FC is one dense run, shown in both columns. Seconds: one per sparsity, the "
              "wall-clock time of each run (it includes any time a run was paused or shared "
              "its core, so it is not a comparison of the methods' cost).", "",
              "## Verdict", "", *verdicts(rows, sps), "",
              "## Loss curves", "", f"![validation loss]({figure})", "",
              "Rows with every number, parameters and tokens: "
              f"`{Path(args.csv).name}`; the validation curves: "
              f"`{Path(args.csv).stem}_curves.csv`.", ""]
    atomic_write_text(path, "\n".join(lines))


def main(argv=None) -> int:
    here = Path(__file__).resolve().parent
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--sparsities", default="0.7,0.9")
    p.add_argument("--steps", type=int, default=None, help="default 2000 (--quick: 40)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rng", type=int, default=0)
    p.add_argument("--quick", action="store_true",
                   help="smoke test: a tiny model for 40 steps, output in runs/lm_sparsity_quick")
    p.add_argument("--runs-dir", default=None)
    p.add_argument("--csv", default=None)
    p.add_argument("--md", default=None)
    p.add_argument("--report", action="store_true",
                   help="rewrite the page and the figure from the CSVs; run nothing")
    p.add_argument("-q", "--quiet", action="store_true")
    args = p.parse_args(argv)
    # the command that reproduces the numbers: where files go does not change them
    command = " ".join(["python benchmarks/lm_sparsity.py", *(
        f"--{k.replace('_', '-')} {v}" for k, v in
        (("methods", args.methods), ("sparsities", args.sparsities), ("steps", args.steps),
         ("threads", args.threads), ("rng", args.rng))
        if v is not None and (k == "threads" or v != p.get_default(k)))]
        + (["--quick"] if args.quick else []))
    sizes = dict(QUICK if args.quick else FULL)
    args.steps = args.steps or sizes["steps"]
    sizes["steps"] = args.steps
    base = Path("runs/lm_sparsity_quick") if args.quick else here / "results"
    args.runs_dir = Path(args.runs_dir or ("runs/lm_sparsity_quick/runs" if args.quick
                                           else "runs/lm_sparsity"))
    args.csv = Path(args.csv or base / "lm_sparsity.csv")
    args.md = Path(args.md or base / "lm_sparsity.md")
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    bad = [m for m in methods if m not in METHODS]
    args.sparsities = [float(s) for s in args.sparsities.split(",") if s.strip()]
    if bad or not methods or any(not 0 < s < 1 for s in args.sparsities):
        p.error(f"--methods from {','.join(METHODS)}; --sparsities in (0, 1)")
    for d in (args.csv.parent, args.md.parent, args.runs_dir):
        d.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    figure = args.md.with_suffix(".png")
    curves_csv = args.csv.with_name(args.csv.stem + "_curves.csv")
    rows = read_rows(args.csv)
    done = []

    def publish():
        curves = update_curves(curves_csv, args.runs_dir, done)
        write_figure(figure, curves, args.sparsities)
        write_markdown(args.md, rows, args, sizes, command, figure.name)

    for method, sp in plan(methods, args.sparsities):
        name = run_name(method, sp, args.steps, args.rng)
        key = (method, round(sp, 6), args.steps, args.rng)
        if any((r["method"], round(float(r["sparsity"]), 6), int(r["steps"]), int(r["rng"]))
               == key for r in rows):
            if not args.report:
                print(f"{name}: already in {args.csv}, skipped", flush=True)
            done.append((method, sp, name))
            continue
        if args.report:
            continue
        cfg = LMConfig(method=method, density=1.0 - sp if method != "fc" else 0.5,
                       rng=args.rng, **{k: v for k, v in sizes.items()})
        run = args.runs_dir / name
        t0 = time.time()
        s = (resume(run, progress=not args.quiet) if (run / "config.json").is_file()
             else train(cfg, run, progress=not args.quiet))
        prm = s["parameters"]
        rows.append({
            "method": method, "sparsity": sp, "density": f"{s['density']:.6f}",
            "steps": args.steps, "tokens": s["tokens_seen"], "rng": args.rng,
            "val_loss": f"{s['val_loss']:.6f}", "val_ppl": f"{s['val_ppl']:.6f}",
            "best_val_ppl": f"{s['best_val_ppl']:.6f}", "train_loss": f"{s['train_loss']:.6f}",
            "anp": f"{s['anp']:.6f}", "itop": f"{s['itop']:.6f}",
            "params_total": prm["total"], "params_nonzero": prm["nonzero"],
            "train_seconds": f"{s['train_seconds']:.1f}",
            "topology_seconds": f"{s['topology_seconds']:.2f}", "threads": args.threads,
            "paper_ppl": PAPER[method].get(0.7 if method == "fc" else round(sp, 6), ""),
            "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        })
        done.append((method, sp, name))
        write_rows(args.csv, rows)
        publish()
        print(f"{name}: validation perplexity {s['val_ppl']:.3f}, density {s['density']:.4f}, "
              f"{prm['nonzero']} of {prm['total']} parameters nonzero, {s['tokens_seen']} "
              f"tokens, {time.time() - t0:.0f} s wall", flush=True)
    if done:
        publish()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
