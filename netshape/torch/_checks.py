"""Argument checks shared by the adapter's entry points (model, engine, state dicts).

Each raises ``TypeError`` / ``ValueError`` naming the argument before anything
is changed, so a refused call leaves the model and the engine as they were.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

__all__ = ["check_model", "check_state_dict"]

#: keys a :meth:`DynamicSparseTrainer.state_dict` always holds
_STATE_KEYS = ("method", "total_steps", "update_every", "step", "updates", "rng", "itop",
               "masks", "hist", "stats")


def check_model(model: Any, name: str = "model") -> nn.Module:
    """``model`` if it is an ``nn.Module`` whose parameters hold values, else raise."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"{name} must be a torch.nn.Module, got {type(model).__name__}")
    meta = [n for n, p in model.named_parameters() if p.device.type == "meta"]
    if meta:
        raise ValueError(f"{name} has parameters on the meta device, which hold no values "
                         f"({', '.join(meta[:3])}{', ...' if len(meta) > 3 else ''}); "
                         "materialize the weights first (e.g. model.to_empty(device='cpu') "
                         "and load them)")
    return model


def _count(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 0:
        raise ValueError(f"state_dict[{key!r}]={value!r} must be a non-negative integer")
    return int(value)


def check_state_dict(dst, sd: Any) -> None:
    """Check ``sd`` could come from ``dst.state_dict()`` of an engine like ``dst``."""
    if not isinstance(sd, Mapping):
        raise TypeError(f"state_dict must be a dict from DynamicSparseTrainer.state_dict(), "
                        f"got {type(sd).__name__}")
    missing = [k for k in _STATE_KEYS if k not in sd]
    if missing:
        raise ValueError(f"state_dict lacks {', '.join(map(repr, missing))}; it was not "
                         "written by DynamicSparseTrainer.state_dict()")
    _count(sd["step"], "step")
    _count(sd["updates"], "updates")
    for key in ("masks", "hist", "stats", "itop", "rng"):
        if not isinstance(sd[key], Mapping):
            raise TypeError(f"state_dict[{key!r}] must be a dict, got {type(sd[key]).__name__}")
    if sd["rng"].get("bit_generator") != dst._rng.bit_generator.state["bit_generator"]:
        kind = dst._rng.bit_generator.state["bit_generator"]
        raise ValueError(f"state_dict['rng'] is not a {kind} generator state")
    for n, lay in dst._layers.items():
        m = sd["masks"].get(n)
        if m is None:
            continue  # the layer-name check of load_state_dict names the difference
        if not isinstance(m, torch.Tensor) or m.dtype != torch.bool:
            raise TypeError(f"state_dict['masks'][{n!r}] must be a bool tensor, got "
                            f"{getattr(m, 'dtype', type(m).__name__)}")
        want = tuple(lay.mask.shape)
        if tuple(m.shape) != want:
            raise ValueError(f"state_dict['masks'][{n!r}] has shape {tuple(m.shape)}; layer "
                             f"{n!r} needs {want} (out, in)")
        h = sd["hist"].get(n)
        if h is not None and (not isinstance(h, torch.Tensor) or tuple(h.shape) != want):
            raise ValueError(f"state_dict['hist'][{n!r}] must be a tensor of shape {want}")
        if not isinstance(sd["stats"].get(n), Mapping):
            raise TypeError(f"state_dict['stats'][{n!r}] must be a dict")
