"""The ``netshape train --task lm`` runner: a byte-level LLaMA-style decoder, dense or DST.

Next-token cross-entropy on random windows of the training side of the corpus
(:mod:`netshape.lm.data`), validation loss and perplexity
:math:`\\exp(\\text{mean token loss})` on fixed windows of the validation side
every ``eval_every`` steps, each evaluation followed by a checkpoint. The
recipe is in :mod:`netshape.lm.config`.

Run directory (every file written atomically)::

    config.json      the LMConfig
    split.json       corpus source, its SHA-256, the train / validation file lists
    metrics.csv      one row per evaluation (see METRIC_COLUMNS)
    checkpoint.pt    model / optimizer / scheduler / DST state at the last evaluation,
                     plus plain (out, in) masks; torch.load(weights_only=True) reads it
    snapshots/       topology snapshots update_NNNNNN.npz
    summary.json     latest figures; "finished": true once training ends

``netshape analyze RUN_DIR`` reads the checkpoint's masks and the snapshots.
:func:`resume` continues from the last checkpoint bit-identically: the
batches of step ``t`` are a pure function of ``(rng, t)``.

Examples
--------
>>> import pathlib, tempfile
>>> from netshape.lm import LMConfig, train
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> for i in range(12):
...     _ = (d / f"f{i}.txt").write_text(f"line {i} of some text\\n" * 30)
>>> cfg = LMConfig(method="set", steps=4, update_every=2, batch_size=2, context=16,
...                d_model=16, n_layers=1, n_heads=2, ffn=32, eval_windows=2,
...                val_fraction=0.3, data_dir=str(d))
>>> s = train(cfg, tempfile.mkdtemp(), progress=False)
>>> s["finished"], s["steps_done"], s["val_ppl"] > 1.0
(True, 4, True)
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from ..lm.config import LMConfig, resolve
from ..lm.data import Corpus, load_corpus
from ..train import _common as common
from ..train import _rundir as rd
from ..train._model import layer_masks
from ..train._table import format_text, write_comparison
from ._lm_model import VOCAB, build_decoder, percolation_pairs

__all__ = ["METRIC_COLUMNS", "SPLIT", "TABLE_COLUMNS", "batch", "compare", "resume", "train"]

SPLIT = "split.json"

#: the layers the LM presets sparsify (fnmatch on module names): every block's projections
_SPARSIFIED = "blocks.*"

#: columns of an LM run's metrics.csv, one row per evaluation
METRIC_COLUMNS = ("step", "tokens", "lr", "train_loss", "val_loss", "val_ppl", "density", "itop",
                  "anp", "topology_updates", "topology_seconds", "seconds")

#: the terminal / comparison table of ``--task lm``: (summary key, header, format)
TABLE_COLUMNS = (
    ("method", "method", "{}"),
    ("steps_done", "steps", "{}"),
    ("density", "density", "{:.4f}"),
    ("val_ppl", "val ppl", "{:.3f}"),
    ("best_val_ppl", "best ppl", "{:.3f}"),
    ("val_loss", "val loss", "{:.4f}"),
    ("anp", "ANP %", "{:.1f}"),
    ("itop", "ITOP %", "{:.1f}"),
    ("train_seconds", "train s", "{:.1f}"),
    ("topology_seconds", "topology s", "{:.1f}"),
)


def batch(tokens: np.ndarray, seed: int, step: int, batch_size: int,
          context: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and next-token targets ``(batch_size, context)`` of training step ``step``.

    Window starts are drawn uniformly from a stream seeded by ``(seed, step)``
    alone, so a resumed run sees the batches of the uninterrupted one.

    >>> x, y = batch(np.arange(100, dtype=np.uint8), 0, 3, 2, 5)
    >>> bool((x[:, 1:] == y[:, :-1]).all()), tuple(x.shape)
    (True, (2, 5))
    """
    gen = np.random.default_rng(np.random.SeedSequence([int(seed), int(step), 0x1A4B]))
    starts = gen.integers(0, tokens.size - context, size=batch_size)
    win = tokens[starts[:, None] + np.arange(context + 1)].astype(np.int64)
    t = torch.from_numpy(win)
    return t[:, :-1], t[:, 1:]


