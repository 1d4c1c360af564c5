"""The ``netshape train`` runner: an MLP trained dense (``fc``) or with a DST preset.

Defaults follow the paper's Table 4 (3 hidden layers of 1568, batch 32, SGD
with momentum 0.9 and weight decay 5e-4, learning rate falling linearly from
0.025 to 2.5e-4, one topology update per epoch, final layer dense). The
embedded ``digits`` data gets small defaults (:data:`DATASET_DEFAULTS`).

Every sparsified layer is an ``nn.Linear``; its weight is ``(out, in)`` so its
mask is the transpose of netshape's biadjacency ``A`` of shape ``(n_in, n_out)``.

A run writes a run directory (see :mod:`netshape.train._rundir`): config,
per-epoch metrics, a checkpoint after every epoch (atomically, so Ctrl-C
leaves the last complete one) that :func:`resume` continues bit-identically,
topology snapshots and a summary.

Examples
--------
>>> import tempfile
>>> from netshape.train import TrainConfig, train
>>> cfg = TrainConfig(dataset="digits", method="fc", epochs=1, hidden=(16,),
...                   steps_per_epoch=5)
>>> s = train(cfg, tempfile.mkdtemp(), progress=False)
>>> s["finished"], s["epochs_done"], 0.0 <= s["test_acc"] <= 1.0
(True, 1, True)
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch.nn import functional as F

from ..datasets import load as load_dataset
from ..train import _common as common
from ..train import _rundir as rd
from ..train._config import DATASET_DEFAULTS, TrainConfig, methods, resolve
from ..train._model import anp_of_chain, build_mlp, epoch_order, evaluate, layer_masks, linear_lr
from ..train._table import comparison_rows, format_text, write_comparison

__all__ = ["DATASET_DEFAULTS", "METHODS", "TrainConfig", "compare", "resolve", "resume", "train"]

#: ``fc`` (no sparsification) and every preset of :data:`netshape.torch.PRESETS`
METHODS = methods()

#: calibration rows handed to the adapter (CSTI initialisation correlates inputs)
_CALIBRATION_ROWS = 1024


class _Data:
    """Tensors of one dataset, standardised with the training set's pixel mean/std."""

    def __init__(self, cfg: TrainConfig):
        ds = load_dataset(cfg.dataset, data_dir=cfg.data_dir, rng=cfg.rng)
        mean, std = float(ds.X_train.mean()), float(ds.X_train.std()) or 1.0
        self.mean, self.std, self.source = mean, std, ds.source
        self.n_features, self.n_classes = ds.n_features, ds.n_classes
        self.X = torch.from_numpy((ds.X_train - mean) / std)
        self.y = torch.from_numpy(ds.y_train)
        self.X_test = torch.from_numpy((ds.X_test - mean) / std)
        self.y_test = torch.from_numpy(ds.y_test)


def _steps(cfg: TrainConfig, n: int) -> tuple[int, int]:
    """(steps per epoch, total steps) of a run over ``n`` training samples."""
    spe = math.ceil(n / cfg.batch_size)
    if cfg.steps_per_epoch is not None:
        spe = min(spe, cfg.steps_per_epoch)
    return spe, cfg.epochs * spe


def _check_update_every(cfg: TrainConfig, n: int) -> None:
    spe, total = _steps(cfg, n)
    if cfg.method != "fc" and cfg.update_every is not None and cfg.update_every >= total:
        raise ValueError(f"update_every={cfg.update_every!r} leaves no topology update in a run "
                         f"of {total} steps ({cfg.epochs} epochs of {spe}); allowed: 1 to "
                         f"{total - 1}")


class _Setup:
    """Model, optimizer and trainer of a run, built (and every layer checked) before
    anything is written; ``spe`` / ``total``: steps per epoch / in all."""

    def __init__(self, cfg: TrainConfig, data: _Data):
        self.spe, self.total = _steps(cfg, len(data.y))
        self.model = build_mlp(data.n_features, cfg.hidden, data.n_classes, seed=cfg.rng)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                   weight_decay=cfg.weight_decay)
        self.dst = _sparsify(cfg, self.model, self.opt, data, self.total, self.spe)
        if self.dst is not None and cfg.init_scale == "fan_in":
            _rescale_to_fan_in(self.model, self.dst)


