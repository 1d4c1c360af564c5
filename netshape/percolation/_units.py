"""Channel-unit relations for :func:`netshape.percolate`: attention heads, GQA and RoPE.

A plain ``("couple", a, b)`` relation pairs output channel ``c`` of ``a``
with output channel ``c`` of ``b``; a plain ``("chain", a, b)`` pairs ``a``'s
output ``c`` with ``b``'s input ``c``. Attention with grouped-query heads or
rotary embeddings does not pair channels one to one, so a relation may end
with a dict that maps channels to *units*:

``("couple", q, k, {"heads": H, "kv_heads": G, "head_dim": d, "rotary_dim": r})``
    ``q`` has ``H * d`` outputs (head ``h``, channel ``i`` at ``h * d + i``),
    ``k`` has ``G * d``; query head ``h`` reads key head ``g(h) = h // (H / G)``
    (``H / G`` query heads share one key head: grouped-query attention; ``G = H``
    is ordinary multi-head attention). The score of head ``h`` is

    .. math:: s_h = \\sum_i \\tilde q_{h,i}\\,\\tilde k_{g(h),i}.

    Without rotary embeddings (``rotary_dim = 0``) the unit of channel ``i``
    of key head ``g`` is ``{k_{g,i}} \\cup \\{q_{h,i} : g(h) = g\\}``. With
    rotary embeddings in the ``rotate_half`` convention (LLaMA, Mistral,
    GPT-NeoX: ``rotary="half"``), channels ``i`` and ``j = i + r/2`` of a head
    (``i < r/2``) are rotated together by the angle :math:`\\phi` of the
    position, :math:`\\tilde q = R(\\phi_m) q`, :math:`\\tilde k = R(\\phi_n) k`,
    so that

    .. math::
        \\tilde q_i \\tilde k_i + \\tilde q_j \\tilde k_j
        = \\cos\\theta\\,(q_i k_i + q_j k_j) + \\sin\\theta\\,(q_j k_i - q_i k_j),
        \\qquad \\theta = \\phi_n - \\phi_m :

    ``q_i`` meets both ``k_i`` and ``k_j``. The unit is then the rotary pair
    ``{i, j}`` of every query head of the group and of the key head.
    ``rotary="interleaved"`` (GPT-J) pairs ``2i`` with ``2i + 1``; channels
    ``i >= r`` (partial rotary) are units on their own. A unit is alive when
    **some** ``q`` channel of it and **some** ``k`` channel of it keep an
    incoming link; a dead unit loses every ``q`` and ``k`` column in it.

``("chain", v, o, {"heads": H, "kv_heads": G, "head_dim": d})``
    ``v`` has ``G * d`` outputs, ``o`` has ``H * d`` inputs; input
    ``h * d + i`` of ``o`` carries value channel ``g(h) * d + i``. The unit of a
    value channel is itself plus the ``o`` inputs that read it. A unit is
    alive when the value channel keeps an incoming link and **some** ``o``
    input of it keeps an outgoing link; a dead unit loses the ``v`` column
    and all its ``o`` rows.

``("couple" | "chain", a, b, {"units": {a: [...], b: [...]}})``
    Any other unit map: integer unit ids for ``a``'s outputs and for ``b``'s
    outputs (couple) or inputs (chain), with the rules above.

The sides a unit relation uses (``a``'s outputs and ``b``'s outputs or
inputs) must not appear in any other relation. Biases are ignored, as for
every relation: a channel without links is taken to carry nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["UnitRelation", "head_units", "is_unit_relation", "split_relations"]

_HEAD_KEYS = {"heads", "kv_heads", "head_dim", "rotary_dim", "rotary"}


def is_unit_relation(rel: Any) -> bool:
    """True for a relation that ends with a unit dict (see the module docstring)."""
    return isinstance(rel, (tuple, list)) and len(rel) == 4 and isinstance(rel[3], Mapping)


def _int(spec: Mapping, key: str, rel: Any, low: int) -> int:
    v = spec.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
        raise ValueError(f"pairs entry {rel!r}: {key!r} must be an integer >= {low}, got {v!r}")
    return int(v)


def head_units(heads: int, kv_heads: int, head_dim: int, rotary_dim: int = 0,
               rotary: str = "half") -> tuple[np.ndarray, np.ndarray]:
    """Unit ids of the query (``heads * head_dim``) and key (``kv_heads * head_dim``) channels.

    >>> q, k = head_units(4, 2, 2)
    >>> q.tolist(), k.tolist()
    ([0, 1, 0, 1, 2, 3, 2, 3], [0, 1, 2, 3])
    >>> q, k = head_units(1, 1, 4, rotary_dim=4)
    >>> q.tolist(), k.tolist()
    ([0, 1, 0, 1], [0, 1, 0, 1])
    """
    if rotary not in ("half", "interleaved"):
        raise ValueError(f"rotary={rotary!r} is not allowed; use 'half' or 'interleaved'")
    i = np.arange(head_dim)
    if rotary_dim:
        half = rotary_dim // 2
        if rotary == "half":
            pos = np.where(i < half, i, i - half)
        else:
            pos = i // 2
        pos = np.where(i < rotary_dim, pos, i - half)
    else:
        pos = i
    per_head = int(pos.max()) + 1
    k = (np.arange(kv_heads)[:, None] * per_head + pos[None, :]).reshape(-1)
    group = np.arange(heads) // (heads // kv_heads)
    q = (group[:, None] * per_head + pos[None, :]).reshape(-1)
    return q, k


@dataclass(frozen=True)
class UnitRelation:
    """A compiled unit relation: ``a``'s outputs and ``b``'s outputs (couple) or inputs (chain)."""

    kind: str
    a: Any
    b: Any
    unit_a: np.ndarray
    unit_b: np.ndarray

    @property
    def n_units(self) -> int:
        return int(max(self.unit_a.max(initial=-1), self.unit_b.max(initial=-1))) + 1

    def alive(self, col_degree: np.ndarray, b_degree: np.ndarray) -> np.ndarray:
        """Alive units from ``a``'s column degrees and ``b``'s column (couple) or row degrees."""
        n = self.n_units
        a_on = np.bincount(self.unit_a, weights=col_degree > 0, minlength=n) > 0
        b_on = np.bincount(self.unit_b, weights=b_degree > 0, minlength=n) > 0
        return a_on & b_on


def _compile(rel: Any, shape_of: Mapping[Any, tuple[int, int]]) -> UnitRelation:
    kind, a, b, spec = rel
    for m in (a, b):
        if m not in shape_of:
            raise ValueError(f"pairs entry {rel!r} names {m!r}, which is not one of the layer "
                             f"names {list(shape_of)!r}")
    if a == b:
        raise ValueError(f"pairs entry {rel!r} repeats a layer")
    n_a = shape_of[a][1]
    n_b = shape_of[b][1] if kind == "couple" else shape_of[b][0]
    side = "outputs" if kind == "couple" else "inputs"
    if set(spec) == {"units"}:
        units = spec["units"]
        if not isinstance(units, Mapping) or set(units) != {a, b}:
            raise ValueError(f"pairs entry {rel!r}: 'units' must map both {a!r} and {b!r} to "
                             "integer unit ids")
        ua, ub = (np.asarray(units[m]) for m in (a, b))
        for m, u, n in ((a, ua, n_a), (b, ub, n_b)):
            if u.shape != (n,) or not np.issubdtype(u.dtype, np.integer) or (u < 0).any():
                raise ValueError(f"pairs entry: units of {m!r} must be {n} non-negative integers "
                                 f"(one per {'output' if m == a else side[:-1]}), got shape "
                                 f"{u.shape}")
        return UnitRelation(kind, a, b, ua.astype(np.int64), ub.astype(np.int64))
    if not set(spec) <= _HEAD_KEYS or not {"heads", "kv_heads", "head_dim"} <= set(spec):
        raise ValueError(f"pairs entry {rel!r}: the dict takes 'heads', 'kv_heads', 'head_dim' "
                         "(and for a couple 'rotary_dim', 'rotary'), or 'units'")
    H, G, d = (_int(spec, k, rel, 1) for k in ("heads", "kv_heads", "head_dim"))
    r = _int(spec, "rotary_dim", rel, 0) if "rotary_dim" in spec else 0
    if H % G:
        raise ValueError(f"pairs entry {rel!r}: heads={H} is not a multiple of kv_heads={G}")
    if r % 2 or r > d:
        raise ValueError(f"pairs entry {rel!r}: rotary_dim={r} must be even and <= head_dim={d}")
    if kind == "chain" and r:
        raise ValueError(f"pairs entry {rel!r}: rotary_dim applies to the query/key couple only")
    want = (H * d, G * d) if kind == "couple" else (G * d, H * d)
    if (n_a, n_b) != want:
        raise ValueError(
            f"pairs entry {rel!r}: {a!r} has {n_a} outputs and {b!r} {n_b} {side}, but "
            f"heads={H}, kv_heads={G}, head_dim={d} need {want[0]} and {want[1]}")
    q, k = head_units(H, G, d, r, spec.get("rotary", "half"))
    return UnitRelation(kind, a, b, q, k) if kind == "couple" else UnitRelation(kind, a, b, k, q)


def split_relations(pairs: Any, shape_of: Mapping[Any, tuple[int, int]]
                    ) -> tuple[list[Any], list[UnitRelation]]:
    """``(plain relations, compiled unit relations)``; checks the unit relations' sides are free."""
    if pairs is None:
        return [], []
    plain, units = [], []
    for rel in pairs:
        if is_unit_relation(rel) and rel[0] in ("couple", "chain"):
            units.append(_compile(tuple(rel), shape_of))
        else:
            plain.append(rel)
    used: dict[tuple[Any, str], Any] = {}
    for rel in plain:
        if isinstance(rel, (tuple, list)) and len(rel) >= 3:
            sides = [(m, "out") for m in rel[1:]] if rel[0] == "couple" else \
                [(rel[1], "out"), (rel[2], "in")]
            for s in sides:
                used.setdefault(s, rel)
    for u in units:
        for s in ((u.a, "out"), (u.b, "out" if u.kind == "couple" else "in")):
            if s in used:
                raise ValueError(
                    f"the {'outputs' if s[1] == 'out' else 'inputs'} of {s[0]!r} are in the unit "
                    f"relation ({u.kind!r}, {u.a!r}, {u.b!r}, ...) and in {used[s]!r}; a unit "
                    "relation's sides must not appear in another relation")
            used[s] = (u.kind, u.a, u.b)
    return plain, units
