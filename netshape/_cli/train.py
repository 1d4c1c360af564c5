"""``netshape train``: train an MLP dense or with a DST preset, or compare several."""

from __future__ import annotations

import argparse
import json
import sys

from ..datasets import DATASETS
from ._common import add_rng, check_output_dir

#: flags that define a run; with --resume they come from RUN_DIR/config.json instead
_RUN_FLAGS = ("dataset", "method", "compare", "density", "epochs", "hidden", "batch_size", "lr",
              "lr_end", "zeta", "data_dir", "steps_per_epoch", "update_every", "snapshot_every",
              "set", "init_scale", "execution", "task")

_EPILOG = """\
examples:
  netshape train --compare fc,chts                   # digits: CHTs vs dense, ~2 minutes
  netshape train --dataset fashion-mnist --method chtss --epochs 10 --threads 2
  netshape train --resume runs/digits-chts           # continue after Ctrl-C
  netshape analyze runs/digits-chts                  # plots of the evolved topology
  netshape train --task lm --compare fc,set,chts     # byte-level LLaMA on the stdlib sources
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="train an MLP dense (fc) or with dynamic sparse training",
        description="Train an MLP (paper Table 4 defaults; small ones for digits) dense ('fc') "
                    "or with a DST preset, writing a run directory: config.json, metrics.csv, "
                    "checkpoint.pt, snapshots/, summary.json. --compare trains several methods "
                    "and prints one table.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default=None, choices=("mlp", "lm"),
                   help="mlp (default): an MLP classifier; lm: a byte-level LLaMA-style "
                        "language model (options below)")
    p.add_argument("--dataset", default=None,
                   help=f"one of {', '.join(DATASETS)} (default digits, embedded)")
    p.add_argument("--method", default=None,
                   help="a preset of netshape.torch.PRESETS: fc (fully connected, no "
                        "sparsification) or a DST method (default chts; the list: "
                        "docs/training-loop.md)")
    p.add_argument("--compare", default=None, metavar="M1,M2,...",
                   help="train each method (e.g. fc,set,rigl,chts,chtss) and print one table")
    p.add_argument("--density", type=float, default=None,
                   help="fraction of links kept per sparsified layer, in (0, 1] "
                        "(default 0.1 for digits, 0.01 otherwise; lm: 0.3)")
    p.add_argument("--epochs", type=int, default=None,
                   help="training epochs (default 40 for digits, 100 otherwise)")
    p.add_argument("--hidden", default=None, metavar="SIZES",
                   help="hidden layer sizes: '1568,1568,1568' or '256x3' (default: 256x3 for "
                        "digits, 1568x3 otherwise, 3072x3 for cifar10)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="mini-batch size (default 32)")
    p.add_argument("--lr", type=float, default=None,
                   help="start learning rate (0.025; lm: peak 3e-3, 1e-3 for fc)")
    p.add_argument("--lr-end", type=float, default=None, help="end learning rate (2.5e-4)")
    p.add_argument("--zeta", type=float, default=None,
                   help="fraction of links removed per update (the preset's, 0.3; lm: 0.1)")
    p.add_argument("--set", action="append", default=None, metavar="KEY=VALUE",
                   help="override a preset component, e.g. --set init=csti --set T=0.5")
    p.add_argument("--init-scale", default=None, choices=("fan_in", "dense"),
                   help="initial weights of sparse layers: fan_in (default) draws each neuron's "
                        "weights with the bound 1/sqrt(its links); dense keeps nn.Linear's")
    p.add_argument("--execution", default=None, metavar="{auto,masked,sparse}",
                   help="how sparse layers run: masked (dense weight x mask), sparse (only the "
                        "links: time and memory grow with them) or auto (default: sparse for "
                        "large layers at low density)")
    p.add_argument("--steps-per-epoch", type=int, default=None,
                   help="cap the batches per epoch (quick trials)")
    p.add_argument("--update-every", type=int, default=None, metavar="STEPS",
                   help="optimizer steps between topology updates (default: one update per "
                        "epoch; lm: 100); schedules still span the whole run")
    p.add_argument("--snapshot-every", type=int, default=None,
                   help="topology snapshot every N updates (default: ~10 per run; 0: none)")
    p.add_argument("--data-dir", default=None,
                   help="folder with <dataset>/ subfolders (default $NETSHAPE_DATA); lm: any "
                        "folder of text files (default: the standard library's sources)")
    p.add_argument("--download", action="store_true",
                   help="fetch missing dataset files from the canonical mirror (needs network)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: batch-32 MLP steps gain nothing from "
                        "more, and extra threads on a busy machine slow them down many-fold)")
    p.add_argument("-o", "--output", default=None, metavar="RUN_DIR",
                   help="run directory (default runs/<dataset>-<method or compare>; lm: "
                        "runs/lm-<corpus>-<method or compare>)")
    p.add_argument("--resume", default=None, metavar="RUN_DIR",
                   help="continue an interrupted run (or --compare directory)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_rng(p)
    from .lm import add_arguments as add_lm_arguments

    add_lm_arguments(p)
    p.set_defaults(func=run)


def parse_hidden(text: str) -> tuple[int, ...]:
    """``'256x3'`` -> (256, 256, 256); ``'512,256'`` -> (512, 256) (see ``parse_sizes``).

    >>> parse_hidden("256x3"), parse_hidden("512,256")
    ((256, 256, 256), (512, 256))
    """
    from .._validation import parse_sizes

    return parse_sizes(text, "--hidden")


def parse_overrides(items: list[str] | None) -> dict:
    """``['init=csti', 'T=0.5']`` -> ``{'init': 'csti', 'T': 0.5}`` (JSON values, else strings).

    >>> parse_overrides(["init=csti", "T=0.5", "percolation=true"])
    {'init': 'csti', 'T': 0.5, 'percolation': True}
    """
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set {item!r} must look like KEY=VALUE")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def _config(args):
    from ..train import TrainConfig

    keys = ("dataset", "density", "epochs", "batch_size", "lr", "lr_end", "zeta", "data_dir",
            "steps_per_epoch", "update_every", "snapshot_every", "init_scale", "execution")
    given = {k: getattr(args, k) for k in keys if getattr(args, k) is not None}
    if args.hidden is not None:
        given["hidden"] = parse_hidden(args.hidden)
    if args.method is not None:
        given["method"] = args.method
    given["overrides"] = parse_overrides(args.set)
    return TrainConfig(rng=args.rng, **given)


def run(args) -> int:
    from .. import train as tr
    from ..train._table import comparison_rows, format_text

    if args.threads is not None and args.threads <= 0:
        raise ValueError(f"--threads={args.threads!r} must be a positive integer")
    from . import lm as lm_cli

    if args.resume is not None:
        clash = [f"--{k.replace('_', '-')}" for k in (*_RUN_FLAGS, *lm_cli.LM_FLAGS)
                 if getattr(args, k) is not None]
        if clash or args.output is not None:
            raise ValueError(f"--resume takes its settings from RUN_DIR/config.json; drop "
                             f"{', '.join(clash + (['--output'] if args.output else []))}")
    if args.task == "lm" or (args.resume is not None and lm_cli.is_lm_run(args.resume)):
        return lm_cli.run(args)
    lm_cli.refuse_lm_flags(args)
    progress = not args.quiet
    target = None
    if args.resume is not None:
        target = args.resume
    elif args.compare is not None and args.method is not None:
        raise ValueError("give either --method or --compare, not both")
    cfg = _config(args) if args.resume is None else None
    if args.output is not None:  # checked before a dataset is read or a folder made
        check_output_dir(args.output, "--output")
    try:
        if args.resume is not None:
            found = tr.compare_methods_of(args.resume)
            if found is not None:
                summaries = tr.compare(found[0], found[1], args.resume, progress=progress,
                                       threads=args.threads, print_fn=None)
                return _report_compare(args.resume, summaries, comparison_rows, format_text)
            summary = tr.resume(args.resume, progress=progress, threads=args.threads)
            return _report_run(args.resume, summary)
        if args.download:
            from ..datasets import load

            load(cfg.dataset, data_dir=cfg.data_dir, download=True)
        if args.compare is not None:
            methods = [m.strip() for m in args.compare.split(",") if m.strip()]
            target = args.output or f"runs/{cfg.dataset}-compare"
            _refuse_existing_compare(target)
            summaries = tr.compare(methods, cfg, target, progress=progress,
                                   threads=args.threads, print_fn=None)
            return _report_compare(target, summaries, comparison_rows, format_text)
        target = args.output or f"runs/{cfg.dataset}-{cfg.method}"
        summary = tr.train(cfg, target, progress=progress, threads=args.threads)
        return _report_run(target, summary)
    except KeyboardInterrupt:
        if target is None:
            raise
        print(f"netshape train: stopped; the last finished epoch is saved. Continue with:\n"
              f"  netshape train --resume {target}", file=sys.stderr)
        raise


def _refuse_existing_compare(target: str) -> None:
    from pathlib import Path

    if (Path(target) / "compare.json").exists():
        raise ValueError(f"--output={target!r} already holds a comparison; continue it with "
                         "--resume or choose another --output")


def _report_run(target, s: dict) -> int:
    acc = "-" if s.get("test_acc") is None else f"{100 * s['test_acc']:.2f}%"
    print(f"{s['method']} on {s['dataset']}: test accuracy {acc} after {s['epochs_done']} "
          f"epochs, density {s['density']:.4f}, ANP {100 * s['anp']:.1f}%, "
          f"{s['train_seconds']:.1f} s training")
    print(f"run directory: {target}  (metrics.csv, checkpoint.pt, summary.json; "
          f"plots: netshape analyze {target})")
    return 0


def _report_compare(target, summaries, comparison_rows, format_text) -> int:
    print(format_text(comparison_rows(summaries)))
    print(f"\ntable: {target}/comparison.md  runs: {target}/<method>/")
    return 0