def train(config: TrainConfig, output: str | os.PathLike, *, progress: bool = True,
          threads: int | None = None, on_step: Callable[[int], None] | None = None,
          on_epoch_end: Callable[[dict], None] | None = None) -> dict:
    """Train one model into the run directory ``output`` and return its summary.

    ``on_step(step)`` / ``on_epoch_end(metrics_row)`` are optional hooks
    (called after each optimizer step / after each epoch's checkpoint).
    All validation and data loading happen before the first step. An
    :class:`netshape.lm.LMConfig` trains a language model instead
    (:func:`netshape.lm.train`; its hook ``on_eval`` in place of ``on_epoch_end``).
    """
    if getattr(config, "task", "mlp") == "lm":
        from . import _lm_runner as lm

        return lm.train(config, output, progress=progress, threads=threads, on_step=on_step,
                        on_eval=on_epoch_end)
    cfg = resolve(config)
    common.set_threads(threads)
    data = _Data(cfg)  # missing data files fail here, before the run directory exists
    _check_update_every(cfg, len(data.y))
    run = common.check_fresh_run_dir(output)
    setup = _Setup(cfg, data)  # every layer's link count is checked here
    common.open_run_dir(run)
    rd.write_json(run / rd.CONFIG, cfg.to_dict())
    return _fit(cfg, run, data, setup, None, progress, on_step, on_epoch_end)


def resume(run_dir: str | os.PathLike, *, progress: bool = True, threads: int | None = None,
           on_step: Callable[[int], None] | None = None,
           on_epoch_end: Callable[[dict], None] | None = None) -> dict:
    """Continue the run in ``run_dir`` from its last complete checkpoint.

    Settings come from ``run_dir/config.json``. A run with no checkpoint yet
    restarts from the beginning; a finished run returns its summary.
    """
    run = Path(run_dir)
    if not run.is_dir():
        raise NotADirectoryError(f"resume={str(run_dir)!r} is not a directory")
    saved = rd.read_json(run / rd.CONFIG)
    if saved.get("task") == "lm":
        from . import _lm_runner as lm

        return lm.resume(run, progress=progress, threads=threads, on_step=on_step,
                         on_eval=on_epoch_end)
    cfg = resolve(TrainConfig.from_dict(saved))
    common.set_threads(threads)
    if (run / rd.SUMMARY).is_file():
        summary = rd.read_json(run / rd.SUMMARY)
        if summary.get("finished"):
            return summary
    ckpt = rd.load_checkpoint(run / rd.CHECKPOINT) if (run / rd.CHECKPOINT).is_file() else None
    data = _Data(cfg)
    return _fit(cfg, run, data, _Setup(cfg, data), ckpt, progress, on_step, on_epoch_end)


def _network_figures(dst) -> dict:
    """Density, ITOP and ANP over all sparsified layers (1.0 each for a dense model)."""
    if dst is None or not dst.masks:  # fc: no sparsification
        return {"density": 1.0, "itop": 1.0, "anp": 1.0}
    masks = [m.detach().cpu().numpy().astype(bool) for m in dst.masks.values()]
    total = sum(m.size for m in masks)
    stats = dst.stats()
    itop = None
    if isinstance(stats, dict) and all(isinstance(stats.get(k), dict) for k in dst.masks):
        vals = [stats[k].get("itop") for k in dst.masks]
        if all(v is not None for v in vals):
            itop = sum(float(v) * m.size for v, m in zip(vals, masks, strict=True)) / total
    return {"density": sum(int(m.sum()) for m in masks) / total, "itop": itop,
            "anp": anp_of_chain(masks)}


def _fmt_figs(figs: dict) -> dict:
    return {short: "-" if figs[k] is None else f"{figs[k]:.3f}"
            for k, short in (("density", "dens"), ("itop", "itop"), ("anp", "anp"))}


def _restore(setup: _Setup, ckpt: dict | None, run: Path) -> tuple[int, list[dict]]:
    """Load a checkpoint into the setup: (epochs done, their metric rows)."""
    if ckpt is None:
        return 0, []
    dst = setup.dst
    if dst is not None:  # execution="auto" may have switched layers since sparsify
        dst.prepare_resume(ckpt["dst"])
    setup.model.load_state_dict(ckpt["model"])
    setup.opt.load_state_dict(ckpt["optimizer"])
    if dst is not None:
        dst.load_state_dict(ckpt["dst"])
    torch.set_rng_state(ckpt["torch_rng"])
    start_epoch = int(ckpt["epoch"])
    saved = ckpt.get("metrics") or rd.read_metrics(run / rd.METRICS)
    return start_epoch, [dict(r) for r in saved if r["epoch"] <= start_epoch]


