"""Engine state of one sparsified slot in masked execution: :class:`_Layer`.

The trainer (:class:`~netshape.torch.engine.DynamicSparseTrainer`) keeps one
per slot: the slot's rows of the mask, weight and gradient inside its
(possibly packed) parameter, the per-layer stats and the historical weights
of ``new_weights="historical"``. A sparse-executed slot is a subclass
(:class:`~netshape.torch._sparse_slot.SparseSlot`) with the same interface.
"""

from __future__ import annotations

import torch
from torch import nn

from .groups import Slot
from .masking import Mask, reset_optimizer_state

__all__ = ["STAT_KEYS", "_Layer"]

#: keys of every per-layer dict in :meth:`netshape.torch.engine.DynamicSparseTrainer.stats`
STAT_KEYS = ("density", "links", "target_links", "removed", "regrown", "overlap", "itop", "anp",
             "shortfall", "seconds", "updates")


class _Layer:
    """Engine state of one slot."""

    def __init__(self, slot: Slot, pm: Mask, param: nn.Parameter) -> None:
        self.slot, self.pm, self.param = slot, pm, param
        r = slot.rows
        self.rows = r if r is not None else slice(None)
        self.hist: torch.Tensor | None = None
        self.stats = {k: 0 for k in STAT_KEYS}
        self.stats["seconds"] = 0.0
        self.stats["anp"] = self.anp()

    def anp(self) -> float:
        """Fraction of this slot's neurons (inputs and outputs) with a link."""
        # = netshape.metrics.anp({name: mask.T}) for one layer (tested), without a host copy
        m = self.mask
        active = int(m.any(dim=0).sum()) + int(m.any(dim=1).sum())
        return active / (m.shape[0] + m.shape[1])

    def float_mask(self) -> torch.Tensor:
        return self.pm.float_mask(self.param.dtype)[self.rows]

    @property
    def offset(self) -> int:
        """Flat offset of this slot's rows inside the (possibly packed) parameter."""
        return (self.rows.start or 0) * self.slot.n_in

    @property
    def mask(self) -> torch.Tensor:
        return self.pm.mask[self.rows]

    @property
    def weight(self) -> torch.Tensor:
        return self.param.data[self.rows]

    def grad(self) -> torch.Tensor | None:
        g = self.pm.dense_grad
        if g is None:
            g = self.param.grad
        return None if g is None else g[self.rows]

    #: "masked" or "sparse" (see :mod:`netshape.torch.execution`)
    execution = "masked"
    execution_reason = "execution='masked'"

    def links(self) -> int:
        return int(self.mask.sum())

    def enforce_mask(self) -> None:
        """Zero the weights off the mask."""
        self.weight.mul_(self.float_mask())

    def restore_mask(self, mask: torch.Tensor) -> None:
        self.mask.copy_(mask)
        self.weight.mul_(self.mask.to(self.weight.dtype))

    def rewire(self, optimizer, rem, reg, new: torch.Tensor, historical: bool) -> None:
        """Write the new mask: removed weights 0, regrown ones new (historical or 0), state 0."""
        W = self.weight.view(-1)  # a slot's rows are contiguous: a view, writes go through
        if historical:
            if self.hist is None:
                self.hist = torch.zeros_like(self.weight)
            self.hist.view(-1)[rem] = W[rem]
        self.mask.copy_(new)
        W[rem] = 0
        # under "restart", a link removed and regrown in one update restarts too
        W[reg] = self.hist.view(-1)[reg] if self.hist is not None else 0
        reset_optimizer_state(optimizer, self.param, torch.cat([rem, reg]) + self.offset)
