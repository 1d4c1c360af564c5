"""``sparsify``: validate everything, build the initial masks, return the engine.

All bad input (density, method, components, layers, optimizer coverage) is
rejected here, before the model is touched or any training step runs.
"""

from __future__ import annotations

import os
import warnings
from collections import OrderedDict

import numpy as np
import torch
from torch import nn

from .._validation import check_density, check_positive_int, link_count
from ._sparse_linear import SparseLinear
from .engine import DynamicSparseTrainer
from .groups import find_slots
from .masking import is_masked

__all__ = ["MAX_CUT_FRACTION", "sparsify"]

#: a decaying schedule whose single update removes more than this fraction of the
#: remaining links gets a warning from :func:`sparsify` (too few updates for the decay)
MAX_CUT_FRACTION = 0.5


def _as_batch(model, batch):
    if not isinstance(batch, (dict, tuple, list, torch.Tensor)):
        # e.g. a numpy batch: as a tensor of the model's dtype on its device
        p = next(model.parameters())
        batch = torch.as_tensor(np.asarray(batch), device=p.device)
        if batch.is_floating_point():
            batch = batch.to(p.dtype)
    return batch


def _calibration_inputs(model, slots, calibration) -> dict[str, torch.Tensor]:
    """Input activations of each slot's module on the calibration batch (for CSTI)."""
    seen: dict[int, torch.Tensor] = {}
    hooks = []
    for key, mod in {id(s.module): s.module for s in slots}.items():
        def hook(m, args, kwargs, _id=key):
            x = args[0] if args else next(iter(kwargs.values()))
            seen.setdefault(_id, x.detach())
        hooks.append(mod.register_forward_pre_hook(hook, with_kwargs=True))
    calibration = _as_batch(model, calibration)
    from .dataflow import isolated

    try:
        with torch.no_grad(), isolated(model):
            if isinstance(calibration, dict):
                model(**calibration)
            elif isinstance(calibration, (tuple, list)):
                model(*calibration)
            else:
                model(calibration)
    finally:
        for h in hooks:
            h.remove()
    missing = [s.name for s in slots if id(s.module) not in seen]
    if missing:
        raise ValueError(f"init='csti': the calibration batch never reached layers {missing}")
    return {s.name: seen[id(s.module)] for s in slots}


