"""Network percolation: remove inactive neurons over a chain of layers, to a fixed point.

A layer is a biadjacency ``A`` of shape ``(n_in, n_out)`` (rows: the layer's
input neurons, columns: its outputs; a ``torch.nn.Linear`` mask is ``A.T``).

A *hidden* neuron is an output channel of a producer group that has consumers
(or of a coupled group). It is **active** only if it keeps at least one
incoming link (in every member of a coupled group; in at least one producer
group when several groups feed the same consumers) and, when the channel has
consumers, at least one outgoing link. Inactive neurons lose all their links
(paper Appendix F: c1 inactive neuron removal, c2 incomplete path adjustment),
which can make further neurons inactive; :func:`percolate` repeats until
nothing changes. Removal is monotone, so the fixed point is unique and does not
depend on the order of the sweeps (the authors' code does one backward and one
forward sweep, which is not enough once layers are coupled).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from .._validation import as_layers, canonical_csr
from ._units import is_unit_relation, split_relations

__all__ = ["LayerPercolation", "PercolationReport", "percolate"]


@dataclass(frozen=True)
class LayerPercolation:
    """What percolation removed from one layer.

    ``inputs_removed`` / ``outputs_removed`` count neurons (rows / columns)
    that had at least one link before and none after.
    """

    shape: tuple[int, int]
    links_before: int
    links_after: int
    inputs_removed: int
    outputs_removed: int

    @property
    def links_removed(self) -> int:
        return self.links_before - self.links_after


@dataclass(frozen=True)
class PercolationReport:
    """Per-layer effect of :func:`percolate` and the number of sweeps it needed.

    ``layers`` maps each layer key (name, or index for a sequence) to a
    :class:`LayerPercolation`. ``iterations`` counts the simultaneous sweeps
    run, the last of which changed nothing (so an already percolated network
    reports 1).
    """

    layers: dict[Any, LayerPercolation]
    iterations: int
    hidden_groups: tuple[tuple[Any, ...], ...] = field(default=())

    @property
    def links_removed(self) -> int:
        return sum(r.links_removed for r in self.layers.values())

    def __str__(self) -> str:
        lines = [f"percolation: {self.iterations} sweep(s), {self.links_removed} link(s) removed"]
        for key, r in self.layers.items():
            lines.append(
                f"  {key}: {r.shape[0]}x{r.shape[1]}, links {r.links_before} -> {r.links_after}, "
                f"inputs removed {r.inputs_removed}, outputs removed {r.outputs_removed}"
            )
        return "\n".join(lines)


class _Find:
    """Union-find over layer keys (each key stands for that layer's output channels)."""

    def __init__(self, keys: Iterable[Any]) -> None:
        self.parent = {k: k for k in keys}

    def find(self, k: Any) -> Any:
        while self.parent[k] != k:
            self.parent[k] = self.parent[self.parent[k]]
            k = self.parent[k]
        return k

    def union(self, a: Any, b: Any) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra


@dataclass
class ChannelSet:
    """One set of hidden channels: who writes it (``units``: coupled groups) and who reads it."""

    units: list[tuple[Any, ...]]
    consumers: list[Any]
    coupled: bool
    size: int

    @property
    def producers(self) -> list[Any]:
        return [k for u in self.units for k in u]


def _normalise_layers(layers: Any) -> tuple[list[Any], list[sp.csr_array], bool]:
    """``(keys, canonical layers, is_mapping)`` through :func:`netshape._validation.as_layers`."""
    kind, keys, mats = as_layers(layers)
    return keys, mats, kind == "mapping"


def _parse_pairs(pairs: Any, keys: list[Any], is_mapping: bool):
    couples: list[tuple[Any, ...]] = []
    chains: list[tuple[Any, Any]] = []
    if pairs is None:
        return couples, chains
    known = set(keys)
    what = "layer names" if is_mapping else "layer indices"
    for rel in pairs:
        if is_unit_relation(rel):  # compiled and applied by netshape.percolation._units
            continue
        if not isinstance(rel, (tuple, list)) or len(rel) < 3 or rel[0] not in ("couple", "chain"):
            raise ValueError(
                f"pairs entry {rel!r} is not allowed; use ('couple', a, b, ...) or "
                "('chain', a, b)"
            )
        kind, members = rel[0], tuple(rel[1:])
        for m in members:
            if m not in known:
                raise ValueError(f"pairs entry {rel!r} names {m!r}, which is not one of the "
                                 f"{what} {keys!r}")
        if kind == "chain" and len(members) != 2:
            raise ValueError(f"pairs entry {rel!r}: 'chain' relates exactly two layers (a, b)")
        if len(set(members)) != len(members):
            raise ValueError(f"pairs entry {rel!r} repeats a layer")
        if kind == "chain":
            chains.append((members[0], members[1]))
        else:
            couples.append(members)
    return couples, chains


def build_channel_sets(keys: list[Any], shapes: list[tuple[int, int]], pairs: Any,
                       is_mapping: bool) -> list[ChannelSet]:
    """Resolve ``pairs`` (and the implicit chain of a sequence) into hidden channel sets.

    Shared with :mod:`netshape.metrics` (active neurons, ANP).
    """
    shape_of = dict(zip(keys, shapes, strict=True))
    couples, chains = _parse_pairs(pairs, keys, is_mapping)
    if not is_mapping:
        chains = [(keys[i], keys[i + 1]) for i in range(len(keys) - 1)] + chains

    def name(k: Any) -> str:
        return repr(k) if is_mapping else f"layer {k}"

    for a, b in chains:
        if shape_of[a][1] != shape_of[b][0]:
            raise ValueError(
                f"layers do not chain: {name(a)} has shape {shape_of[a]} (n_in, n_out) but "
                f"{name(b)} has shape {shape_of[b]}; {name(a)}'s n_out must equal "
                f"{name(b)}'s n_in"
            )
    for group in couples:
        widths = {shape_of[k][1] for k in group}
        if len(widths) != 1:
            desc = ", ".join(f"{name(k)} {shape_of[k]}" for k in group)
            raise ValueError(f"coupled layers must have the same number of outputs: {desc}")

    uf = _Find(keys)
    for group in couples:
        for k in group[1:]:
            uf.union(group[0], k)
    # two producers feeding the same consumer write the same channels
    feeder: dict[Any, Any] = {}
    for a, b in chains:
        if b in feeder:
            uf.union(feeder[b], a)
        else:
            feeder[b] = a

    coupled_root = {uf.find(g[0]) for g in couples}
    in_couple = {}
    for group in couples:
        for k in group:
            in_couple.setdefault(k, set()).update(group)
    sets: dict[Any, ChannelSet] = {}
    for a, b in chains:
        root = uf.find(a)
        cs = sets.setdefault(root, ChannelSet([], [], root in coupled_root, shape_of[a][1]))
        if b not in cs.consumers:
            cs.consumers.append(b)
    for root in coupled_root:
        sets.setdefault(root, ChannelSet([], [], True, None))
    for root, cs in sets.items():
        members = [k for k in keys if uf.find(k) == root]
        cs.size = shape_of[members[0]][1]
        seen: set[Any] = set()
        for k in members:
            if k in seen:
                continue
            # a coupled group, closed under coupling, is one producing unit
            unit = {k}
            frontier = [k]
            while frontier:
                x = frontier.pop()
                for y in in_couple.get(x, ()):
                    if y not in unit:
                        unit.add(y)
                        frontier.append(y)
            seen |= unit
            cs.units.append(tuple(m for m in keys if m in unit))
        if len({shape_of[k][1] for k in members}) != 1:
            desc = ", ".join(f"{name(k)} {shape_of[k]}" for k in members)
            raise ValueError(f"layers feeding the same consumer must have equal n_out: {desc}")
    return list(sets.values())


def _col_degree(A: sp.csr_array) -> np.ndarray:
    return np.bincount(A.indices, minlength=A.shape[1])


def _row_degree(A: sp.csr_array) -> np.ndarray:
    return np.diff(A.indptr)


def channel_alive(cs: ChannelSet, mats: dict[Any, sp.csr_array]) -> np.ndarray:
    """Boolean vector: which channels of ``cs`` are active in ``mats`` right now."""
    incoming = np.zeros(cs.size, dtype=bool)
    for unit in cs.units:
        unit_in = np.ones(cs.size, dtype=bool)
        for k in unit:
            unit_in &= _col_degree(mats[k]) > 0
        incoming |= unit_in
    if not cs.consumers:
        return incoming
    outgoing = np.zeros(cs.size, dtype=bool)
    for k in cs.consumers:
        outgoing |= _row_degree(mats[k]) > 0
    return incoming & outgoing


def _keep(A: sp.csr_array, rows: np.ndarray | None, cols: np.ndarray | None) -> sp.csr_array:
    keep = np.ones(A.nnz, dtype=bool)
    if rows is not None:
        keep &= np.repeat(rows, np.diff(A.indptr))
    if cols is not None:
        keep &= cols[A.indices]
    if keep.all():
        return A
    row_idx = np.repeat(np.arange(A.shape[0]), np.diff(A.indptr))[keep]
    out = sp.csr_array((np.ones(int(keep.sum()), dtype=bool), (row_idx, A.indices[keep])),
                       shape=A.shape)
    return canonical_csr(out)


def percolate(layers: Any, *, pairs: Iterable[tuple] | None = None):
    """Remove inactive hidden neurons and their links until nothing changes.

    Parameters
    ----------
    layers : sequence or mapping of biadjacencies
        Each layer is ``(n_in, n_out)`` (a ``torch.nn.Linear`` mask is ``A.T``);
        any scipy/numpy/torch/CuPy 2-D input, any nonzero is a link. A
        sequence is a chain: layer ``l``'s outputs are layer ``l+1``'s inputs
        (shapes must match). A mapping ``name -> layer`` has no implicit
        relation: layers are related only through ``pairs``.
    pairs : iterable of tuples, optional
        Relations between layers, named by mapping key (or index for a
        sequence):

        * ``("couple", a, b, ...)``: the output channels of ``a, b, ...`` live
          or die together (query/key; gate/up): a channel is active only if
          **every** coupled layer keeps an incoming link on it and, if the
          group has consumers, some consumer keeps an outgoing link on it.
        * ``("chain", a, b)``: ``a``'s outputs are ``b``'s inputs (value ->
          output, up -> down, gate -> down). Several producers of the same
          consumer write the same channels; a channel is then incoming-active
          when any producer (any coupled group) keeps a link on it.
        * ``("couple", q, k, {...})`` / ``("chain", v, o, {...})``: attention
          heads with grouped-query attention and rotary embeddings, or any
          other map from channels to units (see :mod:`netshape.percolation._units`):
          ``{"heads": H, "kv_heads": G, "head_dim": d, "rotary_dim": r}`` or
          ``{"units": {a: [...], b: [...]}}``.

    Returns
    -------
    percolated : list or dict
        Same container kind as ``layers``, canonical boolean ``csr_array``.
    report : PercolationReport
        Neurons removed on each side and links removed per layer; sweeps run.

    Notes
    -----
    A channel set :math:`H` with producers :math:`P` (coupled units
    :math:`U \\subseteq P`) and consumers :math:`C` keeps channel :math:`h` iff

    .. math::
        \\bigvee_{U}\\bigwedge_{p \\in U} \\deg^{in}_p(h) > 0 \\;\\wedge\\;
        \\Big(C = \\emptyset \\vee \\bigvee_{c \\in C} \\deg^{out}_c(h) > 0\\Big).

    Dead channels lose their column in every producer and their row in every
    consumer; all channel sets are tested simultaneously and the sweep is
    repeated until no link is removed. Inputs of layers with no producer and
    outputs of uncoupled layers with no consumer are never removed.

    Examples
    --------
    A 3-layer MLP chain; hidden neuron 1 of the first hidden layer has no
    outgoing link, so its incoming link goes too:

    >>> import numpy as np
    >>> import netshape as ns
    >>> A1 = np.array([[1, 1], [0, 1]])
    >>> A2 = np.array([[1, 0], [0, 0]])
    >>> A3 = np.array([[1], [1]])
    >>> out, rep = ns.percolate([A1, A2, A3])
    >>> [L.nnz for L in out], rep.links_removed
    ([1, 1, 1], 3)

    A Transformer block (attention: q, k, v, o; MLP: fc1, fc2). q and k are
    coupled through their dot product; v feeds o; fc1 feeds fc2:

    >>> rng = np.random.default_rng(0)
    >>> d, h = 8, 16
    >>> blk = {n: rng.random(s) < 0.3 for n, s in
    ...        [("q", (d, d)), ("k", (d, d)), ("v", (d, d)), ("o", (d, d)),
    ...         ("fc1", (d, h)), ("fc2", (h, d))]}
    >>> out, rep = ns.percolate(blk, pairs=[("couple", "q", "k"), ("chain", "v", "o"),
    ...                                     ("chain", "fc1", "fc2")])
    >>> sorted(out) == sorted(blk)
    True

    A LLaMA block: gate and up are coupled and both feed down:

    >>> llama = {n: rng.random(s) < 0.3 for n, s in
    ...          [("q", (d, d)), ("k", (d, d)), ("v", (d, d)), ("o", (d, d)),
    ...           ("gate", (d, h)), ("up", (d, h)), ("down", (h, d))]}
    >>> out, rep = ns.percolate(llama, pairs=[
    ...     ("couple", "q", "k"), ("chain", "v", "o"), ("couple", "gate", "up"),
    ...     ("chain", "gate", "down"), ("chain", "up", "down")])
    >>> bool(np.all((out["gate"].sum(axis=0) > 0) == (out["up"].sum(axis=0) > 0)))
    True
    """
    keys, mats_list, is_mapping = _normalise_layers(layers)
    sets = build_channel_sets(keys, [m.shape for m in mats_list], pairs, is_mapping)
    _, unit_rels = split_relations(pairs, {k: m.shape for k, m in zip(keys, mats_list,
                                                                        strict=True)})
    before = dict(zip(keys, mats_list, strict=True))
    mats = dict(before)
    iterations = 0
    while True:
        iterations += 1
        keep_rows: dict[Any, np.ndarray] = {}
        keep_cols: dict[Any, np.ndarray] = {}
        # all channel sets judged on the same state, then all removals applied
        for cs in sets:
            alive = channel_alive(cs, mats)
            if alive.all():
                continue
            for k in cs.producers:
                keep_cols[k] = keep_cols.get(k, True) & alive
            for k in cs.consumers:
                keep_rows[k] = keep_rows.get(k, True) & alive
        for u in unit_rels:
            b_deg = _col_degree(mats[u.b]) if u.kind == "couple" else _row_degree(mats[u.b])
            alive = u.alive(_col_degree(mats[u.a]), b_deg)
            if alive.all():
                continue
            keep_cols[u.a] = keep_cols.get(u.a, True) & alive[u.unit_a]
            side = keep_cols if u.kind == "couple" else keep_rows
            side[u.b] = side.get(u.b, True) & alive[u.unit_b]
        changed = False
        for k in keys:
            rows, cols = keep_rows.get(k), keep_cols.get(k)
            if rows is None and cols is None:
                continue
            new = _keep(mats[k], rows, cols)
            if new.nnz != mats[k].nnz:
                changed = True
                mats[k] = new
        if not changed:
            break

    per_layer = {}
    for k in keys:
        a, b = before[k], mats[k]
        per_layer[k] = LayerPercolation(
            shape=tuple(int(s) for s in a.shape),
            links_before=int(a.nnz),
            links_after=int(b.nnz),
            inputs_removed=int(np.count_nonzero((_row_degree(a) > 0) & (_row_degree(b) == 0))),
            outputs_removed=int(np.count_nonzero((_col_degree(a) > 0) & (_col_degree(b) == 0))),
        )
    report = PercolationReport(per_layer, iterations,
                               tuple(tuple(cs.producers) for cs in sets))
    result = {k: mats[k] for k in keys} if is_mapping else [mats[k] for k in keys]
    return result, report