def _val_windows(tokens: np.ndarray, n: int, context: int) -> torch.Tensor:
    starts = np.linspace(0, tokens.size - context - 1, n).astype(np.int64)
    return torch.from_numpy(tokens[starts[:, None] + np.arange(context + 1)].astype(np.int64))


def evaluate(model, windows: torch.Tensor, batch_size: int) -> float:
    """Mean next-token cross-entropy (nats) of ``model`` over validation ``windows``."""
    was = model.training
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(windows), batch_size):
            w = windows[i:i + batch_size]
            logits = model(w[:, :-1])
            total += float(F.cross_entropy(logits.reshape(-1, VOCAB), w[:, 1:].reshape(-1),
                                           reduction="sum"))
            count += w[:, 1:].numel()
    model.train(was)
    return total / max(count, 1)


def _writable_dir(output) -> Path:
    from .._fs import check_writable_dir

    return check_writable_dir(output, "output")


def train(config: LMConfig, output: str | os.PathLike, *, progress: bool = True,
          threads: int | None = None, on_step: Callable[[int], None] | None = None,
          on_eval: Callable[[dict], None] | None = None) -> dict:
    """Train one language model into the run directory ``output``; return its summary.

    ``on_step(step)`` runs after each optimizer step (``step`` from 0),
    ``on_eval(row)`` after each evaluation's checkpoint. The config is
    validated and the corpus read before anything is written.
    """
    cfg = resolve(config)
    common.set_threads(threads)
    corpus = load_corpus(cfg.data_dir, val_fraction=cfg.val_fraction, context=cfg.context)
    run = common.check_fresh_run_dir(output)
    setup = _Setup(cfg, corpus)  # every layer's link count is checked here
    common.open_run_dir(run)
    rd.write_json(run / SPLIT, corpus.split_record())
    rd.write_json(run / rd.CONFIG, cfg.to_dict())
    return _fit(cfg, run, corpus, setup, None, progress, on_step, on_eval)


def resume(run_dir: str | os.PathLike, *, progress: bool = True, threads: int | None = None,
           on_step: Callable[[int], None] | None = None,
           on_eval: Callable[[dict], None] | None = None) -> dict:
    """Continue the LM run in ``run_dir`` from its last checkpoint (settings from config.json)."""
    run = Path(run_dir)
    if not run.is_dir():
        raise NotADirectoryError(f"resume={str(run_dir)!r} is not a directory")
    cfg = resolve(LMConfig.from_dict(rd.read_json(run / rd.CONFIG)))
    common.set_threads(threads)
    if (run / rd.SUMMARY).is_file():
        summary = rd.read_json(run / rd.SUMMARY)
        if summary.get("finished"):
            return summary
    corpus = load_corpus(cfg.data_dir, val_fraction=cfg.val_fraction, context=cfg.context)
    split = rd.read_json(run / SPLIT)
    if split.get("sha256") != corpus.sha256:
        raise ValueError(f"the corpus at {corpus.source!r} changed since the run in "
                         f"{str(run_dir)!r} started (its SHA-256 differs from {SPLIT}); "
                         "restore it or start a new run")
    ckpt = rd.load_checkpoint(run / rd.CHECKPOINT) if (run / rd.CHECKPOINT).is_file() else None
    return _fit(cfg, run, corpus, _Setup(cfg, corpus), ckpt, progress, on_step, on_eval)


class _Setup:
    """Model, optimizer, trainer and schedule of a run, built (every layer checked)
    before anything is written."""

    def __init__(self, cfg: LMConfig, corpus: Corpus):
        self.model = build_decoder(cfg.shape, seed=cfg.rng)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
        self.dst = _sparsify(cfg, self.model, self.opt, corpus)
        self.sched = _scheduler(cfg, self.opt, self.dst)


