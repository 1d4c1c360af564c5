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
one to one, or the head form of :mod:`netshape._units` (GQA, RoPE) otherwise.

Nothing is guessed: a block whose dataflow cannot be followed (an op the
tracer does not know, a consumer that reads a mix) gets no relation and is
named in a ``UserWarning``; pass ``pairs=`` to :func:`~netshape.torch.sparsify`
for it. ``nn.MultiheadAttention`` runs its projections inside one fused call,
so its relations come from its known structure: q/k coupled, v -> out_proj.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from .._units import head_units
from .groups import Slot

__all__ = ["trace_pairs"]

_DIRTY = object()  # derived from the data, carries no slot channel

_STRUCTURAL = {
    "view", "reshape", "transpose", "permute", "t", "expand", "expand_as", "contiguous",
    "unsqueeze", "squeeze", "flatten", "unflatten", "split", "chunk", "unbind",
    "__getitem__", "narrow", "select", "cat", "concat", "concatenate", "stack", "repeat",
    "repeat_interleave", "movedim", "moveaxis", "swapaxes", "swapdims", "view_as", "reshape_as",
    "tensor_split", "clone", "detach", "split_with_sizes",
}
_KEEP_SHAPE = {"view_as", "reshape_as", "expand_as"}  # second tensor argument gives a shape
#: element-wise and f(0) = 0: a dead channel stays zero
_ZERO_KEEPING = {
    "relu", "relu_", "gelu", "silu", "silu_", "tanh", "tanh_", "neg", "__neg__", "dropout",
    "dropout_", "leaky_relu", "hardtanh", "elu", "selu", "celu", "mish", "hardswish", "abs",
    "sqrt", "square", "pow", "__pow__", "sin", "erf", "sign", "relu6", "gelu_", "float",
    "half", "bfloat16", "double", "to", "type", "type_as", "requires_grad_", "alpha_dropout",
    "feature_alpha_dropout", "softsign", "tanhshrink", "hardshrink", "softshrink", "__abs__",
}
_ELEMENTWISE = _ZERO_KEEPING | {
    "sigmoid", "sigmoid_", "exp", "cos", "softplus", "logsigmoid", "clamp", "clamp_",
    "clip", "masked_fill", "masked_fill_", "hardsigmoid", "erfc", "rsqrt", "reciprocal",
}
_ADD = {"add", "add_", "__add__", "__radd__", "__iadd__", "sub", "sub_", "__sub__",
        "__rsub__", "__isub__"}
_MUL = {"mul", "mul_", "__mul__", "__rmul__", "__imul__", "div", "div_", "__truediv__",
        "__itruediv__", "true_divide"}
_MATMUL = {"matmul", "__matmul__", "bmm"}
#: ops that legitimately mix channels (no warning; a use outside any relation)
_MIXING = {"layer_norm", "rms_norm", "group_norm", "softmax", "log_softmax", "mean", "sum",
           "var", "std", "norm", "linear", "embedding", "max", "min", "amax", "amin",
           "cross_entropy", "nll_loss", "mse_loss", "argmax", "var_mean", "addmm", "baddbmm",
           "logsumexp", "topk", "sort", "cumsum", "batch_norm", "instance_norm", "where",
           "__setitem__", "copy_", "eq", "ne", "lt", "gt", "le", "ge", "isnan", "isinf", "all",
           "any", "allclose", "equal"}
_MIXING |= _ADD | _MUL  # a residual add; a product whose zeros do not survive
_POSITIONS = 4  # sequence positions sampled when pairing q and k channels


class _Shadow:
    """Channel ids of a tensor (>= 0: slot channel, -1: constant, -2: data)."""

    __slots__ = ("ids", "zero")

    def __init__(self, ids: torch.Tensor, zero: bool) -> None:
        self.ids, self.zero = ids, zero


def _name(func: Any) -> str:
    return getattr(func, "__name__", "") or str(func)


