"""Engine state of a sparse-executed layer and the masked <-> sparse conversions.

See :mod:`netshape.torch.execution` for the rule that picks a mode. A
:class:`SparseSlot` keeps nothing of size ``out × in`` between topology
updates: its bool mask is rebuilt from the sorted ``indices`` on each read
(the engine reads it only during an update, whose own work is of that
size), and ITOP is tracked as a packed bitset by
:class:`~netshape.metrics.ITOPTracker`. Only historical regrowth keeps a
dense ``hist`` of the removed weights.

A conversion keeps what an ``nn.Linear`` user may rely on: the forward and
backward hooks (the same hook dicts, so existing handles still remove
them), the training flag and ``requires_grad`` of the weight.
"""

from __future__ import annotations

import torch
from torch import nn

from ._layer import _Layer
from ._sparse_linear import SparseLinear
from .masking import _STATE_KEYS, apply_mask, get_original

__all__ = ["SparseSlot", "to_masked", "to_sparse"]

#: per-instance hook dicts of nn.Module carried over by a conversion
_HOOK_DICTS = ("_forward_hooks", "_forward_hooks_with_kwargs", "_forward_hooks_always_called",
               "_forward_pre_hooks", "_forward_pre_hooks_with_kwargs", "_backward_hooks",
               "_backward_pre_hooks")


def _carry_module_state(old: nn.Module, new: nn.Module) -> None:
    for key in _HOOK_DICTS:
        if key in old.__dict__:
            new.__dict__[key] = old.__dict__[key]
    if "_is_full_backward_hook" in old.__dict__:
        new._is_full_backward_hook = old._is_full_backward_hook
    new.train(old.training)


class SparseSlot(_Layer):
    """Engine state of a slot run by a :class:`SparseLinear` (same interface as masked)."""

    def __init__(self, slot, module: SparseLinear) -> None:
        self.module = module
        super().__init__(slot, module, module.values)

    @property
    def mask(self) -> torch.Tensor:
        """A new bool mask ``(out, in)`` from the indices (nothing dense is kept; see above)."""
        return self.module.dense_mask()

    @property
    def weight(self) -> torch.Tensor:
        return self.module.dense_weight()

    def links(self) -> int:
        return int(self.module.values.numel())

    def grad(self) -> torch.Tensor | None:
        if self.module.dense_grad is not None:
            return self.module.dense_grad
        g = self.module.values.grad
        if g is None:
            return None
        out = torch.zeros(self.module.out_features * self.module.in_features, dtype=g.dtype,
                          device=g.device)
        out[self.module.indices] = g
        return out.view(self.module.shape)

    def enforce_mask(self) -> None:
        """Nothing to do: a missing link has no weight to drift."""

    def restore_mask(self, mask: torch.Tensor) -> None:
        current = self.mask
        if not torch.equal(mask.to(current.device), current):
            raise ValueError(f"layer {self.slot.name!r}: the dst state_dict's mask differs from "
                             "the model's links; load model.state_dict() first")

    @torch.no_grad()
    def rewire(self, optimizer, rem, reg, new: torch.Tensor, historical: bool) -> None:
        """Re-index values and optimizer state to the links of ``new`` (see the module doc)."""
        mod = self.module
        old_idx, vals = mod.indices, mod.values
        if historical:
            if self.hist is None:
                self.hist = torch.zeros(mod.shape, dtype=vals.dtype, device=vals.device)
            self.hist.view(-1)[rem] = self.weight.view(-1)[rem]
        new_idx = torch.nonzero(new.reshape(-1)).reshape(-1).to(old_idx.device)
        pos = torch.searchsorted(old_idx, new_idx).clamp_(max=max(old_idx.numel() - 1, 0))
        kept = old_idx[pos] == new_idx if old_idx.numel() else torch.zeros_like(new_idx,
                                                                               dtype=torch.bool)
        if reg.numel():
            kept &= ~torch.isin(new_idx, reg.to(new_idx.device))
        src, dst = pos[kept], torch.nonzero(kept).reshape(-1)

        def moved(t: torch.Tensor, fill: torch.Tensor | None = None) -> torch.Tensor:
            out = torch.zeros(new_idx.numel(), dtype=t.dtype, device=t.device)
            if fill is not None:
                out.copy_(fill)
            out[dst] = t[src]
            return out

        fresh = self.hist.view(-1)[new_idx] if self.hist is not None else None
        new_vals = moved(vals.data, fresh)
        state = optimizer.state.get(vals, {})
        for key in _STATE_KEYS:
            buf = state.get(key)
            if isinstance(buf, torch.Tensor) and buf.shape == vals.shape:
                state[key] = _assign(buf, moved(buf))
        grad = None if vals.grad is None else moved(vals.grad)
        if vals.shape == new_vals.shape:
            vals.copy_(new_vals)
            if grad is not None:
                vals.grad.copy_(grad)
        else:
            # a new Parameter: autograd caches a leaf's shape while an old graph is alive
            fresh_param = nn.Parameter(new_vals, requires_grad=vals.requires_grad)
            fresh_param.grad = grad
            _swap_param(optimizer, vals, fresh_param, lambda t: t)
            mod.values = fresh_param
            self.param = fresh_param
        mod.set_indices(new_idx)