def _fit(cfg: TrainConfig, run: Path, data: _Data, setup: _Setup, ckpt: dict | None,
         progress: bool, on_step, on_epoch_end) -> dict:
    from tqdm.auto import tqdm

    spe, total, dst = setup.spe, setup.total, setup.dst
    common.attach_snapshots(dst, run, _snapshot_every(cfg))
    start_epoch, rows = _restore(setup, ckpt, run)
    rd.write_metrics(run / rd.METRICS, rows)
    bar = tqdm(total=total, initial=start_epoch * spe, desc=cfg.method, unit="step",
               disable=not progress, mininterval=0.5, dynamic_ncols=True)
    postfix = {"loss": "-", "acc": "-", "test": "-", **_fmt_figs(_network_figures(dst))}
    with bar:
        for epoch in range(start_epoch + 1, cfg.epochs + 1):
            bar.set_description(f"{cfg.method} {epoch}/{cfg.epochs}", refresh=False)
            row = _epoch(cfg, data, setup, epoch, bar, postfix, on_step)
            rows.append(row)
            # metrics before the checkpoint: rows past the checkpoint are dropped on resume,
            # and the checkpoint carries its own copy of the rows
            rd.write_metrics(run / rd.METRICS, rows)
            ckpt_payload = _checkpoint(setup.model, setup.opt, dst, epoch, epoch * spe, rows)
            rd.save_checkpoint(run / rd.CHECKPOINT, ckpt_payload)
            summary = _summary(cfg, data, rows, layer_masks(setup.model, dst),
                               finished=epoch == cfg.epochs)
            rd.write_json(run / rd.SUMMARY, summary)
            postfix["test"] = f"{row['test_acc']:.4f}"
            bar.set_postfix(postfix)
            if on_epoch_end is not None:
                on_epoch_end(row)
    if start_epoch >= cfg.epochs:  # nothing left to run: summary of what is there
        summary = _summary(cfg, data, rows, layer_masks(setup.model, dst), finished=True)
        rd.write_json(run / rd.SUMMARY, summary)
    return summary


def _epoch(cfg: TrainConfig, data: _Data, setup: _Setup, epoch: int, bar, postfix: dict,
           on_step) -> dict:
    """Train one epoch and evaluate it: its metrics row."""
    model, opt, dst, spe, total = setup.model, setup.opt, setup.dst, setup.spe, setup.total
    n = len(data.y)
    figs = _network_figures(dst)
    order = torch.from_numpy(epoch_order(cfg.rng, epoch, n))
    t0, topo_s, updates = time.perf_counter(), 0.0, 0
    loss_sum, correct, seen = 0.0, 0, 0
    model.train()
    for b in range(spe):
        step = (epoch - 1) * spe + b
        idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
        xb, yb = data.X[idx], data.y[idx]
        lr = linear_lr(step, total, cfg.lr, cfg.lr_end)
        for g in opt.param_groups:
            g["lr"] = lr
        opt.zero_grad(set_to_none=True)
        out = model(xb)
        loss = F.cross_entropy(out, yb)
        changed, seconds = common.backward_and_step(loss, opt, dst)
        topo_s += seconds
        if changed:
            updates += 1
            figs = _network_figures(dst)
            postfix.update(_fmt_figs(figs))
        loss_sum += float(loss.detach()) * len(yb)
        correct += int((out.detach().argmax(1) == yb).sum())
        seen += len(yb)
        if on_step is not None:
            on_step(step)
        bar.update(1)
        if b % 25 == 0 or b == spe - 1:
            postfix.update(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}")
            bar.set_postfix(postfix, refresh=False)
    epoch_s = time.perf_counter() - t0
    test_loss, test_acc = evaluate(model, data.X_test, data.y_test)
    return {"epoch": epoch, "step": epoch * spe, "lr": lr,
            "train_loss": loss_sum / seen, "train_acc": correct / seen,
            "test_loss": test_loss, "test_acc": test_acc, **figs,
            "topology_updates": updates, "topology_seconds": topo_s,
            "epoch_seconds": epoch_s}