def sparsify(model: nn.Module, optimizer: torch.optim.Optimizer, method: str = "chts",
             density: float = 0.01, total_steps: int | None = None, update_every: int = 100,
             rng=None, include=None, exclude=None, calibration=None, snapshot_dir=None,
             snapshot_every=None, pairs=None, example_inputs=None, packed=None,
             execution: str = "auto",
             **overrides) -> DynamicSparseTrainer:
    """Make ``model`` sparse in place and return the engine that evolves its topology.

    Call ``dst.step()`` right after every ``optimizer.step()``. Weights are
    masked with :mod:`torch.nn.utils.parametrize` (``W = original * mask``;
    a Linear mask is ``(out, in)`` = ``A.T`` of netshape's ``(n_in, n_out)``
    biadjacency), so masks travel in ``model.state_dict()``.

    Parameters
    ----------
    model : nn.Module
    optimizer : torch.optim.Optimizer
        Must already hold the weights of every sparsified layer.
    method : str
        A preset of :data:`netshape.torch.PRESETS` (the table:
        :func:`netshape.torch.preset_table`); ``fc`` is a no-op.
    density : float in (0, 1]
        Target (final) fraction of links kept in each sparsified layer (1 keeps every link;
        ``method="fc"`` trains without masks).
    total_steps : int (required)
        Training steps (``dst.step()`` calls) planned; schedules are fractions of it.
    update_every : int
        Topology update every this many steps.
    rng : seed (see :func:`netshape._random.as_rng`); all randomness comes from it.
    include, exclude : str or list of str, optional
        :mod:`fnmatch` patterns on layer names (see :mod:`netshape.torch.groups`).
    calibration : tensor, tuple or dict, optional
        A batch passed to ``model`` to collect layer inputs (needed by ``init='csti'``).
    snapshot_dir, snapshot_every : optional
        Write ``snapshot_dir/update_NNNNNN.npz`` every ``snapshot_every`` updates.
    pairs : list, optional
        Percolation relations for :func:`netshape.percolate`. By default they are
        traced from one forward pass on ``example_inputs`` (or ``calibration``
        when the preset percolates), see :mod:`netshape.torch.dataflow`; the
        pass uses a few rows, changes no buffer and draws no random number;
        without either, from layer names
        (:func:`~netshape.torch.percolation_pairs`), with a warning naming the
        layers left without a relation. The relations used are ``dst.pairs``.
    example_inputs : tensor, tuple or dict, optional
        A small batch (``model(x)``, ``model(*x)`` or ``model(**x)``) for tracing ``pairs``.
    packed : dict, optional
        Packed projections split into slots, e.g. ``{"blocks.*.attn.qkv": ("q", "k", "v")}``
        (see :mod:`netshape.torch.linear_like`). Hugging Face ``Conv1D`` layers
        (GPT-2) become :class:`~netshape.torch.linear_like.Conv1DLinear` and
        GPT-2's ``c_attn`` is split into ``q, k, v`` without being declared.
    execution : {"auto", "masked", "sparse"}
        How sparsified layers run (:mod:`netshape.torch.execution`): ``masked``
        (dense weight times mask), ``sparse`` (an ``nn.Linear`` becomes a
        :class:`~netshape.torch.SparseLinear` that stores only
        its links, with optimizer state of size ``nnz``; raises for a layer it
        cannot run) or ``auto`` (per layer by density and size; masked where
        sparse cannot run, see ``dst.stats()[layer]["execution_reason"]``).
    **overrides
        Any component option of the preset (``init``, ``r``, ``removal``, ``alpha``,
        ``delta``, ``zeta``, ``regrowth``, ``T``, ``schedule``, ``initial_density``, ...).

    Examples
    --------
    >>> import torch
    >>> from netshape.torch import sparsify
    >>> model = torch.nn.Sequential(torch.nn.Linear(20, 30), torch.nn.ReLU(),
    ...                             torch.nn.Linear(30, 30), torch.nn.ReLU(),
    ...                             torch.nn.Linear(30, 3))
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    >>> dst = sparsify(model, opt, method="set", density=0.2, total_steps=20,
    ...                update_every=5, rng=0)
    >>> list(dst.masks), int(dst.masks["0"].sum())
    (['0', '2'], 120)
    >>> for _ in range(20):
    ...     opt.zero_grad(); model(torch.randn(8, 20)).pow(2).mean().backward(); opt.step()
    ...     _ = dst.step()
    >>> dst.stats()["2"]["links"], dst.stats()["2"]["updates"]
    (180, 3)
    """
    from ._checks import check_model
    from .linear_like import conv1d_modules, restore_conv1d

    check_model(model)  # before anything touches the model
    originals = conv1d_modules(model)
    try:
        return _sparsify(model, optimizer, method, density, total_steps, update_every, rng,
                         include, exclude, calibration, snapshot_dir, snapshot_every, pairs,
                         example_inputs, packed, execution, overrides)
    except BaseException:
        # validation runs on the linearized model (GPT-2 Conv1D -> Conv1DLinear): undo the
        # swap unless the engine already masked a layer
        if not any(is_masked(m, "weight") or isinstance(m, SparseLinear)
                   for m in model.modules()):
            restore_conv1d(model, optimizer, originals)
        raise


