"""The dynamic-sparse-training engine, :class:`DynamicSparseTrainer` (built by :func:`sparsify`).

Each topology update, per sparsified layer (slot): prune to the scheduled
density (decaying schedules) -> remove a fraction ``zeta`` -> percolation
over all slots -> regrowth to exactly the scheduled link count -> new
weights set (zero or historical) -> masks and optimizer state updated.

The per-slot state lives in :mod:`netshape.torch._layer`, the schedules in
:mod:`netshape.torch._schedule`, checkpoints and snapshots in
:mod:`netshape.torch.persist`.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from typing import Any

import numpy as np
import torch

from .._random import as_rng
from .._validation import link_count
from ..metrics import overlap_rate
from ..sampling import choose_links, torch_generator
from . import distributed as ddp
from ._layer import STAT_KEYS, _Layer
from ._schedule import ScheduleMixin
from .components import initial_mask, keep_scores, regrowth_scores, uniform_missing
from .groups import Slot, percolation_pairs
from .masking import apply_mask, get_original, to_biadjacency
from .persist import PersistenceMixin

__all__ = ["DynamicSparseTrainer", "STAT_KEYS"]


class DynamicSparseTrainer(ScheduleMixin, PersistenceMixin):
    """Runs dynamic sparse training on a model; build it with :func:`sparsify`
    (which validates, constructs, then calls :meth:`prepare`).

    Attributes
    ----------
    config : dict
        The resolved method components (see :data:`netshape.torch.PRESETS`).
    step_count, update_count : int
        ``dst.step()`` calls so far, topology updates so far.
    """

    def __init__(self, model, optimizer, cfg, *, density, total_steps, update_every, rng,
                 slots, snapshot_dir=None, snapshot_every=None, pairs=None):
        self.model, self.optimizer, self.config = model, optimizer, cfg
        self.density, self.total_steps, self.update_every = density, total_steps, update_every
        self._rng = as_rng(rng)
        self.snapshot_dir, self.snapshot_every = snapshot_dir, snapshot_every
        self.step_count = 0
        self.update_count = 0
        #: True once CHT's topological early stop fired (``early_stop`` option)
        self.stopped = False
        self._layers: OrderedDict[str, _Layer] = OrderedDict()
        self._pairs = pairs
        self._slots = slots
        self._execution = "masked"
        from ..metrics import ITOPTracker

        self._itop = ITOPTracker()

    @torch.no_grad()
    def prepare(self, calibration: dict[str, torch.Tensor] | None = None,
                execution: str = "masked") -> None:
        """Draw the initial masks, mask the model's weights and start tracking them.

        The second half of construction (as ``prepare()`` in
        :mod:`torch.ao.pruning`): :func:`sparsify` validates everything, builds
        the trainer, then calls this once. ``calibration`` maps slot names to
        their input activations (``init='csti'``). Each slot's mask comes from
        its own seed drawn from the trainer's ``rng``; slots that share a
        parameter (row blocks of a packed weight) share one parametrization.
        Under ``torch.distributed`` rank 0's masks and random stream are broadcast.
        ``execution`` picks how each layer runs (:mod:`netshape.torch.execution`).
        """
        calibration = calibration or {}
        slots, d0 = self._slots, self.density_at(0)
        seeds = self._rng.integers(0, 2**63 - 1, size=len(slots))
        by_param: dict[tuple[int, str], list[tuple[Slot, torch.Tensor]]] = {}
        for s, seed in zip(slots, seeds, strict=True):
            w = getattr(s.module, s.param)
            m = initial_mask(self.config, s.n_in, s.n_out, d0, int(seed), calibration.get(s.name),
                             w.device)
            by_param.setdefault((id(s.module), s.param), []).append((s, m))
        layers: dict[str, _Layer] = {}
        for entries in by_param.values():
            s0 = entries[0][0]
            full = torch.zeros_like(getattr(s0.module, s0.param), dtype=torch.bool)
            for s, m in entries:
                full[s.rows if s.rows is not None else slice(None)] = m
            pm = apply_mask(s0.module, full, s0.param)
            for s, _ in entries:
                layers[s.name] = _Layer(s, pm, get_original(s.module, s.param))
        self._layers = OrderedDict((s.name, layers[s.name]) for s in slots)
        if ddp.is_distributed():  # rank 0's initial topology and random stream are everyone's
            self._rng.bit_generator.state = ddp.broadcast_object(self._rng.bit_generator.state)
            pms = list({id(lay.pm): lay.pm for lay in self._layers.values()}.values())
            ddp.broadcast_bool([pm.mask for pm in pms])
            for lay in self._layers.values():
                lay.weight.mul_(lay.mask.to(lay.weight.dtype))
        for lay in self._layers.values():
            lay.stats["target_links"] = int(lay.mask.sum())
        from . import execution as _execution

        _execution.clear_masked_state(self.optimizer, self._layers.values())
        self._set_execution(execution)
        self._track_itop()
        self._arm_capture()

    def _set_execution(self, execution: str) -> None:
        """Pick each layer's mode (:func:`~netshape.torch.execution.choose`), convert it."""
        self._execution = execution
        if self._pairs is None and self._slots:
            # inferred from the module types now: a SparseLinear is not an nn.Linear
            self._pairs = percolation_pairs(self._slots)
        self._reselect(force=True)

    def _reselect(self, force: bool = False) -> None:
        """Re-apply the execution rule to every layer (densities move under decay).

        Under ``torch.distributed`` only the initial choice is made: swapping a
        parameter would invalidate the DDP reducer's buckets.
        """
        from . import execution as _execution

        if not force and (self._execution != "auto" or ddp.is_distributed()):
            return
        decaying = self.config["schedule"] != "constant"
        for name, lay in list(self._layers.items()):
            self._layers[name] = _execution.reselected(lay, self._execution, decaying,
                                                       self.model, self.optimizer)

    @torch.no_grad()
    def _adopt_topology(self, masks: dict[str, torch.Tensor], weights: dict[int, torch.Tensor],
                        step: int, updates: int, execution: str) -> None:
        """Continue from saved masks (:func:`~netshape.torch.load_sparse` calls this).

        ``masks`` maps every layer name to its ``(out, in)`` mask, ``weights``
        the ``id`` of each parameter to its loaded values; the layers are
        written in masked mode, then converted to ``execution``.
        """
        for n, lay in self._layers.items():
            lay.mask.copy_(masks[n].to(lay.mask.device))
            lay.weight.copy_(weights[id(lay.param)][lay.rows] * lay.mask.to(lay.weight.dtype))
            lay.stats["target_links"] = int(lay.mask.sum())
            lay.stats["anp"] = lay.anp()
        self.step_count, self.update_count = int(step), int(updates)
        self._set_execution(execution)
        from ..metrics import ITOPTracker

        self._itop = ITOPTracker()
        self._track_itop()
        self._arm_capture()

    def _track_itop(self) -> None:
        self._itop.update(OrderedDict((n, to_biadjacency(lay.mask))
                                      for n, lay in self._layers.items()))

    def _is_update(self, step: int) -> bool:
        if not self._layers or step <= 0 or step >= self.total_steps:
            return False
        if step % self.update_every:
            return False
        return not self.stopped and step <= self.config["update_until"] * self.total_steps

    def _remask_needed(self) -> bool:
        from .execution import remask_needed

        return remask_needed(self.optimizer, self._layers.values(),
                             getattr(self, "always_remask", False))

    def _needs_grad(self) -> bool:
        c = self.config
        return (c["regrowth"].startswith("gradient") or "magnitude_gradient" in
                (c["removal"], c["prune"] if c["schedule"] != "constant" else ""))

    def _arm_capture(self) -> None:
        on = self._needs_grad() and self._is_update(self.step_count + 1)
        for lay in self._layers.values():
            lay.pm.capture = on
            lay.pm.dense_grad = None

    # ------------------------------------------------------------------ public API
    def replaces_optimizer_step(self) -> bool:
        """True when the coming :meth:`step` is a topology update that replaces the
        optimizer step of this iteration (option ``update_replaces_step``, RigL).

        Ask before ``optimizer.step()``::

            loss.backward()
            if not dst.replaces_optimizer_step():
                optimizer.step()
            dst.step()
        """
        return bool(self.config["update_replaces_step"]) and self._is_update(self.step_count + 1)

    @property
    def pairs(self) -> list[tuple]:
        """Percolation relations, as ``sparsify(pairs=)`` and ``netshape.percolate`` take them."""
        return list(self._pairs) if self._pairs is not None else percolation_pairs(self._slots)

    @property
    def masks(self) -> OrderedDict[str, torch.Tensor]:
        """Layer name -> bool mask shaped like the weight ``(out, in)`` (= ``A.T``)."""
        return OrderedDict((n, lay.mask) for n, lay in self._layers.items())

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per layer: density, links, target_links, removed, regrown (last update),
        overlap (|removed ∩ regrown| / |regrown|), itop (union of masks / size),
        anp (fraction of the layer's neurons with a link), shortfall (regrown
        links filled uniformly for lack of positive scores), seconds (total in
        topology updates), updates; and execution (``"masked"`` or ``"sparse"``)
        with execution_reason (why, see :mod:`netshape.torch.execution`)."""
        out = {}
        rates = self._itop.rates if self._layers else {}
        for n, lay in self._layers.items():
            s = dict(lay.stats)
            s["links"] = lay.links()
            s["density"] = s["links"] / (lay.slot.n_in * lay.slot.n_out)
            s["itop"] = rates[n]
            s["execution"], s["execution_reason"] = lay.execution, lay.execution_reason
            out[n] = s
        return out

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (after ``model.load_state_dict``); checks it matches.

        A state that does not fit this engine is refused before anything changes.
        """
        from ._checks import check_state_dict

        check_state_dict(self, sd)
        super().load_state_dict(sd)

    @torch.no_grad()
    def step(self) -> bool:
        """Call after ``optimizer.step()``; returns True when the topology changed."""
        self.step_count += 1
        if self._remask_needed():
            for lay in self._layers.values():
                lay.enforce_mask()
        changed = False
        if self._is_update(self.step_count):
            changed = self._update()
            self._reselect()  # "auto": a decaying density may cross the threshold
        self._arm_capture()
        return changed

    # ------------------------------------------------------------------ the update
    def _update(self) -> bool:
        t0 = time.perf_counter()
        c, step = self.config, self.step_count
        target_density = self.density_at(step)
        old = {n: lay.mask.clone() for n, lay in self._layers.items()}
        names = list(self._layers)
        # each layer is computed by its owner rank (all rank 0 unless shard=True) and broadcast
        world, me = ddp.world_size(), ddp.rank()
        owner = {n: (i % world if c["shard"] else 0) for i, n in enumerate(names)}
        pruned = {n: torch.empty_like(m) for n, m in old.items()}
        new = {n: torch.empty_like(m) for n, m in old.items()}
        shortfall = [0] * len(names)
        timing = [0.0] * len(names)
        if ddp.is_distributed() and self._needs_grad():
            for lay in self._layers.values():
                if lay.pm.dense_grad is not None:
                    lay.pm.dense_grad = ddp.all_reduce_mean(lay.pm.dense_grad)
        zeta, delta = self.zeta_at(step), self.delta_at(step)
        # every rank draws the same streams (the rng is synchronised at sparsify time)
        gens = {n: torch_generator(self._rng, lay.mask.device) for n, lay in self._layers.items()}
        for i, (n, lay) in enumerate(self._layers.items()):
            if owner[n] == me:
                ts = time.perf_counter()
                pruned[n], _ = self._remove(lay, old[n], target_density, zeta, delta, gens[n])
                timing[i] += time.perf_counter() - ts
        self._share(pruned, owner, world)
        counts = {n: int(m.sum()) for n, m in pruned.items()}
        if c["percolation"] and names:  # deterministic: every rank gets the same result
            counts.update(self._percolate(pruned))
        for i, (n, lay) in enumerate(self._layers.items()):
            if owner[n] == me:
                ts = time.perf_counter()
                new[n], shortfall[i] = self._regrow(lay, pruned[n], counts[n], target_density,
                                                    gens[n])
                timing[i] += time.perf_counter() - ts
        self._share(new, owner, world)
        shortfall = ddp.all_reduce_ints(shortfall)
        changed = False
        for i, (n, lay) in enumerate(self._layers.items()):
            changed |= self._apply(lay, old[n], pruned[n], new[n])
            lay.stats["target_links"] = self._target(lay, target_density)
            lay.stats["shortfall"] = shortfall[i]
            lay.stats["seconds"] += timing[i]
            lay.stats["updates"] += 1
        self._track_itop()
        self.update_count += 1
        theta = c["early_stop"]
        regrown = sum(lay.stats["regrown"] for lay in self._layers.values())
        if theta is not None and regrown:
            both = sum(lay.stats["overlap"] * lay.stats["regrown"] for lay in self._layers.values())
            self.stopped = both / regrown >= theta - 1e-12
        if self.snapshot_dir is not None and self.update_count % self.snapshot_every == 0:
            self.save_snapshot()
        rest = time.perf_counter() - t0 - sum(timing)
        for lay in self._layers.values():  # share apply/percolation time evenly
            lay.stats["seconds"] += rest / len(self._layers)
        return changed

    @staticmethod
    def _share(masks: dict[str, torch.Tensor], owner: dict[str, int], world: int) -> None:
        for src in range(world if ddp.is_distributed() else 0):
            ddp.broadcast_bool([m for n, m in masks.items() if owner[n] == src], src=src)

    def _target(self, lay: _Layer, density: float) -> int:
        s = lay.slot
        return link_count(density, s.n_in, s.n_out, name=f"density of {s.name}")

    def _remove(self, lay, old, density, zeta, delta, gen) -> tuple[torch.Tensor, int]:
        """Prune to the scheduled count, then remove ``floor(zeta * links)``; (mask, links)."""
        c = self.config
        idx = torch.nonzero(old.reshape(-1)).reshape(-1)
        target = self._target(lay, density)
        W, grad = lay.weight, lay.grad()
        if not bool(torch.isfinite(W.reshape(-1)[idx]).all()):
            raise ValueError(f"the weight of layer {lay.slot.name!r} holds NaN or inf at step "
                             f"{self.step_count}; a topology update ranks links by weight, "
                             "so training has diverged (lower the learning rate)")
        touched = False
        if idx.numel() > target:  # gradual schedules: hard prune to the new density first
            if c["prune"] == "magnitude_historical" and lay.hist is not None:
                # GMP: pruned weights compete with their historical magnitude and may return
                back = torch.nonzero(((lay.hist != 0) & ~old).reshape(-1)).reshape(-1)
                s = torch.cat([W.reshape(-1)[idx].abs(), lay.hist.reshape(-1)[back].abs()])
                idx = torch.cat([idx, back])[self._pick(s, target, False, gen)]
            else:
                s, _ = keep_scores(c["prune"], W, grad, idx, alpha=0.0, delta=0.5)
                idx = idx[self._pick(s, target, False, gen)]
            touched = True
        n_remove = int(math.floor(zeta * min(idx.numel(), target)))
        if c["removal"] != "none" and n_remove > 0:
            s, soft = keep_scores(c["removal"], W, grad, idx, alpha=c["alpha"], delta=delta)
            idx = idx[self._pick(s, idx.numel() - n_remove, soft, gen)]
            touched = True
        if not touched:
            return old.clone(), idx.numel()
        out = torch.zeros_like(old)
        out.view(-1)[idx] = True
        return out, idx.numel()

    @staticmethod
    def _pick(scores, k, soft, gen) -> torch.Tensor:
        allowed = torch.ones(scores.shape, dtype=torch.bool, device=scores.device)
        pos, _ = choose_links(scores, k, allowed=allowed, soft=soft, rng=gen)
        return pos

    def _percolate(self, pruned: dict[str, torch.Tensor]) -> dict[str, int]:
        """Percolate all slots together (:func:`netshape.percolate`); returns links per slot."""
        from ..percolation import percolate

        pairs = self.pairs
        layers = OrderedDict((n, to_biadjacency(m)) for n, m in pruned.items())
        result, report = percolate(layers, pairs=pairs)
        counts = {}
        for n, m in pruned.items():
            A = result[n]
            counts[n] = int(A.nnz)
            if report.layers[n].links_removed == 0:
                continue
            coo = A.tocoo()
            flat = torch.from_numpy(coo.col.astype(np.int64) * A.shape[0] + coo.row)
            m.zero_()
            m.view(-1)[flat.to(m.device)] = True
        return counts

    def _regrow(self, lay, pruned, links, density, gen) -> tuple[torch.Tensor, int]:
        c = self.config
        need = self._target(lay, density) - links
        if need <= 0 or c["regrowth"] == "none":
            return pruned, 0
        scores = regrowth_scores(c["regrowth"], pruned, lay.grad(), lay.weight.dtype)
        if scores is None:  # SET: uniform among the missing links
            idx, short = uniform_missing(pruned, need, gen), 0
        else:
            idx, short = choose_links(scores, need, allowed=~pruned,
                                      soft=c["regrowth"].endswith("_soft"),
                                      temperature=self.temperature_at(self.step_count),
                                      rng=gen)
        out = pruned.clone()
        out.view(-1)[idx] = True
        return out, int(short)

    def _apply(self, lay: _Layer, old, pruned, new) -> bool:
        rem = torch.nonzero((old & ~pruned).reshape(-1)).reshape(-1)
        # regrown: in the new mask but not kept throughout (pruned may revive links: GMP)
        reg = torch.nonzero((new & ~(pruned & old)).reshape(-1)).reshape(-1)
        lay.stats["removed"] = int(rem.numel())
        lay.stats["regrown"] = int(reg.numel())
        lay.stats["overlap"] = overlap_rate(rem.cpu().numpy(), reg.cpu().numpy())
        if self.config["reregrown"] == "keep":
            # a link removed and regrown in one update was never gone: only the
            # difference between the old and the new mask changes (pruned is inside new)
            rem = torch.nonzero((old & ~new).reshape(-1)).reshape(-1)
            reg = torch.nonzero((new & ~old).reshape(-1)).reshape(-1)
        lay.rewire(self.optimizer, rem, reg, new, self.config["new_weights"] == "historical")
        lay.stats["anp"] = lay.anp()
        return bool(rem.numel() or reg.numel())