def _snapshot_every(cfg: LMConfig) -> int:
    """Topology updates between snapshots (about ten per run by default; 0: none)."""
    n_updates = max(1, (cfg.steps - 1) // cfg.update_every)
    return max(1, n_updates // 10) if cfg.snapshot_every is None else cfg.snapshot_every


def _sparsify(cfg: LMConfig, model, opt, corpus: Corpus):
    if cfg.method == "fc":
        return None
    from . import sparsify

    kwargs = dict(cfg.overrides)
    if cfg.zeta is not None:
        kwargs.setdefault("zeta", cfg.zeta)
    # a batch from a stream no training step uses (steps count from 0)
    calib, _ = batch(corpus.train, cfg.rng, 2**32, min(cfg.batch_size, 8), cfg.context)
    return sparsify(model, opt, method=cfg.method, density=cfg.density, total_steps=cfg.steps,
                    update_every=cfg.update_every, rng=cfg.rng, include=_SPARSIFIED,
                    pairs=percolation_pairs(cfg.shape), calibration=calib, **kwargs)


def _scheduler(cfg: LMConfig, opt, dst):
    from .lr import INoamLR, NoamLR

    if dst is None:
        return NoamLR(opt, cfg.warmup)
    return INoamLR(opt, dst, cfg.warmup, cfg.iterative_warmup)


def network_figures(dst) -> dict:
    """Density, ITOP and ANP over all sparsified layers (1.0 each for a dense model).

    ANP here is the share of the sparsified layers' neurons (inputs and outputs
    of every layer) that keep at least one link; ITOP is weighted by layer size.
    """
    if dst is None or not dst.masks:
        return {"density": 1.0, "itop": 1.0, "anp": 1.0}
    stats = dst.stats()
    size = sum(m.numel() for m in dst.masks.values())
    ends = sum(m.shape[0] + m.shape[1] for m in dst.masks.values())
    return {"density": sum(stats[k]["links"] for k in dst.masks) / size,
            "itop": sum(float(stats[k]["itop"]) * m.numel() for k, m in dst.masks.items()) / size,
            "anp": sum(float(stats[k]["anp"]) * (m.shape[0] + m.shape[1])
                       for k, m in dst.masks.items()) / ends}


def _restore(setup: _Setup, ckpt: dict | None) -> tuple[int, list[dict]]:
    """Load a checkpoint into the setup: (steps done, their metric rows)."""
    if ckpt is None:
        return 0, []
    if setup.dst is not None:  # layers the run switched to sparse execution since sparsify
        setup.dst.prepare_resume(ckpt["dst"])
    setup.model.load_state_dict(ckpt["model"])
    setup.opt.load_state_dict(ckpt["optimizer"])
    setup.sched.load_state_dict(ckpt["scheduler"])
    if setup.dst is not None:
        setup.dst.load_state_dict(ckpt["dst"])
    torch.set_rng_state(ckpt["torch_rng"])
    start = int(ckpt["step"])
    return start, [dict(r) for r in ckpt["metrics"] if r["step"] <= start]


def _fit(cfg: LMConfig, run: Path, corpus: Corpus, setup: _Setup, ckpt: dict | None,
         progress: bool, on_step, on_eval) -> dict:
    from tqdm.auto import tqdm

    model, opt, dst, sched = setup.model, setup.opt, setup.dst, setup.sched
    common.attach_snapshots(dst, run, _snapshot_every(cfg))
    start, rows = _restore(setup, ckpt)
    rd.write_metrics(run / rd.METRICS, rows, METRIC_COLUMNS)
    windows = _val_windows(corpus.validation, cfg.eval_windows, cfg.context)
    figs = network_figures(dst)
    postfix = {"loss": "-", "ppl": "-", "dens": f"{figs['density']:.3f}"}
    summary = _summary(cfg, corpus, model, rows, dst, finished=start >= cfg.steps)
    bar = tqdm(total=cfg.steps, initial=start, desc=f"{cfg.method} lm", unit="step",
               disable=not progress, mininterval=0.5, dynamic_ncols=True)
    loss_sum, n_loss, topo_s, updates, t0 = 0.0, 0, 0.0, 0, time.perf_counter()
    model.train()
    with bar:
        for step in range(start, cfg.steps):
            x, y = batch(corpus.train, cfg.rng, step, cfg.batch_size, cfg.context)
            lr = opt.param_groups[0]["lr"]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x).reshape(-1, VOCAB), y.reshape(-1))
            value = float(loss.detach())
            # a non-finite loss ends the run before it reaches the weights or the topology:
            # the same seed gives the same NaN on every retry
            diverged = not math.isfinite(value)
            if not diverged:
                changed, seconds = common.backward_and_step(loss, opt, dst)
                updates, topo_s = updates + int(changed), topo_s + seconds
                sched.step()
            loss_sum, n_loss = loss_sum + value, n_loss + 1
            if on_step is not None:
                on_step(step)
            bar.update(1)
            done = step + 1
            if done % 25 == 0:
                postfix["loss"] = f"{loss_sum / n_loss:.3f}"
                bar.set_postfix(postfix, refresh=False)
            if done % cfg.eval_every and done != cfg.steps and not diverged:
                continue
            val_loss = evaluate(model, windows, cfg.batch_size)
            figs = network_figures(dst)
            row = {"step": done, "tokens": done * cfg.batch_size * cfg.context, "lr": lr,
                   "train_loss": loss_sum / n_loss, "val_loss": val_loss,
                   "val_ppl": perplexity(val_loss), **figs,
                   "topology_updates": updates, "topology_seconds": topo_s,
                   "seconds": time.perf_counter() - t0}
            rows.append(row)
            rd.write_metrics(run / rd.METRICS, rows, METRIC_COLUMNS)
            rd.save_checkpoint(run / rd.CHECKPOINT, _checkpoint(model, opt, sched, dst, done, rows))
            summary = _summary(cfg, corpus, model, rows, dst, finished=done == cfg.steps)
            rd.write_json(run / rd.SUMMARY, summary)
            postfix.update(ppl=f"{row['val_ppl']:.2f}", dens=f"{figs['density']:.3f}")
            bar.set_postfix(postfix)
            loss_sum, n_loss, topo_s, updates, t0 = 0.0, 0, 0.0, 0, time.perf_counter()
            if on_eval is not None:
                on_eval(row)
            if summary["diverged"]:
                break
    if start >= cfg.steps:
        rd.write_json(run / rd.SUMMARY, summary)
    return summary