def _assign(cur: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
    # same size: write in place, so DDP buckets and optimizer references stay valid
    if cur.shape == new.shape:
        cur.copy_(new)
        return cur
    return new


def _swap_param(optimizer, old: nn.Parameter, new: nn.Parameter, convert) -> None:
    """Put ``new`` where ``old`` was in ``optimizer``; per-element state through ``convert``."""
    for group in optimizer.param_groups:
        for i, p in enumerate(group["params"]):
            if p is old:
                group["params"][i] = new
    state = optimizer.state.pop(old, None)
    if state:
        optimizer.state[new] = {k: (convert(v) if isinstance(v, torch.Tensor)
                                    and v.shape == old.shape and k in _STATE_KEYS else v)
                                for k, v in state.items()}


def _set_module(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, leaf, module)


def to_sparse(lay, model: nn.Module, optimizer):
    """The sparse-execution record of masked layer ``lay`` (weights, optimizer state kept).

    Swaps the module in ``model`` and the parameter in ``optimizer``; the
    engine keeps the returned record in place of ``lay``.
    """
    mod, slot = lay.slot.module, lay.slot
    mask = lay.mask.clone()
    original = get_original(mod, "weight")
    lin = nn.Linear(mod.in_features, mod.out_features, bias=mod.bias is not None,
                    device="meta")
    lin.weight = original
    lin.bias = mod.bias
    sp = SparseLinear.from_dense(lin, mask)
    sp.values.requires_grad_(original.requires_grad)
    _carry_module_state(mod, sp)
    if mod.bias is not None:
        sp.bias = mod.bias  # the same Parameter: the optimizer keeps it
    idx = sp.indices
    _swap_param(optimizer, original, sp.values, lambda t: t.reshape(-1)[idx].clone())
    sp.to(original.device)
    _set_module(model, slot.name, sp)
    slot.module = sp
    new = SparseSlot(slot, sp)
    new.hist, new.stats = lay.hist, lay.stats
    new.execution = "sparse"
    return new


def to_masked(lay, model: nn.Module, optimizer):
    """The masked-execution record of sparse layer ``lay`` (the inverse of :func:`to_sparse`)."""
    sp, slot = lay.module, lay.slot
    mask = lay.mask.clone()
    lin = sp.to_linear()
    if sp.bias is not None:
        lin.bias = sp.bias
    lin.weight.requires_grad_(sp.values.requires_grad)
    _carry_module_state(sp, lin)
    pm = apply_mask(lin, mask)
    original = get_original(lin, "weight")
    idx = sp.indices

    def scatter(t: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(original.numel(), dtype=t.dtype, device=t.device)
        out[idx] = t
        return out.view(original.shape)

    _swap_param(optimizer, sp.values, original, scatter)
    _set_module(model, slot.name, lin)
    slot.module = lin
    new = _Layer(slot, pm, original)
    new.hist, new.stats = lay.hist, lay.stats
    new.execution = "masked"
    return new


