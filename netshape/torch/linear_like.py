"""Linear layers that are not ``nn.Linear``: Hugging Face ``Conv1D`` and packed projections.

``Conv1D`` (GPT-2, GPT-1) computes ``x @ W + b`` with ``W`` stored
``(in, out)``. :func:`linearize_conv1d` turns each one into a
:class:`Conv1DLinear`, an ``nn.Linear`` that holds the *same* parameter
objects, the weight transposed in place to ``(out, in)`` (the optimizer
keeps working, its per-element state is transposed with it). The forward
pass is unchanged: ``F.linear(x, W.T, b) = x @ W + b``. Export
(:mod:`netshape.torch.export`) writes ``Conv1D`` weights back in their own
orientation.

A *packed* projection computes several projections in one ``nn.Linear``
(a ViT-style ``qkv = nn.Linear(d, 3 * d)``, GPT-2's ``c_attn``): its output
rows are split into slots, as ``nn.MultiheadAttention.in_proj_weight`` is,
each with its own mask rows, density and link prediction. Declare them with
``sparsify(..., packed={"blocks.*.attn.qkv": ("q", "k", "v")})`` (equal
parts) or ``{"...": {"q": 64, "k": 16, "v": 16}}`` (sizes in rows, for GQA);
GPT-2's ``c_attn`` (``nf = 3 * split_size``) is split into ``q, k, v``
without being declared.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence

import torch
from torch import nn

__all__ = ["Conv1DLinear", "is_conv1d", "linearize_conv1d", "packed_parts"]


def is_conv1d(mod: nn.Module) -> bool:
    """True for a Hugging Face ``Conv1D`` (weight ``(in, out)``, attribute ``nf``)."""
    return (type(mod).__name__ == "Conv1D" and type(mod).__module__.startswith("transformers")
            and isinstance(getattr(mod, "weight", None), torch.Tensor) and hasattr(mod, "nf"))


class Conv1DLinear(nn.Linear):
    """An ``nn.Linear`` made from a Hugging Face ``Conv1D``, sharing its parameters.

    ``conv1d_class`` remembers the original class, so that export can rebuild it.
    """

    def __init__(self, conv: nn.Module) -> None:
        nn.Module.__init__(self)
        n_in, n_out = conv.weight.shape
        self.in_features, self.out_features = int(n_in), int(n_out)
        with torch.no_grad():
            conv.weight.data = conv.weight.data.t().contiguous()  # same Parameter object
        self.weight = conv.weight
        self.bias = conv.bias
        self.conv1d_class = type(conv)

    def to_conv1d(self) -> nn.Module:
        """A fresh ``Conv1D`` with this layer's (dense) weight and bias, weight ``(in, out)``."""
        conv = self.conv1d_class(self.out_features, self.in_features)
        with torch.no_grad():
            conv.weight.copy_(self.weight.detach().t())
            if self.bias is not None:
                conv.bias.copy_(self.bias.detach())
        return conv.to(self.weight.device, self.weight.dtype)


def linearize_conv1d(model: nn.Module, optimizer: torch.optim.Optimizer | None = None
                     ) -> list[str]:
    """Replace every Hugging Face ``Conv1D`` of ``model`` by a :class:`Conv1DLinear`; names.

    The parameter objects are kept, so ``optimizer`` still holds them; its
    per-element state (momentum, Adam moments) is transposed with the weight.
    """
    done = []
    for name, mod in list(model.named_modules()):
        if not is_conv1d(mod):
            continue
        w = mod.weight
        shape = tuple(w.shape)
        lin = Conv1DLinear(mod)
        if optimizer is not None:
            for key, buf in optimizer.state.get(w, {}).items():
                if isinstance(buf, torch.Tensor) and tuple(buf.shape) == shape:
                    optimizer.state[w][key] = buf.t().contiguous()
        parent, _, leaf = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, leaf, lin)
        done.append(name)
    return done


