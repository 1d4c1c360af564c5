"""``netshape train --task lm``: the options of the language-model runner and its reports.

:mod:`netshape._cli.train` owns the parser; this module adds the LM option
group, builds an :class:`~netshape.lm.config.LMConfig` from the parsed
arguments and runs it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

__all__ = ["LM_FLAGS", "MLP_ONLY_FLAGS", "add_arguments", "is_lm_run", "refuse_lm_flags", "run"]

#: attribute name -> LMConfig field of the options only ``--task lm`` takes
LM_FLAGS = {"steps": "steps", "context": "context", "d_model": "d_model", "layers": "n_layers",
            "heads": "n_heads", "kv_heads": "n_kv_heads", "ffn": "ffn", "warmup": "warmup",
            "iterative_warmup": "iterative_warmup", "eval_every": "eval_every",
            "eval_windows": "eval_windows", "val_fraction": "val_fraction"}
#: options shared with the MLP runner that map to LMConfig fields of the same name
_SHARED = ("density", "batch_size", "lr", "zeta", "update_every", "snapshot_every", "data_dir")
#: options of the MLP runner that mean nothing to ``--task lm``
MLP_ONLY_FLAGS = ("dataset", "epochs", "hidden", "lr_end", "init_scale", "steps_per_epoch")


def add_arguments(p) -> None:
    """The ``language model (--task lm)`` option group of ``netshape train``."""
    g = p.add_argument_group(
        "language model (--task lm)",
        "a byte-level LLaMA-style decoder (RMSNorm, rotary embeddings, SwiGLU, optional GQA) "
        "on the standard library's own sources or --data-dir (any folder of text files); "
        "paper Table 6 scaled down: Adam, inoam (noam for fc), zeta 0.1, --update-every 100, "
        "--density 0.3, every linear layer of the blocks sparse, embedding and head dense")
    g.add_argument("--steps", type=int, default=None, help="optimizer steps (1000)")
    g.add_argument("--context", type=int, default=None, help="tokens (bytes) per sequence (128)")
    g.add_argument("--d-model", type=int, default=None, help="model width (128)")
    g.add_argument("--layers", type=int, default=None, help="decoder blocks (4)")
    g.add_argument("--heads", type=int, default=None, help="attention heads (4)")
    g.add_argument("--kv-heads", type=int, default=None,
                   help="key/value heads; fewer than --heads is grouped-query attention")
    g.add_argument("--ffn", type=int, default=None, help="SwiGLU hidden size (344)")
    g.add_argument("--warmup", type=int, default=None,
                   help="noam warm-up steps (10%% of --steps)")
    g.add_argument("--iterative-warmup", type=int, default=None,
                   help="inoam warm-up steps after each topology update (20)")
    g.add_argument("--eval-every", type=int, default=None,
                   help="steps between validation perplexity + checkpoint (--steps / 10)")
    g.add_argument("--eval-windows", type=int, default=None,
                   help="validation sequences per evaluation (32)")
    g.add_argument("--val-fraction", type=float, default=None,
                   help="expected share of files on the validation side (0.1)")


def is_lm_run(path: str) -> bool:
    """Whether ``path`` holds an LM run or LM comparison (by its config's ``task``)."""
    for name in ("compare.json", "config.json"):
        p = Path(path) / name
        if p.is_file():
            try:
                d = json.loads(p.read_text())
            except (OSError, json.JSONDecodeError):
                return False
            d = d.get("config", {}) if name == "compare.json" else d
            return isinstance(d, dict) and d.get("task") == "lm"
    return False


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def refuse_lm_flags(args) -> None:
    """An MLP run (``--task mlp``) given LM options: say which."""
    given = [_flag(k) for k in LM_FLAGS if getattr(args, k, None) is not None]
    if given:
        raise ValueError(f"{', '.join(given)} apply to --task lm only; add --task lm or drop "
                         "them")


def _config(args):
    from ..lm.config import LMConfig

    given = {field: getattr(args, a) for a, field in LM_FLAGS.items()
             if getattr(args, a) is not None}
    given.update({k: getattr(args, k) for k in _SHARED if getattr(args, k) is not None})
    if args.method is not None:
        given["method"] = args.method
    from .train import parse_overrides

    return LMConfig(rng=args.rng, overrides=parse_overrides(args.set), **given)


def run(args) -> int:
    """``netshape train --task lm ...`` (or ``--resume`` of an LM run directory)."""
    from ..torch import _lm_runner as runner
    from ..train._common import read_compare

    progress = not args.quiet
    if args.resume is None:
        wrong = [_flag(k) for k in MLP_ONLY_FLAGS if getattr(args, k, None) is not None]
        if args.download:
            wrong.append("--download")
        if wrong:
            raise ValueError(f"{', '.join(wrong)} apply to the MLP runner only; --task lm "
                             "takes --steps, --context, --d-model, ... (see --help)")
        if args.compare is not None and args.method is not None:
            raise ValueError("give either --method or --compare, not both")
        cfg = _config(args)
    target = args.resume
    try:
        if args.resume is not None:
            record = read_compare(args.resume)
            if record is not None:
                from ..lm.config import LMConfig

                summaries = runner.compare(record[0], LMConfig.from_dict(record[1]),
                                           args.resume, progress=progress, threads=args.threads,
                                           print_fn=None)
                return _report_compare(args.resume, summaries)
            return _report_run(args.resume, runner.resume(args.resume, progress=progress,
                                                          threads=args.threads))
        corpus = "stdlib" if cfg.data_dir is None else Path(cfg.data_dir).name or "data"
        if args.compare is not None:
            methods = [m.strip() for m in args.compare.split(",") if m.strip()]
            target = args.output or f"runs/lm-{corpus}-compare"
            if (Path(target) / "compare.json").exists():
                raise ValueError(f"--output={target!r} already holds a comparison; continue "
                                 "it with --resume or choose another --output")
            summaries = runner.compare(methods, cfg, target, progress=progress,
                                       threads=args.threads, print_fn=None)
            return _report_compare(target, summaries)
        target = args.output or f"runs/lm-{corpus}-{cfg.method}"
        return _report_run(target, runner.train(cfg, target, progress=progress,
                                                threads=args.threads))
    except KeyboardInterrupt:
        if target is not None:
            print(f"netshape train: stopped; the last evaluation's checkpoint is saved. "
                  f"Continue with:\n  netshape train --resume {target}", file=sys.stderr)
        raise


def _report_run(target, s: dict) -> int:
    ppl = "-" if s.get("val_ppl") is None else f"{s['val_ppl']:.3f}"
    dens = "-" if s.get("density") is None else f"{s['density']:.4f}"
    if s.get("diverged"):
        print(f"{s['method']} language model on {s['corpus']}: diverged at step "
              f"{s['steps_done']} of {s['steps']} (the loss is not finite); training stopped. "
              "A lower --lr (or a longer --warmup) usually helps", file=sys.stderr)
    print(f"{s['method']} language model on {s['corpus']}: validation perplexity {ppl} after "
          f"{s['steps_done']} steps ({s['tokens_seen']} tokens), density {dens}, "
          f"{s['train_seconds']:.1f} s training")
    print(f"run directory: {target}  (metrics.csv, checkpoint.pt, split.json, summary.json; "
          f"plots: netshape analyze {target})")
    return 1 if s.get("diverged") else 0


def _report_compare(target, summaries) -> int:
    from ..torch._lm_runner import TABLE_COLUMNS, table_rows
    from ..train._table import format_text

    print(format_text(table_rows(summaries), TABLE_COLUMNS))
    print(f"\ntable: {target}/comparison.md  runs: {target}/<method>/")
    return 0