def perplexity(loss: float) -> float:
    """``exp(loss)`` of a mean token loss in nats; ``inf`` for a NaN loss (a diverged run).

    >>> perplexity(0.0), perplexity(float("nan"))
    (1.0, inf)
    """
    if math.isnan(loss):
        return math.inf
    return math.exp(min(loss, 700.0))  # exp(710) overflows a float


def _diverged(row: dict) -> bool:
    return not all(isinstance(row.get(k), (int, float)) and math.isfinite(row[k])
                   for k in ("train_loss", "val_loss"))


def _checkpoint(model, opt, sched, dst, step: int, rows: list[dict]) -> dict:
    payload = {"format": "netshape-lm-1", "step": step, "metrics": [dict(r) for r in rows],
               "model": model.state_dict(), "optimizer": opt.state_dict(),
               "scheduler": sched.state_dict(), "torch_rng": torch.get_rng_state(),
               **common.checkpoint_masks(model, dst, include=_SPARSIFIED)}
    return payload


def _parameters(model, dst) -> dict:
    total = sum(p.numel() for n, p in model.named_parameters() if not n.endswith(".mask"))
    sparse = sum(m.numel() for m in dst.masks.values()) if dst is not None else 0
    kept = sum(int(m.sum()) for m in dst.masks.values()) if dst is not None else 0
    return {"total": total, "in_sparsified_layers": sparse, "nonzero": total - sparse + kept}


