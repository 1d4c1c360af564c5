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
from . import distributed as ddp
from .components import initial_mask
from .engine import DynamicSparseTrainer, _Layer
from .groups import Slot, find_slots
from .masking import apply_mask, get_original, is_masked

__all__ = ["MAX_CUT_FRACTION", "sparsify"]

#: a decaying schedule whose single update removes more than this fraction of the
#: remaining links gets a warning from :func:`sparsify` (too few updates for the decay)
MAX_CUT_FRACTION = 0.5


def _calibration_inputs(model, slots, calibration) -> dict[str, torch.Tensor]:
    """Input activations of each slot's module on the calibration batch (for CSTI)."""
    seen: dict[int, torch.Tensor] = {}
    hooks = []
    for key, mod in {id(s.module): s.module for s in slots}.items():
        def hook(m, args, kwargs, _id=key):
            x = args[0] if args else next(iter(kwargs.values()))
            seen.setdefault(_id, x.detach())
        hooks.append(mod.register_forward_pre_hook(hook, with_kwargs=True))
    if not isinstance(calibration, (dict, tuple, list, torch.Tensor)):
        # e.g. a numpy batch: as a tensor of the model's dtype on its device
        p = next(model.parameters())
        calibration = torch.as_tensor(np.asarray(calibration), device=p.device)
        if calibration.is_floating_point():
            calibration = calibration.to(p.dtype)
    try:
        with torch.no_grad():
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
             density: float = 0.01, total_steps: int = 1, update_every: int = 100, rng=None,
             include=None, exclude=None, calibration=None, snapshot_dir=None,
             snapshot_every=None, pairs=None, execution: str = "auto",
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
        A preset of :data:`netshape.torch.PRESETS`: ``set``, ``rigl``, ``mest``,
        ``gmp``, ``granet``, ``cht``, ``chts``, ``chtss`` or ``dense`` (no-op).
    density : float in (0, 1)
        Target (final) fraction of links kept in each sparsified layer.
    total_steps : int
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
        Percolation relations for :func:`netshape.percolate`; default from layer names.
    execution : {"auto", "masked", "sparse"}
        How sparsified layers run (:mod:`netshape.torch.execution`): ``masked``
        (dense weight times mask), ``sparse`` (an ``nn.Linear`` becomes a
        :class:`~netshape.torch.sparse_linear.SparseLinear` that stores only
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
    from .methods import resolve_method

    cfg = resolve_method(method, overrides)
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
    if cfg["method"] == "dense":
        return DynamicSparseTrainer(model, optimizer, cfg, density=1.0, total_steps=total_steps,
                                    update_every=update_every, rng=rng, slots=[])
    density = check_density(density, "density", allow_one=False)
    if cfg["regrowth"] == "none" and (cfg["removal"] != "none" or cfg["percolation"]):
        raise ValueError("regrowth='none' needs removal='none' and percolation=False, "
                         "otherwise layers would fall below their scheduled link count")
    slots = find_slots(model, include, exclude)
    _execution.check(slots, execution, cfg["schedule"] != "constant")
    owned = {id(p) for g in optimizer.param_groups for p in g["params"]}
    for s in slots:
        if is_masked(s.module, s.param):
            raise ValueError(f"layer {s.name!r} is already sparsified")
        if id(getattr(s.module, s.param)) not in owned:
            raise ValueError(f"optimizer does not hold the weight of layer {s.name!r} "
                             f"({s.param}); create the optimizer from model.parameters() "
                             "before calling sparsify()")
    if pairs is not None:  # bad names or shapes fail now, not at the first update
        import scipy.sparse as sp

        from ..percolation import percolate

        percolate(OrderedDict((s.name, sp.csr_array((s.n_in, s.n_out), dtype=bool))
                              for s in slots), pairs=pairs)
    dst = DynamicSparseTrainer(model, optimizer, cfg, density=density, total_steps=total_steps,
                               update_every=update_every, rng=rng, slots=slots,
                               snapshot_dir=snapshot_dir, snapshot_every=snapshot_every,
                               pairs=pairs)
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
    seeds = dst._rng.integers(0, 2**63 - 1, size=len(slots))
    by_param: dict[tuple[int, str], list[tuple[Slot, torch.Tensor]]] = {}
    for s, seed in zip(slots, seeds, strict=True):
        w = getattr(s.module, s.param)
        m = initial_mask(cfg, s.n_in, s.n_out, d0, int(seed), calib.get(s.name), w.device)
        by_param.setdefault((id(s.module), s.param), []).append((s, m))
    for entries in by_param.values():
        s0 = entries[0][0]
        full = torch.zeros_like(getattr(s0.module, s0.param), dtype=torch.bool)
        for s, m in entries:
            full[s.rows if s.rows is not None else slice(None)] = m
        pm = apply_mask(s0.module, full, s0.param)
        for s, _ in entries:
            dst._layers[s.name] = _Layer(s, pm, get_original(s.module, s.param))
    dst._layers = OrderedDict((s.name, dst._layers[s.name]) for s in slots)
    if ddp.is_distributed():  # rank 0's initial topology and random stream are everyone's
        dst._rng.bit_generator.state = ddp.broadcast_object(dst._rng.bit_generator.state)
        pms = list({id(lay.pm): lay.pm for lay in dst._layers.values()}.values())
        ddp.broadcast_bool([pm.mask for pm in pms])
        with torch.no_grad():
            for lay in dst._layers.values():
                lay.weight.mul_(lay.mask.to(lay.weight.dtype))
    for lay in dst._layers.values():
        lay.stats["target_links"] = int(lay.mask.sum())
    _execution.clear_masked_state(dst)
    _execution.configure(dst, execution)
    dst._track_itop()
    dst._arm_capture()
    return dst


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
