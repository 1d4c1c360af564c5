"""Percolation relations traced from one forward pass (the model's dataflow).

:func:`trace_pairs` runs the model once on an example input under a
:class:`torch.overrides.TorchFunctionMode` that follows, for every tensor
element, which output *channel* of which sparsified layer (slot) it carries.
Each slot output gets channel ids; the ids travel through

* structural ops (``view``, ``reshape``, ``transpose``, ``permute``, ``expand``,
  slicing, ``cat``, ``split``, ``chunk``, ...), which move elements: the same op
  is applied to the ids, so head splits, ``repeat_kv`` (GQA) and packed
  ``qkv`` splits are followed element by element;
* element-wise ops (activations, dropout, scaling, casts) and products or sums
  of slot outputs. A product of two slot outputs whose zeros survive
  (``silu(gate) * up``) *couples* their channels; a sum of two (``q * cos +
  rotate_half(q) * sin``, RoPE) joins the channels it adds into one unit;
* matrix products: ``q @ k^T`` over a slot-channel axis couples the query and
  key channels it multiplies (``scaled_dot_product_attention`` too, with
  ``enable_gqa``); ``probs @ v`` keeps ``v``'s channel ids.

A slot's input then tells which producer channel each input row reads: a
*chain*. Anything else that reads slot channels (a residual add, a norm, a
projection that is not sparsified) is a *use outside the relation*: such a
producer is not chained, because percolation would remove channels that are
still read there. From the channel units (connected components of the
couplings) come the relations, in the form :func:`netshape.percolate`
accepts: plain ``("couple", a, b)`` / ``("chain", a, b)`` where channels pair
one to one, or the head form of :mod:`netshape.percolation._units` (GQA, RoPE) otherwise.

Nothing is guessed: a block whose dataflow cannot be followed (an op the
tracer does not know, a consumer that reads a mix) gets no relation and is
named in a ``UserWarning``; pass ``pairs=`` to :func:`~netshape.torch.sparsify`
for it. ``nn.MultiheadAttention`` runs its projections inside one fused call,
so its relations come from its known structure: q/k coupled, v -> out_proj.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np
import torch
from torch import nn

from ._trace_relations import compile_relations
from ._tracer import DIRTY, Shadow, Tracer, tensors
from .groups import Slot

__all__ = ["trace_pairs"]

def _call(model: nn.Module, inputs: Any) -> None:
    if isinstance(inputs, dict):
        model(**inputs)
    elif isinstance(inputs, (tuple, list)):
        model(*inputs)
    else:
        model(inputs)


def _module_ids(mod: nn.Module, slots: list[Slot], offset: dict[str, int],
                n_rows: int) -> torch.Tensor:
    ids = torch.full((n_rows,), -2, dtype=torch.long)
    for s in slots:
        rows = s.rows if s.rows is not None else slice(0, s.n_out)
        ids[rows] = torch.arange(s.n_out) + offset[s.name]
    return ids


def _first_input(args, kwargs, names=("input", "hidden_states", "x", "query")) -> Any:
    if args:
        return args[0]
    return next((kwargs[n] for n in names if n in kwargs), next(iter(kwargs.values()), None))


def trace_pairs(model: nn.Module, slots: list[Slot], example_inputs: Any) -> list[tuple]:
    """Relations between ``slots`` from one forward pass of ``model`` on ``example_inputs``.

    Parameters
    ----------
    model : nn.Module
        Not yet sparsified (the pass runs with gradients enabled, so fused
        inference fast paths stay off, and computes no backward).
    slots : list of Slot
        From :func:`netshape.torch.find_slots`.
    example_inputs : tensor, tuple or dict
        A small batch (a few tokens is enough): ``model(x)``, ``model(*x)`` or
        ``model(**x)``.

    Returns
    -------
    list of tuples
        Relations for :func:`netshape.percolate`, in slot order (see the module docstring).

    Warns
    -----
    UserWarning
        For slots whose outputs flow into ops the tracer cannot follow, and
        relations left out because a consumer reads a mix.

    Examples
    --------
    >>> import torch
    >>> from netshape.torch import find_slots
    >>> class Gated(torch.nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.gate, self.up = torch.nn.Linear(4, 6), torch.nn.Linear(4, 6)
    ...         self.down, self.head = torch.nn.Linear(6, 4), torch.nn.Linear(4, 2)
    ...     def forward(self, x):
    ...         h = x + self.down(torch.nn.functional.silu(self.gate(x)) * self.up(x))
    ...         return self.head(h)
    >>> m = Gated()
    >>> trace_pairs(m, find_slots(m), torch.randn(2, 4))
    [('couple', 'gate', 'up'), ('chain', 'gate', 'down'), ('chain', 'up', 'down')]
    """
    offset: dict[str, int] = {}
    n = 0
    for s in slots:
        offset[s.name] = n
        n += s.n_out
    owner = np.empty(n, dtype=np.int64)
    for i, s in enumerate(slots):
        owner[offset[s.name]:offset[s.name] + s.n_out] = i
    by_module: OrderedDict[int, list[Slot]] = OrderedDict()
    for s in slots:
        by_module.setdefault(id(s.module), []).append(s)
    tracer = Tracer(n)
    consumed: dict[str, torch.Tensor | None] = {}
    known: list[tuple] = []
    hooks = []
    names = {s.name for s in slots}
    for mod_slots in by_module.values():
        mod = mod_slots[0].module
        mha = isinstance(mod, nn.MultiheadAttention)
        if mha:
            base = mod_slots[0].parent
            tags = {s.leaf: s.name for s in mod_slots}
            if "q" in tags and "k" in tags:
                known.append(("couple", tags["q"], tags["k"]))
            out_proj = f"{base}.out_proj" if base else "out_proj"
            if "v" in tags and out_proj in names:
                known.append(("chain", tags["v"], out_proj))

        def pre(m, args, kwargs, _slots=mod_slots, _mha=mha):
            if _mha:
                qkv = [args[i] if len(args) > i else kwargs.get(k)
                       for i, k in enumerate(("query", "key", "value"))]
                inputs = {s.name: qkv["qkv".index(s.leaf)] for s in _slots}
            else:
                x = _first_input(args, kwargs)
                inputs = {s.name: x for s in _slots}
            for s in _slots:
                x = inputs[s.name]
                st = tracer.get(x)
                if isinstance(st, Shadow) and x.shape[-1] == s.n_in:
                    rows = st.ids.reshape(-1, s.n_in)
                    consumed[s.name] = rows[0] if bool((rows == rows[:1]).all()) else None
                else:
                    consumed.setdefault(s.name, None)
            tracer.inside += 1

        def post(m, args, kwargs, output, _slots=mod_slots, _mha=mha):
            tracer.inside -= 1
            out = output[0] if isinstance(output, tuple) else output
            if not isinstance(out, torch.Tensor):
                return
            if _mha:
                base = _slots[0].parent
                op = f"{base}.out_proj" if base else "out_proj"
                if op in names:
                    s = next(x for x in slots if x.name == op)
                    ids = torch.arange(s.n_out) + offset[op]
                    tracer.put(out, Shadow(torch.broadcast_to(ids, out.shape).clone(), True))
                return
            ids = _module_ids(m, _slots, offset, out.shape[-1])
            tracer.put(out, Shadow(torch.broadcast_to(ids, out.shape).clone(), True))

        hooks.append(mod.register_forward_pre_hook(pre, with_kwargs=True))
        hooks.append(mod.register_forward_hook(post, with_kwargs=True))
    try:
        with torch.enable_grad(), tracer:
            for t in tensors(example_inputs if not isinstance(example_inputs, dict)
                              else list(example_inputs.values())):
                tracer.put(t, DIRTY)
            try:
                _call(model, example_inputs)
            except Exception as exc:
                raise ValueError(f"example_inputs: the model's forward pass on them failed "
                                 f"({type(exc).__name__}: {exc}); pass a batch that "
                                 "model(x), model(*x) or model(**x) accepts") from exc
    finally:
        for h in hooks:
            h.remove()
    return compile_relations(slots, offset, owner, tracer, consumed, known)