def _summary(cfg: LMConfig, corpus: Corpus, model, rows, dst, *, finished: bool) -> dict:
    last = rows[-1] if rows else {}
    ppls = [r["val_ppl"] for r in rows if r["val_ppl"] is not None]
    diverged = any(_diverged(r) for r in rows)
    return {
        "task": "lm", "method": cfg.method, "corpus": corpus.kind, "rng": cfg.rng,
        # a diverged run is over: it stopped at the first non-finite loss
        "finished": bool(finished or diverged), "diverged": diverged, "steps": cfg.steps,
        "steps_done": last.get("step", 0),
        "tokens_seen": last.get("tokens", 0),
        "val_loss": last.get("val_loss"), "val_ppl": last.get("val_ppl"),
        "best_val_ppl": min(ppls) if ppls else None, "train_loss": last.get("train_loss"),
        "density": last.get("density"), "anp": last.get("anp"), "itop": last.get("itop"),
        "train_seconds": sum(r["seconds"] for r in rows),
        "topology_seconds": sum(r["topology_seconds"] for r in rows),
        "parameters": _parameters(model, dst),
        "layers": common.layer_summary(layer_masks(model, dst, include=_SPARSIFIED)),
        "data_source": corpus.source, "config": cfg.to_dict(),
    }


def table_rows(summaries: Sequence[dict]) -> list[dict]:
    """Rows of :data:`TABLE_COLUMNS` from run summaries (ANP and ITOP in percent)."""
    rows = []
    for s in summaries:
        row = {k: s.get(k) for k, _, _ in TABLE_COLUMNS}
        for k in ("anp", "itop"):
            row[k] = None if row[k] is None else 100.0 * float(row[k])
        rows.append(row)
    return rows


def compare(methods: Sequence[str], config: LMConfig, output: str | os.PathLike, *,
            progress: bool = True, threads: int | None = None,
            print_fn: Callable[[str], None] | None = print) -> list[dict]:
    """Train each method into ``output/<method>/`` and write ``comparison.{csv,md}``.

    Incremental like :func:`netshape.train.compare`: finished runs are
    reused, interrupted ones resumed. ``config.lr=None`` gives each method its
    own default (3e-3 for DST, 1e-3 for ``fc``).
    """
    from ..train import METHODS

    methods = common.check_methods(methods, METHODS)
    cfgs = [resolve(dataclasses.replace(config, method=m)) for m in methods]
    load_corpus(config.data_dir, val_fraction=cfgs[0].val_fraction, context=cfgs[0].context)
    for cfg in cfgs:  # every method refused or accepted before compare.json is written
        common.check_layer_links(cfg, build_decoder(cfg.shape, seed=cfg.rng), "blocks.*")
    out = _writable_dir(output)
    rd.write_json(out / common.COMPARE, {"methods": methods, "config": config.to_dict()})
    c0 = cfgs[0]
    header = (f"# netshape train --task lm --compare: {c0.steps} steps, density {c0.density}, "
              f"d_model {c0.d_model} x {c0.n_layers} layers, context {c0.context}, "
              f"rng {c0.rng}")
    summaries = common.run_methods(
        cfgs, out, lambda cfg, sub: train(cfg, sub, progress=progress, threads=threads),
        lambda sub: resume(sub, progress=progress, threads=threads),
        lambda done: write_comparison(out, table_rows(done), header=header,
                                      columns=TABLE_COLUMNS))
    if print_fn is not None:
        print_fn(format_text(table_rows(summaries), TABLE_COLUMNS))
    return summaries
