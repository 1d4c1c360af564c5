"""Percolation relations inferred from layer names and shapes (torch-free).

Shared by the torch adapter (:mod:`netshape.torch.groups`) and by
``netshape analyze``, which reads checkpoints without building a model.

Rules: sibling layers (same parent name) named q/k, q_proj/k_proj,
gate_proj/up_proj or w1/w3 are *coupled* (an output channel lives only while
both keep it); v -> out_proj, v_proj -> o_proj, up_proj/gate_proj -> down_proj,
linear1 -> linear2, w1/w3 -> w2 and fc1 -> fc2 are *chains* (the first's
outputs are the second's inputs); other consecutive plain sibling layers whose
shapes chain (an MLP) are chained too.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

__all__ = ["CHAIN_PATTERNS", "COUPLE_PATTERNS", "LayerShape", "infer_pairs"]

#: sibling suffixes whose output channels live and die together
COUPLE_PATTERNS: list[tuple[str, str]] = [("q", "k"), ("q_proj", "k_proj"),
                                          ("gate_proj", "up_proj"), ("w1", "w3")]
#: sibling suffixes where the first's outputs are the second's inputs
CHAIN_PATTERNS: list[tuple[str, str]] = [
    ("v", "out_proj"), ("v_proj", "o_proj"), ("up_proj", "down_proj"), ("gate_proj", "down_proj"),
    ("linear1", "linear2"), ("w1", "w2"), ("w3", "w2"), ("fc1", "fc2"),
]


class LayerShape(NamedTuple):
    """A layer's dotted name, its biadjacency shape ``(n_in, n_out)``, and whether it
    is a plain linear layer (only those are chained by shape alone)."""

    name: str
    n_in: int
    n_out: int
    plain: bool = True


def _split(name: str) -> tuple[str, str]:
    return tuple(name.rsplit(".", 1)) if "." in name else ("", name)  # type: ignore[return-value]


def infer_pairs(layers: Iterable[LayerShape | tuple]) -> list[tuple]:
    """Couple / chain relations for :func:`netshape.percolate`, from names and shapes.

    Parameters
    ----------
    layers : iterable of LayerShape or ``(name, n_in, n_out[, plain])`` tuples
        In model order. Shapes are biadjacency shapes ``(n_in, n_out)``
        (``nn.Linear.weight`` is ``(out, in)``).

    Returns
    -------
    list of tuples
        ``("couple", a, b)`` and ``("chain", a, b)`` relations.

    Examples
    --------
    >>> infer_pairs([("blk.q_proj", 8, 8), ("blk.k_proj", 8, 8), ("blk.v_proj", 8, 8),
    ...              ("blk.o_proj", 8, 8)])
    [('couple', 'blk.q_proj', 'blk.k_proj'), ('chain', 'blk.v_proj', 'blk.o_proj')]
    >>> infer_pairs([("0", 4, 6), ("2", 6, 5)])
    [('chain', '0', '2')]
    """
    items = [LayerShape(*x) for x in layers]
    by_name = {s.name: s for s in items}
    pairs: list[tuple] = []
    grouped: set[str] = set()

    def sibling(s: LayerShape, leaf: str) -> LayerShape | None:
        parent, _ = _split(s.name)
        return by_name.get(f"{parent}.{leaf}" if parent else leaf)

    for s in items:
        leaf = _split(s.name)[1]
        for a, b in COUPLE_PATTERNS:
            t = sibling(s, b) if leaf == a else None
            if t is not None and t.n_out == s.n_out:
                pairs.append(("couple", s.name, t.name))
                grouped.update((s.name, t.name))
        for a, b in CHAIN_PATTERNS:
            t = sibling(s, b) if leaf == a else None
            if t is not None and s.n_out == t.n_in:
                pairs.append(("chain", s.name, t.name))
                grouped.update((s.name, t.name))
    free = [s for s in items if s.name not in grouped and s.plain]
    for a, b in zip(free, free[1:]):  # noqa: B905 - pairs of neighbours
        if _split(a.name)[0] == _split(b.name)[0] and a.n_out == b.n_in:
            pairs.append(("chain", a.name, b.name))
    return pairs
