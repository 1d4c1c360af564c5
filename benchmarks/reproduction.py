"""Fashion-MNIST reproduction protocols: can a CPU show the paper's direction?

Two protocols, both on the full Fashion-MNIST of the Debian package
``dataset-fashion-mnist`` and both through :func:`netshape.train.train` (the
code path of ``netshape train``):

A, faithful miniature
    784-392-392-392-10 at density 0.04 (about 15.7 inputs per hidden neuron,
    as the paper's 1568-wide network at 1 %), the paper's Table 4 optimizer
    (batch 32, SGD momentum 0.9, weight decay 5e-4, learning rate 0.025 ->
    2.5e-4 linear over the run, zeta 0.3), 30 epochs with a topology update
    every 300 steps (187 updates), the decay methods from density 0.5 to the
    final density at 0.75 of training. FC, SET, RigL, CHTs (alpha = 1 and
    alpha = 0), CHTss and GraNet, three seeds each.
B, the paper's own network
    784-1568-1568-1568-10 at density 0.01, FC, SET, CHTs and CHTss, one seed,
    an update every 300 steps, as many epochs as ``--epochs`` says.

CHT-family methods start from CSTI, as in the paper's MLP section.

Resumable per method and seed: a finished (method, seed) is a row of the
protocol's CSV and is skipped; an interrupted one resumes from its last epoch
checkpoint in ``--runs-dir``. Runs go seed by seed (every method of seed 0
first), so a stopped sweep has comparable rows. After every run the
per-epoch CSV, the results page (``--md``) and the figure are rewritten
from the CSVs alone; ``--report`` rewrites them without training.

CPU seconds are the process's user + system time summed over the epochs
(resumed runs included), which a busy machine does not inflate as it does
the wall time.

Usage::

    python benchmarks/reproduction.py --protocol A            # about 4 CPU-hours
    python benchmarks/reproduction.py --protocol B --epochs 10
    python benchmarks/reproduction.py --protocol A --report   # page and figure only
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

#: the paper's Table 7, FMNIST column: accuracy % (mean of 3 seeds, 100 epochs)
PAPER_ACC = {"fc": 90.88, "chts": 90.67, "chtss": 90.81, "cht": 88.70, "rigl": 89.91,
             "set": 89.00, "granet": 89.98, "gmp": 90.29}

LABELS = {"fc": "FC", "set": "SET", "rigl": "RigL", "chts": "CHTs (alpha=1)",
          "chts_ri": "CHTs (alpha=0)", "chtss": "CHTss", "granet": "GraNet"}

PROTOCOLS = {
    "A": {"hidden": (392, 392, 392), "density": 0.04, "epochs": 30, "update_every": 300,
          "seeds": (0, 1, 2),
          "methods": ("fc", "chts", "set", "chtss", "chts_ri", "rigl", "granet")},
    "B": {"hidden": (1568, 1568, 1568), "density": 0.01, "epochs": 10, "update_every": 300,
          "seeds": (0,), "methods": ("fc", "chts", "set", "chtss")},
}

#: how the layers ran, by protocol (the runner's default ``--execution auto``)
EXECUTION = {
    "A": "Execution: masked (each sparse layer a dense weight times its mask). The runner's "
         "default, `--execution auto`, runs these 4 %-dense layers sparse, which computes "
         "each step the same way up to float rounding.",
    "B": "Execution: the runner's default `--execution auto`. The three 1 %-dense hidden "
         "layers (1568x784 and 1568x1568) ran sparse: values and indices only, with kernels "
         "whose cost grows with the links. CHTss ran masked while its density was above 10 % "
         "and sparse after that. The classifier is dense in every method. This is why a "
         "sparse run takes a tenth of FC's time.",
}

COLUMNS = ("protocol", "method", "rng", "epochs", "update_every", "density_target", "density",
           "test_acc", "best_test_acc", "anp", "itop", "topology_updates", "train_seconds",
           "cpu_seconds", "overrides", "threads", "torch", "finished_utc")
EPOCH_COLUMNS = ("protocol", "method", "rng", "epoch", "test_acc", "train_loss", "density",
                 "anp", "itop")


def overrides_for(method: str) -> dict:
    return {"init": "csti"} if method in ("cht", "chts", "chts_ri", "chtss") else {}


def _read(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _write(path: Path, rows: list[dict], columns) -> None:
    from netshape._fs import atomic_write_text

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(path, buf.getvalue())


class _CpuClock:
    """Adds the process CPU time of each finished epoch to ``run/cpu_seconds.json``."""

    def __init__(self, run: Path):
        self.path = run / "cpu_seconds.json"
        self.last = time.process_time()

    def total(self) -> float:
        if self.path.is_file():
            return float(json.loads(self.path.read_text())["cpu_seconds"])
        return 0.0

    def __call__(self, row: dict) -> None:
        from netshape._fs import atomic_write_text

        now = time.process_time()
        total = self.total() + (now - self.last)
        self.last = now
        atomic_write_text(self.path, json.dumps({"cpu_seconds": total, "epoch": row["epoch"]}))


def run_one(protocol: str, method: str, seed: int, args) -> tuple[dict, list[dict]]:
    from netshape.train import TrainConfig, resume, train

    p = PROTOCOLS[protocol]
    run = Path(args.runs_dir) / f"{protocol}-{method}-s{seed}-e{args.epochs}-u{args.update_every}"
    clock = _CpuClock(run)
    if (run / "config.json").is_file():
        s = resume(run, progress=not args.quiet, on_epoch_end=clock)
    else:
        cfg = TrainConfig(dataset="fashion-mnist", method=method, epochs=args.epochs,
                          hidden=p["hidden"], density=p["density"], rng=seed,
                          update_every=args.update_every, overrides=overrides_for(method),
                          steps_per_epoch=args.steps_per_epoch)
        s = train(cfg, run, progress=not args.quiet, on_epoch_end=clock)
    with open(run / "metrics.csv", newline="") as fh:
        metrics = list(csv.DictReader(fh))
    import torch

    row = {
        "protocol": protocol, "method": method, "rng": seed, "epochs": args.epochs,
        "update_every": args.update_every, "density_target": p["density"],
        "density": f"{s['density']:.6f}", "test_acc": f"{s['test_acc']:.6f}",
        "best_test_acc": f"{s['best_test_acc']:.6f}", "anp": f"{s['anp']:.6f}",
        "itop": "" if s["itop"] is None else f"{s['itop']:.6f}",
        "topology_updates": sum(int(r["topology_updates"]) for r in metrics),
        "train_seconds": f"{s['train_seconds']:.1f}", "cpu_seconds": f"{clock.total():.1f}",
        "overrides": json.dumps(overrides_for(method), sort_keys=True),
        "threads": args.threads, "torch": torch.__version__,
        "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    epochs = [{"protocol": protocol, "method": method, "rng": seed, "epoch": r["epoch"],
               "test_acc": r["test_acc"], "train_loss": r["train_loss"], "density": r["density"],
               "anp": r["anp"], "itop": r["itop"]} for r in metrics]
    return ({k: str(v) for k, v in row.items()},
            [{k: str(v) for k, v in r.items()} for r in epochs])


# ------------------------------------------------------------------ statistics and report
def mean_se(values: list[float]) -> tuple[float, float | None]:
    """Mean and standard error of the mean (None for one value).

    >>> mean_se([1.0, 2.0, 3.0])
    (2.0, 0.5773502691896258)
    """
    n = len(values)
    m = sum(values) / n
    if n < 2:
        return m, None
    var = sum((v - m) ** 2 for v in values) / (n - 1)
    return m, math.sqrt(var / n)


def summarise(rows: list[dict], methods) -> dict[str, dict]:
    out = {}
    for m in methods:
        rs = [r for r in rows if r["method"] == m]
        if not rs:
            continue
        d = {"n": len(rs), "seeds": sorted(int(r["rng"]) for r in rs)}
        for key, scale in (("test_acc", 100), ("best_test_acc", 100), ("anp", 100),
                           ("itop", 100), ("train_seconds", 1), ("cpu_seconds", 1)):
            vals = [float(r[key]) * scale for r in rs if r.get(key) not in (None, "")]
            d[key] = mean_se(vals) if vals else (None, None)
        out[m] = d
    return out


def _fmt(ms, nd=2) -> str:
    m, se = ms
    if m is None:
        return "-"
    return f"{m:.{nd}f}" if se is None else f"{m:.{nd}f} ± {se:.{nd}f}"


def verdicts(summary: dict[str, dict]) -> list[tuple[str, str, str]]:
    """(claim, observed / not observed / not measured, the numbers) for the paper's claims."""
    out = []

    def acc(m):
        return summary[m]["test_acc"] if m in summary else (None, None)

    def diff(a, b):
        (ma, sa), (mb, sb) = acc(a), acc(b)
        se = None if sa is None or sb is None else math.sqrt(sa ** 2 + sb ** 2)
        return ma - mb, se

    for chts in ("chts", "chts_ri"):
        name = LABELS[chts]
        if chts in summary and "fc" in summary:
            d, se = diff(chts, "fc")
            out.append((f"{name} within 0.5 points of FC", _obs(d >= -0.5),
                        f"{name} - FC = {d:+.2f} points" + ("" if se is None else
                                                            f" (SE {se:.2f})")))
        else:
            out.append((f"{name} within 0.5 points of FC", "not measured", "-"))
        if chts in summary and "set" in summary:
            d, se = diff(chts, "set")
            ok = se is not None and d > 2 * se
            out.append((f"{name} above SET by more than two standard errors",
                        _obs(ok) if se is not None else "not measured (one seed)",
                        f"{name} - SET = {d:+.2f} points" + ("" if se is None else
                                                             f", 2 SE = {2 * se:.2f}")))
        else:
            out.append((f"{name} above SET by more than two standard errors", "not measured",
                        "-"))
    if "chtss" in summary and "chts" in summary:
        d, se = diff("chtss", "chts")
        out.append(("CHTss at or above CHTs (alpha=1)", _obs(d >= 0),
                    f"CHTss - CHTs = {d:+.2f} points" + ("" if se is None else
                                                         f" (SE {se:.2f})")))
    else:
        out.append(("CHTss at or above CHTs (alpha=1)", "not measured", "-"))
    return out