def _tensors(obj: Any) -> list[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [t for o in obj for t in _tensors(o)]
    if isinstance(obj, dict):
        return [t for o in obj.values() for t in _tensors(o)]
    return []


def _sample(x: torch.Tensor, dim: int) -> torch.Tensor:
    n = x.shape[dim]
    if n <= _POSITIONS:
        return x
    idx = torch.linspace(0, n - 1, _POSITIONS).round().long()
    return x.index_select(dim, idx)


class _Tracer(TorchFunctionMode):
    def __init__(self, n_ids: int) -> None:
        super().__init__()
        self.state: dict[int, Any] = {}
        self.alive: list[torch.Tensor] = []  # keeps traced tensors alive: ids stay unique
        self.couple: list[np.ndarray] = []
        self.join: list[np.ndarray] = []
        self.escaped = np.zeros(n_ids, dtype=bool)
        self.unknown: dict[str, set[int]] = {}
        self.head_dim: dict[tuple[int, int], int] = {}
        self.inside = 0  # > 0 while a slot module runs (its own product is not a use)

    # ------------------------------------------------------------------ state
    def get(self, t: Any) -> Any:
        return self.state.get(id(t)) if isinstance(t, torch.Tensor) else None

    def put(self, t: torch.Tensor, st: Any) -> None:
        if st is None:
            self.state.pop(id(t), None)
            return
        self.state[id(t)] = st
        self.alive.append(t)

    def ids_of(self, t: Any, shape=None) -> torch.Tensor:
        st = self.get(t)
        if isinstance(st, _Shadow):
            return st.ids
        shape = tuple(t.shape) if isinstance(t, torch.Tensor) else (shape or ())
        return torch.full(shape, -2 if st is _DIRTY else -1, dtype=torch.long)

    def use(self, ids: torch.Tensor, op: str) -> None:
        """Channels read by something that is not a traced relation."""
        if self.inside:
            return
        v = ids[ids >= 0]
        if v.numel():
            self.escaped[v.unique().numpy()] = True
            if op not in _MIXING:
                self.unknown.setdefault(op, set()).update(v.unique().tolist())

    # ------------------------------------------------------------------ dispatch
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        outs = _tensors(out)
        if not outs:
            return out
        ins = _tensors(args) + _tensors(kwargs)
        states = [self.get(t) for t in ins]
        shadows = [s for s in states if isinstance(s, _Shadow)]
        if not shadows:
            if any(s is _DIRTY for s in states):
                for o in outs:
                    self.put(o, _DIRTY)
            return out
        name = _name(func)
        try:
            self._propagate(name, func, args, kwargs, out, outs, shadows)
        except Exception:  # noqa: BLE001 - an op the tracer cannot follow is a use, not a crash
            for s in shadows:
                self.use(s.ids, f"{name} (not followed)")
            for o in outs:
                self.put(o, _DIRTY)
        return out

    def _propagate(self, name, func, args, kwargs, out, outs, shadows) -> None:
        zero = all(s.zero for s in shadows)
        if name in _STRUCTURAL:
            a0 = args[0]
            if isinstance(a0, (list, tuple)):
                sub = [self.ids_of(t) if isinstance(t, torch.Tensor) else t for t in a0]
                new = func(type(a0)(sub), *args[1:], **kwargs)
            else:
                rest = args[1:] if name in _KEEP_SHAPE else tuple(
                    self.ids_of(t) if isinstance(t, torch.Tensor) and self.get(t) else t
                    for t in args[1:])
                new = func(self.ids_of(a0), *rest, **kwargs)
            for o, ids in zip(outs, _tensors(new), strict=True):
                self._set(o, ids.to(torch.long), zero)
            return
        if name in _ELEMENTWISE and len(shadows) == 1 and isinstance(self.get(args[0]), _Shadow):
            ids = torch.broadcast_to(shadows[0].ids, outs[0].shape)
            self._set(outs[0], ids.clone(), zero and name in _ZERO_KEEPING)
            return
        if name in _ADD or name in _MUL:
            self._binary(name, args, outs[0])
            return
        if name in _MATMUL:
            self._matmul(args[0], args[1], outs[0], name)
            return
        if name == "scaled_dot_product_attention":
            self._sdpa(args, kwargs, outs[0])
            return
        for s in shadows:
            self.use(s.ids, name)
        for o in outs:
            self.put(o, _DIRTY)

    def _set(self, t: torch.Tensor, ids: torch.Tensor, zero: bool) -> None:
        if bool((ids >= 0).any()):
            self.put(t, _Shadow(ids, zero))
        else:
            self.put(t, _DIRTY if bool((ids == -2).any()) else None)

    def _binary(self, name: str, args, out: torch.Tensor) -> None:
        a, b = args[0], args[1] if len(args) > 1 else None
        if name.startswith("__r"):
            a, b = b, a
        sa, sb = self.get(a), self.get(b)
        A = torch.broadcast_to(self.ids_of(a, out.shape), out.shape)
        B = torch.broadcast_to(self.ids_of(b, out.shape), out.shape)
        za = sa.zero if isinstance(sa, _Shadow) else False
        zb = sb.zero if isinstance(sb, _Shadow) else False
        mul = name in _MUL
        if mul and name not in {"mul", "mul_", "__mul__", "__rmul__", "__imul__"} \
                and isinstance(sb, _Shadow):
            self.use(B, "division by a layer output")
            B = torch.full_like(B, -2)
        both = (A >= 0) & (B >= 0) & (A != B)
        if bool(both.any()):
            pairs = torch.stack([A[both], B[both]], 1).unique(dim=0).numpy()
            (self.couple if mul and za and zb else self.join).append(pairs)
        if mul:
            # a dead channel times anything is zero only if its zeros survive
            keep_a = (A >= 0) & (za | (B == -1))
            keep_b = (B >= 0) & (zb | (A == -1))
            res = torch.where(keep_a, A, torch.where(keep_b, B, torch.where(
                (A == -1) & (B == -1), -1, -2)))
            z = za or zb
        else:
            res = torch.where(A == -1, B, torch.where(B == -1, A, torch.where(
                (A >= 0) & (B >= 0), A, -2)))
            z = za and zb
        lost = (res == -2) & ((A >= 0) | (B >= 0))
        if bool(lost.any()):
            self.use(torch.where(A >= 0, A, B)[lost], name)
        self._set(out, res.clone(), z)

    def _pair(self, Q: torch.Tensor, K: torch.Tensor) -> bool:
        """Couple q ids (..., L, E) with k ids (..., S, E) channel by channel; all valid?"""
        Q, K = _sample(Q, -2), _sample(K, -2)
        Qb, Kb = torch.broadcast_tensors(Q.unsqueeze(-2), K.unsqueeze(-3))
        if not (bool((Qb >= 0).all()) and bool((Kb >= 0).all())):
            return False
        pairs = torch.stack([Qb.reshape(-1), Kb.reshape(-1)], 1).unique(dim=0).numpy()
        self.couple.append(pairs)
        return True

    def _matmul(self, a, b, out: torch.Tensor, name: str) -> None:
        sa, sb = self.get(a), self.get(b)
        if isinstance(sa, _Shadow) and isinstance(sb, _Shadow) and a.dim() >= 2:
            # scores: q (..., L, E) @ k^T (..., E, S)
            if self._pair(sa.ids, sb.ids.transpose(-1, -2)):
                self.head_dim[(int(sa.ids.reshape(-1)[0]), int(sb.ids.reshape(-1)[0]))] = \
                    int(a.shape[-1])
                self.put(out, _DIRTY)
                return
        if isinstance(sb, _Shadow) and not isinstance(sa, _Shadow) and b.dim() >= 2:
            V = sb.ids
            if bool((V == V[..., :1, :]).all()):  # probs @ v keeps v's channel ids
                self._set(out, torch.broadcast_to(V[..., :1, :], out.shape).clone(), sb.zero)
                return
        for s in (sa, sb):
            if isinstance(s, _Shadow):
                self.use(s.ids, name if not (s is sa and sb is None) else "linear")
        self.put(out, _DIRTY)

    def _sdpa(self, args, kwargs, out: torch.Tensor) -> None:
        names = ("query", "key", "value")
        q, k, v = (args[i] if len(args) > i else kwargs.get(n) for i, n in enumerate(names))
        sq, sk, sv = self.get(q), self.get(k), self.get(v)
        Hq = q.shape[-3] if q.dim() >= 3 else 1
        rep = Hq // k.shape[-3] if k.dim() >= 3 and k.shape[-3] else 1
        if isinstance(sq, _Shadow) and isinstance(sk, _Shadow):
            K = sk.ids.repeat_interleave(rep, dim=-3) if rep > 1 else sk.ids
            if self._pair(sq.ids, K):
                self.head_dim[(int(sq.ids.reshape(-1)[0]), int(sk.ids.reshape(-1)[0]))] = \
                    int(q.shape[-1])
            else:
                self.use(sq.ids, "scaled_dot_product_attention")
                self.use(sk.ids, "scaled_dot_product_attention")
        elif isinstance(sq, _Shadow) or isinstance(sk, _Shadow):
            self.use((sq if isinstance(sq, _Shadow) else sk).ids, "linear")
        if isinstance(sv, _Shadow) and bool((sv.ids == sv.ids[..., :1, :]).all()):
            V = sv.ids[..., :1, :]
            V = V.repeat_interleave(rep, dim=-3) if rep > 1 else V
            self._set(out, torch.broadcast_to(V, out.shape).clone(), sv.zero)
        else:
            if isinstance(sv, _Shadow):
                self.use(sv.ids, "linear")
            self.put(out, _DIRTY)


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
    tracer = _Tracer(n)
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
                if isinstance(st, _Shadow) and x.shape[-1] == s.n_in:
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
                    tracer.put(out, _Shadow(torch.broadcast_to(ids, out.shape).clone(), True))
                return
            ids = _module_ids(m, _slots, offset, out.shape[-1])
            tracer.put(out, _Shadow(torch.broadcast_to(ids, out.shape).clone(), True))

        hooks.append(mod.register_forward_pre_hook(pre, with_kwargs=True))
        hooks.append(mod.register_forward_hook(post, with_kwargs=True))
    try:
        with torch.enable_grad(), tracer:
            for t in _tensors(example_inputs if not isinstance(example_inputs, dict)
                              else list(example_inputs.values())):
                tracer.put(t, _DIRTY)
            _call(model, example_inputs)
    finally:
        for h in hooks:
            h.remove()
    return _compile(slots, offset, owner, tracer, consumed, known)


def _components(n: int, edges: list[np.ndarray]) -> np.ndarray:
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    e = np.concatenate(edges) if edges else np.zeros((0, 2), dtype=np.int64)
    g = sp.coo_array((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n))
    return connected_components(g, directed=False)[1]


def _canon(u: np.ndarray) -> np.ndarray:
    """Unit ids relabelled 0, 1, ... in order of first appearance."""
    if not u.size:
        return u
    _, first, inv = np.unique(u, return_index=True, return_inverse=True)
    return np.argsort(np.argsort(first))[inv.reshape(-1)]


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool((_canon(a) == _canon(b)).all())


def _head_spec(kind: str, na: int, nb: int, ua: np.ndarray, ub: np.ndarray,
               head_dim: int | None) -> dict | None:
    """The head form of a unit map, when one reproduces it exactly."""
    both = np.concatenate([ua, ub])
    for d in ([head_dim] if head_dim else []) + [x for x in range(1, min(na, nb) + 1)
                                                  if na % x == 0 and nb % x == 0]:
        H, G = (na // d, nb // d) if kind == "couple" else (nb // d, na // d)
        if G == 0 or H % G:
            continue
        rotaries = [(0, "half")] + ([(r, s) for r in range(2, d + 1, 2)
                                     for s in ("half", "interleaved")] if kind == "couple" else [])
        for r, style in rotaries:
            q, k = head_units(H, G, d, r, style)
            cand = np.concatenate([q, k] if kind == "couple" else [k, q])
            if _same_partition(cand, both):
                spec = {"heads": H, "kv_heads": G, "head_dim": d}
                if r:
                    spec.update(rotary_dim=r, rotary=style)
                return spec
    return None


def _compile(slots, offset, owner, tracer: _Tracer, consumed, known) -> list[tuple]:
    n = len(owner)
    comp = _components(n, tracer.couple + tracer.join)
    name = [s.name for s in slots]
    rng = {s.name: np.arange(offset[s.name], offset[s.name] + s.n_out) for s in slots}
    skipped: list[str] = []
    rels: list[tuple[int, tuple]] = []
    # couples: slot pairs joined by a product (or q @ k^T)
    coupled: set[tuple[int, int]] = set()
    for e in tracer.couple:
        o = np.sort(owner[e], axis=1)
        o = np.unique(o[o[:, 0] != o[:, 1]], axis=0)
        coupled.update((int(i), int(j)) for i, j in o)
    for i, j in sorted(coupled):
        a, b = name[i], name[j]
        ca, cb = comp[rng[a]], comp[rng[b]]
        members = np.isin(owner, [i, j])
        inside = np.isin(comp, np.concatenate([ca, cb]))
        if (inside & ~members).any():
            skipped.append(f"{a} / {b}: their coupled channels also mix with other layers")
            continue
        if tracer.escaped[rng[a]].any() or tracer.escaped[rng[b]].any():
            skipped.append(f"{a} / {b}: their outputs are also read outside the coupling")
            continue
        if not (set(ca) == set(cb)):
            skipped.append(f"{a} / {b}: some channels of one meet no channel of the other")
            continue
        if len(cb) > len(ca):  # the query side (more heads) comes first
            a, b, ca, cb = b, a, cb, ca
        if len(ca) == len(cb) and len(set(ca)) == len(ca) and bool((ca == cb).all()):
            rels.append((min(i, j), ("couple", a, b)))
            continue
        hd = next((v for (x, y), v in tracer.head_dim.items()
                   if {int(owner[x]), int(owner[y])} == {i, j}), None)
        spec = _head_spec("couple", len(ca), len(cb), ca, cb, hd)
        if spec is None:
            c = _canon(np.concatenate([ca, cb]))
            spec = {"units": {a: c[: len(ca)].tolist(), b: c[len(ca):].tolist()}}
        rels.append((min(i, j), ("couple", a, b, spec)))
    # chains: consumer rows that read producer channels, and nothing else
    for s in slots:
        rows = consumed.get(s.name)
        if rows is None:
            continue
        rows = rows.numpy()
        if (rows < 0).any():
            skipped.append(f"-> {s.name}: its input mixes traced channels with other data")
            continue
        producers = sorted({int(owner[r]) for r in rows} |
                           {int(owner[x]) for x in np.flatnonzero(np.isin(comp, comp[rows]))})
        for pi in producers:
            p = name[pi]
            if tracer.escaped[rng[p]].any():
                skipped.append(f"{p} -> {s.name}: {p}'s outputs are also read elsewhere "
                               "(e.g. a residual connection)")
                continue
            same = rows.shape == rng[p].shape
            if same and (bool((rows == rng[p]).all()) or len(producers) > 1 and
                         bool((comp[rows] == comp[rng[p]]).all())):
                rels.append((pi, ("chain", p, s.name)))
                continue
            if len(producers) > 1 or not np.isin(rows, rng[p]).all():
                skipped.append(f"{p} -> {s.name}: several producers with a channel map")
                continue
            up, ur = np.arange(len(rng[p])), rows - offset[p]
            spec = _head_spec("chain", len(up), len(ur), up, ur, None)
            rels.append((pi, ("chain", p, s.name, spec or {"units": {p: up.tolist(),
                                                                      s.name: ur.tolist()}})))
    unknown = sorted({f"{op} ({', '.join(sorted({name[owner[x]] for x in ids}))})"
                      for op, ids in tracer.unknown.items()})
    if skipped or unknown:
        msg = "percolation relations not inferred from the traced dataflow"
        if skipped:
            msg += ": " + "; ".join(skipped)
        if unknown:
            msg += "; outputs flow into ops the tracer does not follow: " + ", ".join(unknown)
        warnings.warn(msg + ". Pass pairs= to sparsify() to set them.", UserWarning,
                      stacklevel=3)
    seen, out = set(), []
    for _, r in sorted(rels, key=lambda x: x[0]) + [(0, r) for r in known]:
        key = repr(r)
        if key not in seen:
            seen.add(key)
            out.append(r)
    order = {s.name: i for i, s in enumerate(slots)}
    return sorted(out, key=lambda r: (order[r[1]], r[0] != "couple", order[r[2]]))