def _sparsify(model, optimizer, method, density, total_steps, update_every, rng, include,
              exclude, calibration, snapshot_dir, snapshot_every, pairs, example_inputs, packed,
              execution, overrides) -> DynamicSparseTrainer:
    from .methods import resolve_method

    cfg = resolve_method(method, overrides)
    if total_steps is None:
        # schedules are fractions of the run: without its length every update would fall
        # outside it (the old default of 1 step meant no topology update at all)
        raise TypeError("sparsify() needs total_steps=, the number of dst.step() calls the "
                        "training will make (e.g. epochs * batches per epoch)")
    total_steps = check_positive_int(total_steps, "total_steps")
    update_every = check_positive_int(update_every, "update_every")
    if snapshot_dir is not None:
        snapshot_every = check_positive_int(1 if snapshot_every is None else snapshot_every,
                                            "snapshot_every")
        os.makedirs(snapshot_dir, exist_ok=True)  # fail now, not after hours of training
        if not os.access(snapshot_dir, os.W_OK):
            raise PermissionError(f"snapshot_dir={str(snapshot_dir)!r} is not writable")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError("optimizer must be a torch.optim.Optimizer, got "
                        f"{type(optimizer).__name__}")
    from . import execution as _execution

    _execution.check([], execution)
    if cfg["method"] == "fc":
        return DynamicSparseTrainer(model, optimizer, cfg, density=1.0, total_steps=total_steps,
                                    update_every=update_every, rng=rng, slots=[])
    density = check_density(density, "density")
    if density == 1.0:
        warnings.warn(f"density=1 keeps every link: method {cfg['method']!r} can only remove "
                      "and regrow the same links; method='fc' trains the unsparsified "
                      "network without masks", UserWarning, stacklevel=2)
    if cfg["regrowth"] == "none" and (cfg["removal"] != "none" or cfg["percolation"]):
        raise ValueError("regrowth='none' needs removal='none' and percolation=False, "
                         "otherwise layers would fall below their scheduled link count")
    from .linear_like import linearize_conv1d

    linearize_conv1d(model, optimizer)
    slots = find_slots(model, include, exclude, packed)
    _execution.check(slots, execution, cfg["schedule"] != "constant")
    owned = {id(p) for g in optimizer.param_groups for p in g["params"]}
    for s in slots:
        if is_masked(s.module, s.param):
            raise ValueError(f"layer {s.name!r} is already sparsified")
        if id(getattr(s.module, s.param)) not in owned:
            raise ValueError(f"optimizer does not hold the weight of layer {s.name!r} "
                             f"({s.param}); create the optimizer from model.parameters() "
                             "before calling sparsify()")
    if pairs is None:
        # a calibration batch is traced only when percolation will read the relations
        pairs = _default_pairs(model, slots, example_inputs if example_inputs is not None
                               else calibration if cfg["percolation"] else None,
                               cfg["percolation"])
    else:  # bad names or shapes fail now, not at the first update
        import scipy.sparse as sp

        from ..percolation import percolate

        percolate(OrderedDict((s.name, sp.csr_array((s.n_in, s.n_out), dtype=bool))
                              for s in slots), pairs=pairs)
    dst = DynamicSparseTrainer(model, optimizer, cfg, density=density, total_steps=total_steps,
                               update_every=update_every, rng=rng, slots=slots,
                               snapshot_dir=snapshot_dir, snapshot_every=snapshot_every,
                               pairs=pairs)
    dst.packed = packed
    d0 = dst.density_at(0)
    _warn_steep_cut(dst)
    for s in slots:  # check every scheduled count before touching the model
        for d in (d0, density):
            link_count(d, s.n_in, s.n_out, name=f"density of {s.name}")
    if cfg["init"] == "csti" and d0 < 1.0:
        if calibration is None:
            raise ValueError("init='csti' needs calibration= (a batch of model inputs)")
        calib = _calibration_inputs(model, slots, calibration)
    else:
        calib = {}
    dst.prepare(calib, execution=execution)  # the engine builds masks, parametrizations, state
    from .export import guard_save_pretrained

    guard_save_pretrained(model, dst)
    return dst


def _default_pairs(model, slots, example, percolation: bool) -> list[tuple]:
    from .groups import percolation_pairs

    if example is not None:
        from .dataflow import trace_pairs

        return trace_pairs(model, slots, _as_batch(model, example))
    pairs = percolation_pairs(slots, model)
    covered = {m for r in pairs for m in r[1:3]}
    alone = [s.name for s in slots if s.name not in covered]
    if percolation and alone:
        warnings.warn(
            f"no percolation relation for layers {alone}: without example_inputs= only layer "
            "names are used (q/k, gate/up, v -> o, nn.Sequential chains). Pass example_inputs= "
            "(a small batch) to trace the dataflow, or pairs=", UserWarning, stacklevel=3)
    return pairs


def _warn_steep_cut(dst: DynamicSparseTrainer) -> None:
    if dst.config["schedule"] == "constant":
        return
    cut = dst.steepest_cut()
    if cut is not None and 1.0 - cut[3] / cut[2] > MAX_CUT_FRACTION:
        update, step, before, after = cut
        warnings.warn(
            f"schedule={dst.config['schedule']!r}: update {update} (step {step}) removes "
            f"{100 * (1 - after / before):.0f} % of the remaining links (density {before:.4g} "
            f"-> {after:.4g}), more than {100 * MAX_CUT_FRACTION:.0f} %; a smaller "
            f"update_every (now {dst.update_every}) spreads the decay over more updates",
            UserWarning, stacklevel=3)
