r"""Learning-rate schedules of the paper's Transformer and LLaMA runs: ``noam`` and ``inoam``.

Both are ordinary :class:`torch.optim.lr_scheduler.LRScheduler` objects: build
them on any optimizer and call ``scheduler.step()`` once after every
``optimizer.step()`` (and after ``dst.step()``).

**noam** (Vaswani et al. 2017, scaled so that the peak is the optimizer's own
learning rate :math:`\eta` and reached at step :math:`w`). Step
:math:`s = 1, 2, \dots` (the ``s``-th optimizer step) uses

.. math:: \eta_s = \eta \, \min\!\left(\frac{s}{w}, \sqrt{\frac{w}{s}}\right)

a linear warm-up over the first :math:`w` steps, then decay as
:math:`1/\sqrt{s}`.

**inoam** (paper Tables 5 and 6: "a learning rate scheduler that incorporates
iterative warm-up phases, specifically designed for DST, to allow newly
regrown connections to accumulate momentum"): noam times a short linear
warm-up after every topology update. If the most recent update of the DST
engine happened after :math:`u` optimizer steps, step :math:`s > u` uses

.. math:: \eta_s = \eta \, \min\!\left(\frac{s}{w}, \sqrt{\frac{w}{s}}\right)
          \min\!\left(1, \frac{s - u}{w_i}\right)

with :math:`w_i` the iterative warm-up length (20 steps in the paper); before
the first update the second factor is 1, so a run without updates (``fc``, the
``dense`` preset) follows noam exactly. The scheduler learns about updates by
watching ``dst.update_count``, so it needs no hook in the engine and follows
early stops and any ``update_every``.

Examples
--------
>>> import torch
>>> from netshape.torch import sparsify
>>> from netshape.torch.lr import INoamLR
>>> model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
>>> opt = torch.optim.Adam(model.parameters(), lr=1e-2)
>>> dst = sparsify(model, opt, method="set", density=0.5, total_steps=30, update_every=10, rng=0)
>>> sched = INoamLR(opt, dst, warmup_steps=5, iterative_warmup=4)
>>> lrs = []
>>> for _ in range(14):
...     lrs.append(opt.param_groups[0]["lr"])
...     opt.zero_grad(); model(torch.randn(4, 8)).sum().backward(); opt.step()
...     _ = dst.step(); sched.step()
>>> [round(x / 1e-2, 3) for x in lrs[:6]]       # warm-up to the peak at step 5
[0.2, 0.4, 0.6, 0.8, 1.0, 0.913]
>>> [round(x / 1e-2, 3) for x in lrs[10:14]]    # update after step 10: 1/4, 2/4, 3/4, 4/4
[0.169, 0.323, 0.465, 0.598]
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch.optim.lr_scheduler import LRScheduler

from .._validation import check_positive_int

__all__ = ["INoamLR", "NoamLR", "inoam_factor", "noam_factor"]


def noam_factor(step: int, warmup_steps: int) -> float:
    r"""Noam multiplier :math:`\min(s/w, \sqrt{w/s})` of the ``step``-th step (from 1).

    >>> noam_factor(1, 4), noam_factor(4, 4), noam_factor(16, 4)
    (0.25, 1.0, 0.5)
    """
    s = max(int(step), 1)
    w = int(warmup_steps)
    return min(s / w, math.sqrt(w / s))


def inoam_factor(step: int, warmup_steps: int, last_update: int | None,
                 iterative_warmup: int) -> float:
    r"""inoam multiplier of the ``step``-th step when the last update followed step ``last_update``.

    >>> inoam_factor(12, 4, None, 4), inoam_factor(12, 4, 10, 4)
    (0.5773502691896257, 0.28867513459481287)
    """
    f = noam_factor(step, warmup_steps)
    if last_update is not None:
        f *= min(1.0, (int(step) - int(last_update)) / int(iterative_warmup))
    return f


class NoamLR(LRScheduler):
    """Noam schedule peaking at each group's initial learning rate after ``warmup_steps``.

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
    warmup_steps : int
        Steps of linear warm-up :math:`w`; the peak is the group's ``lr``.
    last_epoch : int
        As in every torch scheduler (``-1``: a fresh run).
    """

    def __init__(self, optimizer: torch.optim.Optimizer, warmup_steps: int,
                 last_epoch: int = -1) -> None:
        self.warmup_steps = check_positive_int(warmup_steps, "warmup_steps")
        super().__init__(optimizer, last_epoch)

    def _factor(self, step: int) -> float:
        return noam_factor(step, self.warmup_steps)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        _restore_group_lrs(self)

    def get_lr(self) -> list[float]:
        # last_epoch = optimizer steps already taken; the coming step is number last_epoch + 1
        f = self._factor(self.last_epoch + 1)
        return [base * f for base in self.base_lrs]


class INoamLR(NoamLR):
    """Noam with a linear warm-up of ``iterative_warmup`` steps after every topology update.

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
    dst : DynamicSparseTrainer or None
        The engine returned by :func:`netshape.torch.sparsify`; ``None`` gives noam.
    warmup_steps : int
        Noam warm-up :math:`w`.
    iterative_warmup : int
        Warm-up :math:`w_i` after each update (the paper uses 20).
    last_epoch : int
        As in every torch scheduler.

    Notes
    -----
    ``state_dict()`` holds the step of the last update, not the engine;
    restore the engine and the scheduler from their own state dicts.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, dst: Any, warmup_steps: int,
                 iterative_warmup: int = 20, last_epoch: int = -1) -> None:
        self.dst = dst
        self.iterative_warmup = check_positive_int(iterative_warmup, "iterative_warmup")
        self.last_update: int | None = None
        self._seen_updates = 0 if dst is None else int(dst.update_count)
        super().__init__(optimizer, warmup_steps, last_epoch)

    def step(self, epoch: None = None) -> None:  # type: ignore[override]
        if epoch is not None:
            raise TypeError("INoamLR.step() takes no epoch: call it once per optimizer step")
        if self.dst is not None and int(self.dst.update_count) != self._seen_updates:
            self._seen_updates = int(self.dst.update_count)
            # the update ran after the step just taken, the (last_epoch + 1)-th
            self.last_update = self.last_epoch + 1
        super().step()

    def _factor(self, step: int) -> float:
        return inoam_factor(step, self.warmup_steps, self.last_update, self.iterative_warmup)

    def state_dict(self) -> dict[str, Any]:
        return {k: v for k, v in super().state_dict().items() if k != "dst"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state_dict = {k: v for k, v in state_dict.items() if k != "dst"}
        super().load_state_dict(state_dict)


def _restore_group_lrs(sched: LRScheduler) -> None:
    # building a scheduler sets every group to the first step's rate; after loading a
    # state the groups must hold the saved one, whichever was loaded first
    for group, lr in zip(sched.optimizer.param_groups, sched.get_last_lr(), strict=True):
        group["lr"] = lr
