"""Which weights are sparsified, and how their neurons are coupled for percolation.

A *slot* is one sparse topology: an ``nn.Linear`` weight, or one of the
q/k/v row blocks of ``nn.MultiheadAttention``'s packed ``in_proj_weight``
(each an ``(E, E)`` block with its own mask rows, density and link
prediction; named ``<attn>.q``, ``<attn>.k``, ``<attn>.v``).

Default selection: every ``nn.Linear`` and attention projection except the
last ``nn.Linear`` of the model (the classifier / generator head);
embeddings are never ``nn.Linear``. ``include`` / ``exclude`` take
:mod:`fnmatch` patterns (a string or a list) on slot names.

Percolation pairs (for :func:`netshape.percolate`): traced from the
dataflow when ``sparsify`` gets ``example_inputs=`` (see
:mod:`netshape.torch.dataflow`). Otherwise from names: q/k and gate/up are
*coupled* (an output channel lives only while both keep it); v -> o,
up -> down, gate -> down and ``linear1`` -> ``linear2`` are *chains*;
consecutive layers of an ``nn.Sequential`` whose shapes chain (an MLP) are
chained. Pass ``pairs=`` to ``sparsify`` to replace this.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn

from ..percolation._pairs import CHAIN_PATTERNS, COUPLE_PATTERNS, LayerShape, infer_pairs

__all__ = ["COUPLE_PATTERNS", "CHAIN_PATTERNS", "Slot", "find_slots", "percolation_pairs"]

@dataclass
class Slot:
    """One sparsified topology: ``module.<param>[rows]`` of shape ``(n_out, n_in)``."""

    name: str
    module: nn.Module
    param: str
    rows: slice | None
    n_in: int
    n_out: int

    @property
    def parent(self) -> str:
        return self.name.rsplit(".", 1)[0] if "." in self.name else ""

    @property
    def leaf(self) -> str:
        return self.name.rsplit(".", 1)[-1]


def _all_slots(model: nn.Module, packed=None) -> tuple[list[Slot], str | None]:
    from .linear_like import packed_parts

    slots: list[Slot] = []
    last_linear = None
    modules = dict(model.named_modules())
    for mname, mod in modules.items():
        if isinstance(mod, nn.MultiheadAttention):
            E = mod.embed_dim
            if mod._qkv_same_embed_dim:
                for i, tag in enumerate("qkv"):
                    slots.append(Slot(f"{mname}.{tag}", mod, "in_proj_weight",
                                      slice(i * E, (i + 1) * E), E, E))
            else:
                for tag in "qkv":
                    w = getattr(mod, f"{tag}_proj_weight")
                    slots.append(Slot(f"{mname}.{tag}", mod, f"{tag}_proj_weight", None,
                                      int(w.shape[1]), int(w.shape[0])))
        elif isinstance(mod, nn.Linear):
            parts = packed_parts(mname, mod, packed, modules.get(mname.rpartition(".")[0]))
            if parts is None:
                slots.append(Slot(mname, mod, "weight", None, mod.in_features, mod.out_features))
            else:  # one slot per packed part (rows of the weight)
                slots += [Slot(f"{mname}.{tag}", mod, "weight", rows, mod.in_features,
                               rows.stop - rows.start) for tag, rows in parts]
            last_linear = mname
    return slots, last_linear


def _patterns(p, name: str) -> list[str]:
    if p is None:
        return []
    if isinstance(p, str):
        return [p]
    if isinstance(p, Sequence) and all(isinstance(x, str) for x in p):
        return list(p)
    raise TypeError(f"{name}={p!r} must be None, a pattern string or a list of pattern strings")


def find_slots(model: nn.Module, include=None, exclude=None, packed=None) -> list[Slot]:
    """Slots to sparsify, in registration order (see the module docstring).

    ``packed`` splits packed projections into slots (see :mod:`netshape.torch.linear_like`).
    Raises ValueError when a pattern matches nothing or nothing is left.
    """
    from .linear_like import check_packed

    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    packed = check_packed(packed, [n for n, m in model.named_modules()
                                   if isinstance(m, nn.Linear)])
    slots, last = _all_slots(model, packed)
    inc, exc = _patterns(include, "include"), _patterns(exclude, "exclude")
    names = [s.name for s in slots]
    for pat, what in [(p, "include") for p in inc] + [(p, "exclude") for p in exc]:
        if not fnmatch.filter(names, pat):
            raise ValueError(f"{what} pattern {pat!r} matches no layer; layers: {names}")
    if inc:
        chosen = [s for s in slots if any(fnmatch.fnmatchcase(s.name, p) for p in inc)]
    else:
        chosen = [s for s in slots if s.name != last and s.parent != last]
    chosen = [s for s in chosen if not any(fnmatch.fnmatchcase(s.name, p) for p in exc)]
    if not chosen:
        raise ValueError(
            f"model has no layer left to sparsify (layers: {names}; the last Linear "
            f"{last!r} is the head and is excluded unless include= names it)"
        )
    return chosen


def percolation_pairs(slots: list[Slot], model: nn.Module | None = None) -> list[tuple]:
    """Couple / chain relations between slots from their names, for :func:`netshape.percolate`.

    The rules live in :mod:`netshape.percolation._pairs` (shared with ``netshape analyze``).
    Given ``model``, layers are chained by shape only inside an ``nn.Sequential``
    (whose children run in order); otherwise consecutive siblings are. A traced
    dataflow (:func:`netshape.torch.dataflow.trace_pairs`) needs no names.
    """
    def plain(s: Slot) -> bool:
        if s.param != "weight" or s.rows is not None or not isinstance(s.module, nn.Linear):
            return False
        return model is None or isinstance(model.get_submodule(s.parent), nn.Sequential)

    return infer_pairs(LayerShape(s.name, s.n_in, s.n_out, plain=plain(s)) for s in slots)
