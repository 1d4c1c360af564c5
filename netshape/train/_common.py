"""Pieces shared by the MLP runner (:mod:`netshape.torch._train_loop`) and the LM runner
(:mod:`netshape.torch._lm_runner`): the run directory's life cycle, checkpoint masks,
per-layer summaries, one training step's backward and optimizer/topology
steps, the config checks both runners make, the ``--compare`` loop and its
``compare.json``.

A run directory is created only once the model is built and sparsified, so
that a refused run (a layer whose density rounds to no link, say) leaves
nothing behind: :func:`check_fresh_run_dir` checks ``output`` without
creating it, :func:`open_run_dir` creates it afterwards, and
:func:`attach_snapshots` then points the trainer's snapshots into it.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .._validation import check_positive_int
from . import _rundir as rd

__all__ = ["COMPARE", "attach_snapshots", "backward_and_step", "check_config_keys",
           "check_fresh_run_dir", "check_layer_links", "check_methods", "check_seed",
           "check_snapshot_every", "checkpoint_masks", "layer_summary", "open_run_dir",
           "read_compare", "run_methods", "set_threads"]

#: the file that marks a ``--compare`` directory: methods and the base config
COMPARE = "compare.json"


def set_threads(threads: int | None) -> None:
    """``torch.set_num_threads(threads)`` after checking it (None: leave torch's choice)."""
    if threads is not None:
        import torch

        torch.set_num_threads(check_positive_int(threads, "threads"))


def check_config_keys(cls: type, d: dict) -> None:
    """Refuse the keys of ``d`` that are no field of the config dataclass ``cls``
    (a ``config.json`` of another version or runner, a typo), naming them."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ValueError(f"config has unknown keys {unknown}; allowed: {sorted(known)}")


def check_seed(rng: Any) -> Any:
    """``rng`` if it is a non-negative int seed (a config stores a seed, not a Generator)."""
    if isinstance(rng, bool) or not isinstance(rng, int) or rng < 0:
        raise ValueError(f"rng={rng!r} must be a non-negative integer seed")
    return rng


def check_snapshot_every(every: Any) -> Any:
    """``snapshot_every`` checked: None (the runner's default) and 0 (no snapshots) pass
    as they are, anything else must be a positive int."""
    if every is not None and every != 0:
        return check_positive_int(every, "snapshot_every")
    return every


def check_fresh_run_dir(output: str | os.PathLike) -> Path:
    """``output`` as a Path, refused if it already holds a run; nothing is created."""
    from .._fs import check_writable_dir

    run = check_writable_dir(output, "output", create=False)
    if (run / rd.CONFIG).exists():
        raise ValueError(f"output={str(output)!r} already holds a run ({rd.CONFIG}); "
                         "continue it with --resume or choose another --output")
    return run


def open_run_dir(run: Path) -> Path:
    """Create the run directory checked by :func:`check_fresh_run_dir`."""
    from .._fs import check_writable_dir

    return check_writable_dir(run, "output", create=True)


def attach_snapshots(dst, run: Path, every: int) -> None:
    """Topology snapshots every ``every`` updates into ``run/snapshots/`` (0: none).

    The trainer is built without a snapshot folder (so that building it
    creates nothing); the folder is made here, once the run directory exists.
    """
    if dst is None or not every:
        return
    folder = run / rd.SNAPSHOTS
    folder.mkdir(exist_ok=True)
    dst.snapshot_dir, dst.snapshot_every = str(folder), int(every)


def checkpoint_masks(model, dst, include: str | None = None) -> dict:
    """The checkpoint entries of a run: the trainer's state (sparse runs) and plain
    ``(out, in)`` bool masks by layer name, for readers that skip parametrizations.

    A dense run records the layers a sparse run would sparsify, all ones
    (:func:`~netshape.train._model.layer_masks`), so both read back alike.
    """
    from ._model import layer_masks

    out = {} if dst is None else {"dst": dst.state_dict()}
    out["masks"] = layer_masks(model, dst, include=include)
    return out


def backward_and_step(loss, opt, dst) -> tuple[bool, float]:
    """Backpropagate ``loss``, step ``opt`` and then the topology (``dst.step()``).

    The optimizer step is skipped when this iteration's topology update
    replaces it (:meth:`~netshape.torch.DynamicSparseTrainer.replaces_optimizer_step`).

    Parameters
    ----------
    loss : torch.Tensor
        The batch's loss, not yet backpropagated.
    opt : torch.optim.Optimizer
        The optimizer of the model's weights.
    dst : DynamicSparseTrainer or None
        The run's trainer; None for a dense (``fc``) run.

    Returns
    -------
    changed : bool
        Whether the topology changed.
    seconds : float
        Time spent inside ``dst.step()`` (0.0 without a trainer).
    """
    loss.backward()
    if dst is None or not dst.replaces_optimizer_step():
        opt.step()
    if dst is None:
        return False, 0.0
    ts = time.perf_counter()
    changed = dst.step()
    return changed, time.perf_counter() - ts


def layer_summary(masks: dict) -> dict:
    """Shape, links and density of every layer of ``masks`` (name -> ``(out, in)`` mask)."""
    return {k: {"shape_out_in": list(m.shape), "links": int(m.sum()),
                "density": float(m.float().mean())} for k, m in masks.items()}


def check_layer_links(cfg, model, include: str | None = None) -> None:
    """Refuse ``cfg.density`` if it gives some layer of ``model`` that ``cfg.method``
    would sparsify no link (the check :func:`netshape.torch.sparsify` makes), so that a
    comparison is refused before it writes anything."""
    if cfg.method == "fc":
        return
    from .._validation import link_count
    from ..torch.groups import find_slots

    for s in find_slots(model, include):
        link_count(cfg.density, s.n_in, s.n_out, name=f"density of {s.name}")


def check_methods(methods: Sequence[str], allowed: Sequence[str]) -> list[str]:
    """The ``--compare`` methods, each one of ``allowed`` and no two alike."""
    from .._validation import check_choice
    from ..torch.methods import canonical_method

    methods = [check_choice(canonical_method(m, "compare"), "compare", allowed) for m in methods]
    if not methods or len(set(methods)) != len(methods):
        raise ValueError(f"compare={methods!r} must name distinct methods")
    return methods


def run_methods(cfgs: Sequence, out: Path, train: Callable, resume: Callable,
                write_table: Callable[[list[dict]], None]) -> list[dict]:
    """Train (or resume, or reuse) each config into ``out/<method>/``; rewrite the
    table after each one, so that an interrupted comparison keeps what it finished."""
    summaries: list[dict] = []
    for cfg in cfgs:
        sub = out / cfg.method
        if (sub / rd.CONFIG).is_file():
            summaries.append(resume(sub))
        else:
            summaries.append(train(cfg, sub))
        write_table(summaries)
    return summaries


def read_compare(output: str | os.PathLike) -> tuple[list[str], dict] | None:
    """The methods and base config (a dict) of a ``--compare`` directory; None if it has
    no ``compare.json``. A file that is not a comparison record is refused by name."""
    p = Path(output) / COMPARE
    if not p.is_file():
        return None
    d = rd.read_json(p)
    methods, config = d.get("methods"), d.get("config")
    if (not isinstance(methods, list) or not methods
            or not all(isinstance(m, str) for m in methods) or not isinstance(config, dict)):
        raise ValueError(f"{str(p)!r} is not a netshape comparison record: it needs "
                         "'methods' (a list of method names) and 'config' (an object)")
    return methods, config