def _auto_packed(name: str, mod: nn.Module, parent: nn.Module | None):
    """GPT-2 ``c_attn``: ``split_size`` rows each for q, k, v (self-attention only)."""
    split = getattr(parent, "split_size", None)
    if name.rsplit(".", 1)[-1] == "c_attn" and isinstance(split, int) \
            and not getattr(parent, "is_cross_attention", False) \
            and mod.out_features == 3 * split:
        return {"q": split, "k": split, "v": split}
    return None


def packed_parts(name: str, mod: nn.Linear, packed: Mapping | None,
                 parent: nn.Module | None) -> list[tuple[str, slice]] | None:
    """``[(tag, rows), ...]`` for a packed ``nn.Linear``, or None when it is one slot."""
    spec = None
    for pat, parts in (packed or {}).items():
        if fnmatch.fnmatchcase(name, pat):
            spec = parts
            break
    if spec is None:
        spec = _auto_packed(name, mod, parent)
        if spec is None:
            return None
    n = mod.out_features
    if isinstance(spec, Mapping):
        sizes = list(spec.items())
    elif isinstance(spec, Sequence) and not isinstance(spec, str) and spec:
        if n % len(spec):
            raise ValueError(f"packed[{name!r}]={tuple(spec)!r}: {n} output rows do not split "
                             f"into {len(spec)} equal parts; give sizes as a dict")
        sizes = [(t, n // len(spec)) for t in spec]
    else:
        raise ValueError(f"packed[{name!r}]={spec!r} must be a tuple of part names or a dict "
                         "name -> rows")
    if any(not isinstance(t, str) or not t or "." in t for t, _ in sizes) \
            or len({t for t, _ in sizes}) != len(sizes):
        raise ValueError(f"packed[{name!r}]: part names must be distinct strings without '.', "
                         f"got {[t for t, _ in sizes]!r}")
    if any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for _, k in sizes) \
            or sum(k for _, k in sizes) != n:
        raise ValueError(f"packed[{name!r}]: part sizes {[k for _, k in sizes]!r} must be "
                         f"positive integers that add up to the {n} output rows")
    out, start = [], 0
    for tag, k in sizes:
        out.append((tag, slice(start, start + k)))
        start += k
    return out


def check_packed(packed, names: list[str]) -> dict:
    """Validate ``packed=``: a dict of pattern -> parts whose patterns each match a layer."""
    if packed is None:
        return {}
    if not isinstance(packed, Mapping) or not all(isinstance(k, str) for k in packed):
        raise TypeError(f"packed={packed!r} must be a dict layer pattern -> part names")
    for pat in packed:
        if not fnmatch.filter(names, pat):
            raise ValueError(f"packed pattern {pat!r} matches no nn.Linear layer; layers: "
                             f"{names}")
    return dict(packed)


def conv1d_modules(model: nn.Module) -> dict[str, nn.Module]:
    """Name -> Hugging Face ``Conv1D`` of ``model`` (what :func:`linearize_conv1d` replaces)."""
    return {name: mod for name, mod in model.named_modules() if is_conv1d(mod)}


def restore_conv1d(model: nn.Module, optimizer: torch.optim.Optimizer | None,
                   originals: Mapping[str, nn.Module]) -> None:
    """Undo :func:`linearize_conv1d`: put the ``originals`` back, weights and state transposed.

    For an error raised after the swap (``sparsify`` validates on the
    linearized model and promises to leave it as it was).
    """
    for name, conv in originals.items():
        parent, _, leaf = name.rpartition(".")
        holder = model.get_submodule(parent) if parent else model
        lin = getattr(holder, leaf, None)
        if not isinstance(lin, Conv1DLinear) or lin.weight is not conv.weight:
            continue
        w = conv.weight
        shape = tuple(w.shape)
        with torch.no_grad():
            w.data = w.data.t().contiguous()
        if optimizer is not None:
            for key, buf in optimizer.state.get(w, {}).items():
                if isinstance(buf, torch.Tensor) and tuple(buf.shape) == shape:
                    optimizer.state[w][key] = buf.t().contiguous()
        setattr(holder, leaf, conv)
