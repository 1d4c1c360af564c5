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

import contextlib
import warnings
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from ._trace_relations import compile_relations
from ._tracer import DIRTY, Shadow, Tracer, tensors
from .groups import Slot

__all__ = ["TRACE_ROWS", "isolated", "trace_pairs"]

#: the trace runs on at most this many rows (first dimension) of each input tensor: the
#: tracer keeps every intermediate and an int64 shadow per element
TRACE_ROWS = 4


@contextlib.contextmanager
def isolated(model: nn.Module) -> Iterator[None]:
    """Run a forward pass of ``model`` without side effects that outlive it.

    The torch random streams (dropout) are forked, every buffer (BatchNorm
    running statistics, ``num_batches_tracked``) is restored and each
    module's training flag is put back.
    """
    buffers = [(b, b.detach().clone()) for b in model.buffers()]
    modes = [(m, m.training) for m in model.modules()]
    devices = sorted({b.device.index or 0 for b in (*model.parameters(), *model.buffers())
                      if b.device.type == "cuda"})
    try:
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        with torch.no_grad():
            for b, saved in buffers:
                if b.shape == saved.shape:
                    b.copy_(saved)
        for m, mode in modes:
            m.training = mode


def _first_rows(obj: Any, rows: int) -> Any:
    """``obj`` with every tensor cut to its first ``rows`` rows, when all share that size.

    A common first dimension is the batch; inputs whose first dimensions
    differ (a square attention mask beside a batch) are left whole.
    """
    sizes = {t.shape[0] if t.dim() else -1 for t in tensors(obj)}
    if len(sizes) != 1 or min(sizes) <= rows:
        return obj
    return _cut(obj, rows)


def _cut(obj: Any, rows: int) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj[:rows] if obj.dim() and obj.shape[0] > rows else obj
    if isinstance(obj, dict):
        return type(obj)((k, _cut(v, rows)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_cut(v, rows) for v in obj)
    return obj

def _same_rows(a: torch.Tensor | None, b: torch.Tensor | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return a.shape == b.shape and bool(torch.equal(a, b))


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
        ``model(**x)``. Only the first :data:`TRACE_ROWS` rows of each tensor
        are used; the pass leaves no trace in the model or the random
        streams (:func:`isolated`).

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
    repeated: set[str] = set()
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
                read = None
                if isinstance(st, Shadow) and x.shape[-1] == s.n_in:
                    rows = st.ids.reshape(-1, s.n_in)
                    read = rows[0] if bool((rows == rows[:1]).all()) else None
                if s.name not in consumed:
                    consumed[s.name] = read
                elif not _same_rows(consumed[s.name], read):
                    # a layer called again (shared weights, a loop) on other producers:
                    # a chain from one call could remove channels another call reads
                    consumed[s.name] = None
                    repeated.add(s.name)
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
    example_inputs = _first_rows(example_inputs, TRACE_ROWS)
    try:
        with torch.enable_grad(), isolated(model), tracer:
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
    if repeated:
        warnings.warn(f"layers {sorted(repeated)} are called more than once with inputs from "
                      "different producers; no chain into them is traced. Pass pairs= to "
                      "declare their relations", UserWarning, stacklevel=3)
    return compile_relations(slots, offset, owner, tracer, consumed, known)
