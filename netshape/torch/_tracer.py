"""The tensor-level tracer behind :func:`netshape.torch.dataflow.trace_pairs`.

A :class:`torch.overrides.TorchFunctionMode` that keeps, beside every tensor
derived from a sparsified layer's output, a tensor of the same shape holding
the global channel id each element carries (see :mod:`netshape.torch.dataflow`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.overrides import TorchFunctionMode

__all__ = ["DIRTY", "Shadow", "Tracer", "tensors"]

DIRTY = object()  # derived from the data, carries no slot channel

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
    "sqrt", "square", "sin", "erf", "sign", "relu6", "gelu_", "float",
    "half", "bfloat16", "double", "to", "type", "type_as", "requires_grad_", "alpha_dropout",
    "feature_alpha_dropout", "softsign", "tanhshrink", "hardshrink", "softshrink", "__abs__",
}
_ELEMENTWISE = _ZERO_KEEPING | {
    "sigmoid", "sigmoid_", "exp", "cos", "softplus", "logsigmoid", "clamp", "clamp_",
    "clip", "masked_fill", "masked_fill_", "hardsigmoid", "erfc", "rsqrt", "reciprocal",
    "__rpow__",
}
#: element-wise; keeps zeros only for a positive scalar exponent (x**0 = 1, 0**-1 = inf)
_POW = {"pow", "pow_", "__pow__", "__ipow__", "float_power"}
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


class Shadow:
    """Channel ids of a tensor (>= 0: slot channel, -1: constant, -2: data)."""

    __slots__ = ("ids", "zero")

    def __init__(self, ids: torch.Tensor, zero: bool) -> None:
        self.ids, self.zero = ids, zero


def _name(func: Any) -> str:
    return getattr(func, "__name__", "") or str(func)


def tensors(obj: Any) -> list[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [t for o in obj for t in tensors(o)]
    if isinstance(obj, dict):
        return [t for o in obj.values() for t in tensors(o)]
    return []


def _sample(x: torch.Tensor, dim: int) -> torch.Tensor:
    n = x.shape[dim]
    if n <= _POSITIONS:
        return x
    idx = torch.linspace(0, n - 1, _POSITIONS).round().long()
    return x.index_select(dim, idx)


class Tracer(TorchFunctionMode):
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
        if isinstance(st, Shadow):
            return st.ids
        shape = tuple(t.shape) if isinstance(t, torch.Tensor) else (shape or ())
        return torch.full(shape, -2 if st is DIRTY else -1, dtype=torch.long)

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
        outs = tensors(out)
        if not outs:
            return out
        ins = tensors(args) + tensors(kwargs)
        states = [self.get(t) for t in ins]
        shadows = [s for s in states if isinstance(s, Shadow)]
        if not shadows:
            if any(s is DIRTY for s in states):
                for o in outs:
                    self.put(o, DIRTY)
            return out
        name = _name(func)
        try:
            self._propagate(name, func, args, kwargs, out, outs, shadows)
        except Exception:  # noqa: BLE001 - an op the tracer cannot follow is a use, not a crash
            for s in shadows:
                self.use(s.ids, f"{name} (not followed)")
            for o in outs:
                self.put(o, DIRTY)
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
            for o, ids in zip(outs, tensors(new), strict=True):
                self._set(o, ids.to(torch.long), zero)
            return
        if name in _POW and len(shadows) == 1 and isinstance(self.get(args[0]), Shadow):
            e = args[1] if len(args) > 1 else kwargs.get("exponent")
            positive = isinstance(e, (int, float)) and not isinstance(e, bool) and e > 0
            ids = torch.broadcast_to(shadows[0].ids, outs[0].shape)
            self._set(outs[0], ids.clone(), zero and positive)
            return
        if name in _ELEMENTWISE and len(shadows) == 1 and isinstance(self.get(args[0]), Shadow):
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
            self.put(o, DIRTY)

    def _set(self, t: torch.Tensor, ids: torch.Tensor, zero: bool) -> None:
        if bool((ids >= 0).any()):
            self.put(t, Shadow(ids, zero))
        else:
            self.put(t, DIRTY if bool((ids == -2).any()) else None)

    def _binary(self, name: str, args, out: torch.Tensor) -> None:
        a, b = args[0], args[1] if len(args) > 1 else None
        if name.startswith("__r"):
            a, b = b, a
        sa, sb = self.get(a), self.get(b)
        A = torch.broadcast_to(self.ids_of(a, out.shape), out.shape)
        B = torch.broadcast_to(self.ids_of(b, out.shape), out.shape)
        za = sa.zero if isinstance(sa, Shadow) else False
        zb = sb.zero if isinstance(sb, Shadow) else False
        mul = name in _MUL
        if mul and name not in {"mul", "mul_", "__mul__", "__rmul__", "__imul__"} \
                and isinstance(sb, Shadow):
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
        if isinstance(sa, Shadow) and isinstance(sb, Shadow) and a.dim() >= 2:
            # scores: q (..., L, E) @ k^T (..., E, S)
            if self._pair(sa.ids, sb.ids.transpose(-1, -2)):
                self.head_dim[(int(sa.ids.reshape(-1)[0]), int(sb.ids.reshape(-1)[0]))] = \
                    int(a.shape[-1])
                self.put(out, DIRTY)
                return
        if isinstance(sb, Shadow) and not isinstance(sa, Shadow) and b.dim() >= 2:
            V = sb.ids
            if bool((V == V[..., :1, :]).all()):  # probs @ v keeps v's channel ids
                self._set(out, torch.broadcast_to(V[..., :1, :], out.shape).clone(), sb.zero)
                return
        for s in (sa, sb):
            if isinstance(s, Shadow):
                self.use(s.ids, name if not (s is sa and sb is None) else "linear")
        self.put(out, DIRTY)

    def _sdpa(self, args, kwargs, out: torch.Tensor) -> None:
        names = ("query", "key", "value")
        q, k, v = (args[i] if len(args) > i else kwargs.get(n) for i, n in enumerate(names))
        sq, sk, sv = self.get(q), self.get(k), self.get(v)
        Hq = q.shape[-3] if q.dim() >= 3 else 1
        rep = Hq // k.shape[-3] if k.dim() >= 3 and k.shape[-3] else 1
        if isinstance(sq, Shadow) and isinstance(sk, Shadow):
            K = sk.ids.repeat_interleave(rep, dim=-3) if rep > 1 else sk.ids
            if self._pair(sq.ids, K):
                self.head_dim[(int(sq.ids.reshape(-1)[0]), int(sk.ids.reshape(-1)[0]))] = \
                    int(q.shape[-1])
            else:
                self.use(sq.ids, "scaled_dot_product_attention")
                self.use(sk.ids, "scaled_dot_product_attention")
        elif isinstance(sq, Shadow) or isinstance(sk, Shadow):
            self.use((sq if isinstance(sq, Shadow) else sk).ids, "linear")
        if isinstance(sv, Shadow) and bool((sv.ids == sv.ids[..., :1, :]).all()):
            V = sv.ids[..., :1, :]
            V = V.repeat_interleave(rep, dim=-3) if rep > 1 else V
            self._set(out, torch.broadcast_to(V, out.shape).clone(), sv.zero)
        else:
            if isinstance(sv, Shadow):
                self.use(sv.ids, "linear")
            self.put(out, DIRTY)