def _obs(ok: bool) -> str:
    return "observed" if ok else "not observed"


def plot_curves(epoch_rows: list[dict], methods, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for m in methods:
        rs = [r for r in epoch_rows if r["method"] == m]
        if not rs:
            continue
        by_epoch: dict[int, list[float]] = {}
        for r in rs:
            by_epoch.setdefault(int(r["epoch"]), []).append(100 * float(r["test_acc"]))
        xs = sorted(by_epoch)
        stats = [mean_se(by_epoch[e]) for e in xs]
        ys = [s[0] for s in stats]
        (line,) = ax.plot(xs, ys, label=LABELS.get(m, m), lw=1.5)
        if all(s[1] is not None for s in stats):
            ax.fill_between(xs, [y - s[1] for y, s in zip(ys, stats, strict=True)],
                            [y + s[1] for y, s in zip(ys, stats, strict=True)],
                            color=line.get_color(), alpha=0.2, lw=0)
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (%)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    from netshape._fs import atomic_path

    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)


def write_report(protocol: str, rows: list[dict], epoch_rows: list[dict], md: Path,
                 png: Path, epochs: int, update_every: int, docs: Path | None = None) -> None:
    from netshape._fs import atomic_write_text

    p = PROTOCOLS[protocol]
    methods = p["methods"]
    summary = summarise(rows, methods)
    lines = [
        f"## Protocol {protocol}: {'-'.join(map(str, (784, *p['hidden'], 10)))} at density "
        f"{p['density']}, {epochs} epochs, an update every {update_every} steps",
        "",
        f"Command: `python benchmarks/reproduction.py --protocol {protocol} --epochs {epochs}`. "
        f"Seeds planned: {', '.join(map(str, p['seeds']))}. Values are mean ± standard error "
        "over the seeds that have finished (no ± for a single seed).",
        "",
        EXECUTION[protocol],
        "",
        "| method | seeds | final acc % | best acc % | ANP % | ITOP % | CPU s | wall s "
        "| paper acc % (Table 7) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in methods:
        if m not in summary:
            lines.append(f"| {LABELS.get(m, m)} | 0 | - | - | - | - | - | - "
                         f"| {PAPER_ACC.get(m, '-')} |")
            continue
        s = summary[m]
        anp = "-" if m == "fc" else _fmt(s["anp"], 1)
        itop = "-" if m == "fc" else _fmt(s["itop"], 1)
        lines.append(f"| {LABELS.get(m, m)} | {s['n']} | {_fmt(s['test_acc'])} "
                     f"| {_fmt(s['best_test_acc'])} | {anp} | {itop} "
                     f"| {_fmt(s['cpu_seconds'], 0)} | {_fmt(s['train_seconds'], 0)} "
                     f"| {PAPER_ACC.get(m, '-')} |")
    lines += ["", "| the paper's claim | verdict | numbers (final test accuracy) |",
              "|---|---|---|"]
    for claim, verdict, numbers in verdicts(summary):
        lines.append(f"| {claim} | {verdict} | {numbers} |")
    done = sum(s["n"] for s in summary.values())
    planned = len(methods) * len(p["seeds"])
    lines += ["", f"Runs finished: {done} of {planned}."
              + ("" if done == planned else " The verdicts use the finished runs only."), "",
              f"![accuracy per epoch, protocol {protocol}]({png.name})", ""]
    atomic_write_text(md, "\n".join(lines))
    if docs is not None and docs.is_file():
        block = "\n".join(lines).replace(f"]({png.name})", f"](../benchmarks/results/{png.name})")
        update_docs_block(docs, f"reproduction_{protocol}", block)
        readme = docs.parent.parent / "README.md"
        if readme.is_file():
            start = lines.index("| the paper's claim | verdict | numbers (final test accuracy) |")
            verdict_lines = lines[start:start + 2 + len(verdicts(summary))]
            update_docs_block(readme, f"reproduction_{protocol}", "\n".join(
                [f"Protocol {protocol} ({'-'.join(map(str, (784, *p['hidden'], 10)))} at density "
                 f"{p['density']}, {epochs} epochs, {done} of {planned} runs finished; "
                 "[details](docs/results.md)):", "", *verdict_lines]))
    if epoch_rows:
        plot_curves(epoch_rows, methods, png,
                    f"Fashion-MNIST, protocol {protocol}: test accuracy per epoch")


def update_docs_block(path: Path, name: str, text: str) -> None:
    """Replace the text between ``<!-- name:begin -->`` and ``<!-- name:end -->`` in ``path``."""
    from netshape._fs import atomic_write_text

    page = path.read_text()
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    i, j = page.find(begin), page.find(end)
    if i < 0 or j < i:
        return
    atomic_write_text(path, page[:i + len(begin)] + "\n" + text.strip() + "\n" + page[j:])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--protocol", choices=sorted(PROTOCOLS), required=True)
    ap.add_argument("--epochs", type=int, default=None, help="default: A 30, B 10")
    ap.add_argument("--methods", default=None, help="comma-separated subset of the protocol's")
    ap.add_argument("--seeds", default=None, help="comma-separated subset of the protocol's")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs-dir", default="runs/reproduction")
    ap.add_argument("--results-dir", default=str(RESULTS))
    ap.add_argument("--steps-per-epoch", type=int, default=None, help="smoke tests only")
    ap.add_argument("--update-every", type=int, default=None,
                    help="smoke tests only (default: the protocol's 300)")
    ap.add_argument("--report", action="store_true", help="rewrite the page and figure only")
    ap.add_argument("--docs", default=str(HERE.parent / "docs" / "results.md"),
                    help="results page whose marked block is rewritten ('' for none)")
    ap.add_argument("-q", "--quiet", action="store_true")
    args = ap.parse_args(argv)
    p = PROTOCOLS[args.protocol]
    args.epochs = args.epochs or p["epochs"]
    args.update_every = args.update_every or p["update_every"]
    if args.epochs <= 0 or args.threads <= 0:
        ap.error("--epochs and --threads must be positive")
    methods = p["methods"] if args.methods is None else tuple(args.methods.split(","))
    seeds = p["seeds"] if args.seeds is None else tuple(int(s) for s in args.seeds.split(","))
    bad = [m for m in methods if m not in p["methods"]]
    if bad:
        ap.error(f"--methods: {bad} not in protocol {args.protocol}'s {list(p['methods'])}")
    out = Path(args.results_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"reproduction_{args.protocol}"
    csv_path, ep_path = out / f"{stem}.csv", out / f"{stem}_epochs.csv"
    md_path, png_path = out / f"{stem}.md", out / f"{stem}.png"
    import torch

    torch.set_num_threads(args.threads)
    rows, epoch_rows = _read(csv_path), _read(ep_path)
    docs = Path(args.docs) if args.docs else None
    if not args.report:
        for seed in seeds:
            for method in methods:
                key = (method, str(seed), str(args.epochs))
                if any((r["method"], r["rng"], r["epochs"]) == key for r in rows):
                    print(f"{method} seed {seed}: already in {csv_path.name}, skipped",
                          flush=True)
                    continue
                t0 = time.time()
                row, eps = run_one(args.protocol, method, seed, args)
                rows.append(row)
                epoch_rows = [r for r in epoch_rows
                              if (r["method"], r["rng"]) != (method, str(seed))] + eps
                _write(csv_path, rows, COLUMNS)
                _write(ep_path, epoch_rows, EPOCH_COLUMNS)
                write_report(args.protocol, rows, epoch_rows, md_path, png_path, args.epochs,
                             args.update_every, docs)
                print(f"{method} seed {seed}: test acc {100 * float(row['test_acc']):.2f}%, "
                      f"density {float(row['density']):.4f}, {time.time() - t0:.0f} s wall, "
                      f"{row['cpu_seconds']} CPU s ({platform.machine()}, pid {os.getpid()})",
                      flush=True)
    rows = [r for r in rows if (r["epochs"], r["update_every"])
            == (str(args.epochs), str(args.update_every))]
    finished = {(r["method"], r["rng"]) for r in rows}
    epoch_rows = [r for r in epoch_rows if (r["method"], r["rng"]) in finished]
    write_report(args.protocol, rows, epoch_rows, md_path, png_path, args.epochs,
                             args.update_every, docs)
    print(f"results: {md_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