def _snapshot_every(cfg: TrainConfig) -> int:
    """Topology updates between snapshots (about ten per run by default; 0: none)."""
    return max(1, cfg.epochs // 10) if cfg.snapshot_every is None else cfg.snapshot_every


def _sparsify(cfg, model, opt, data, total, spe):
    if cfg.method == "fc":
        return None
    from . import sparsify

    kwargs = dict(cfg.overrides)
    if cfg.zeta is not None:
        kwargs["zeta"] = cfg.zeta
    # no snapshot folder yet: the run directory is created only once this succeeded
    return sparsify(model, opt, method=cfg.method, density=cfg.density, total_steps=total,
                    update_every=cfg.update_every or spe, rng=cfg.rng,
                    calibration=data.X[:_CALIBRATION_ROWS], execution=cfg.execution,
                    **kwargs)


def _rescale_to_fan_in(model, dst) -> None:
    """Scale row j of each masked weight by sqrt(n_in / fan_in_j) (see TrainConfig)."""
    from . import SparseLinear, get_original

    with torch.no_grad():
        for name, mask in dst.masks.items():
            mod = model.get_submodule(name)
            fan_in = mask.sum(dim=1, keepdim=True).clamp(min=1)
            scale = torch.sqrt(mask.shape[1] / fan_in)
            if isinstance(mod, SparseLinear):  # values in CSR order: row r_k scales link k
                mod.values.mul_(scale.view(-1)[mod.structure().row].to(mod.values.dtype))
            else:
                w = get_original(mod)
                w.mul_(scale.to(w.dtype))


def _checkpoint(model, opt, dst, epoch: int, step: int, rows: list[dict]) -> dict:
    payload = {"format": "netshape-train-1", "epoch": epoch, "step": step,
               "metrics": [dict(r) for r in rows],
               "model": model.state_dict(), "optimizer": opt.state_dict(),
               "torch_rng": torch.get_rng_state(), **common.checkpoint_masks(model, dst)}
    return payload



def _summary(cfg, data, rows, masks: dict, *, finished: bool) -> dict:
    last = rows[-1] if rows else {}
    accs = [r["test_acc"] for r in rows]
    return {
        "method": cfg.method, "dataset": cfg.dataset, "rng": cfg.rng,
        "finished": bool(finished), "epochs": cfg.epochs, "epochs_done": len(rows),
        "test_acc": last.get("test_acc"), "best_test_acc": max(accs) if accs else None,
        "test_loss": last.get("test_loss"), "train_acc": last.get("train_acc"),
        "density": last.get("density"), "anp": last.get("anp"), "itop": last.get("itop"),
        "train_seconds": sum(r["epoch_seconds"] for r in rows),
        "topology_seconds": sum(r["topology_seconds"] for r in rows),
        "input_standardisation": {"mean": data.mean, "std": data.std},
        "data_source": data.source, "layers": common.layer_summary(masks),
        "config": cfg.to_dict(),
    }


def compare(methods: Sequence[str], config: TrainConfig, output: str | os.PathLike, *,
            progress: bool = True, threads: int | None = None,
            print_fn: Callable[[str], None] | None = print) -> list[dict]:
    """Train each method into ``output/<method>/`` and write ``comparison.{csv,md}``.

    Incremental: finished runs are reused and interrupted ones resumed, so
    calling it again on the same ``output`` continues where it stopped.
    An :class:`netshape.lm.LMConfig` compares language models (:func:`netshape.lm.compare`).
    """
    if getattr(config, "task", "mlp") == "lm":
        from . import _lm_runner as lm

        return lm.compare(methods, config, output, progress=progress, threads=threads,
                          print_fn=print_fn)
    methods = common.check_methods(methods, METHODS)
    cfgs = [resolve(dataclasses.replace(config, method=m)) for m in methods]
    data = _Data(cfgs[0])  # every method refused or accepted before compare.json is written
    for cfg in cfgs:
        _check_update_every(cfg, len(data.y))
        common.check_layer_links(cfg, build_mlp(data.n_features, cfg.hidden, data.n_classes,
                                                seed=cfg.rng))
    from .._fs import check_writable_dir

    out = check_writable_dir(output, "output")
    rd.write_json(out / common.COMPARE, {"methods": methods, "config": config.to_dict()})
    summaries = common.run_methods(
        cfgs, out, lambda cfg, sub: train(cfg, sub, progress=progress, threads=threads),
        lambda sub: resume(sub, progress=progress, threads=threads),
        lambda done: write_comparison(out, comparison_rows(done),
                                      header=_table_header(cfgs[0])))
    if print_fn is not None:
        print_fn(format_text(comparison_rows(summaries)))
    return summaries


def _table_header(cfg: TrainConfig) -> str:
    return (f"# netshape train --compare: {cfg.dataset}, hidden {list(cfg.hidden)}, "
            f"density {cfg.density}, {cfg.epochs} epochs, rng {cfg.rng}")


def compare_methods_of(output: str | os.PathLike) -> tuple[list[str], TrainConfig] | None:
    """The methods and base config of a ``--compare`` directory, or None for a single run."""
    record = common.read_compare(output)
    if record is None:
        return None
    methods, config = record
    if config.get("task") == "lm":
        from ..lm import LMConfig

        return methods, LMConfig.from_dict(config)
    return methods, TrainConfig.from_dict(config)

