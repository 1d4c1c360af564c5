"""Degrees, active neurons and the active-neuron post-percolation (ANP) rate.

A layer is a biadjacency ``A`` of shape ``(n_in, n_out)``: rows are its input
neurons, columns its outputs (a ``torch.nn.Linear`` mask is ``A.T``). The
degree of an input neuron is its number of outgoing links (row sum); the
degree of an output neuron its number of incoming links (column sum).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._validation import as_biadjacency
from ..percolation._percolate import _normalise_layers, build_channel_sets, channel_alive, percolate

__all__ = ["DegreeStats", "NeuronGroup", "SideStats", "active_neurons", "anp", "degree_stats"]


@dataclass(frozen=True)
class SideStats:
    """Degree summary of one side of a layer; ``dead`` = neurons with degree 0."""

    n: int
    mean: float
    std: float
    min: int
    median: float
    max: int
    dead: int


@dataclass(frozen=True)
class DegreeStats:
    """Degree summaries of a layer's input neurons (rows) and output neurons (columns)."""

    shape: tuple[int, int]
    links: int
    density: float
    inputs: SideStats
    outputs: SideStats


def _side(deg: np.ndarray) -> SideStats:
    return SideStats(n=int(deg.size), mean=float(deg.mean()), std=float(deg.std()),
                     min=int(deg.min()), median=float(np.median(deg)), max=int(deg.max()),
                     dead=int(np.count_nonzero(deg == 0)))


def degree_stats(A: Any) -> DegreeStats:
    """In/out degree summaries and dead neurons on each side of one layer.

    Parameters
    ----------
    A : biadjacency ``(n_in, n_out)``, any family; any nonzero is a link.

    Returns
    -------
    DegreeStats
        ``inputs`` summarises the row sums :math:`k_u = \\sum_j A_{uj}`,
        ``outputs`` the column sums :math:`k_j = \\sum_u A_{uj}`; ``dead``
        counts degree-0 neurons; ``density = links / (n_in n_out)``.

    Examples
    --------
    >>> import numpy as np
    >>> s = degree_stats(np.array([[1, 1, 0], [0, 0, 0]]))
    >>> s.links, s.inputs.dead, s.outputs.dead, s.inputs.max
    (2, 1, 1, 2)
    """
    A = as_biadjacency(A)
    rows = np.diff(A.indptr)
    cols = np.bincount(A.indices, minlength=A.shape[1])
    n_in, n_out = (int(s) for s in A.shape)
    return DegreeStats(shape=(n_in, n_out), links=int(A.nnz), density=A.nnz / (n_in * n_out),
                       inputs=_side(rows), outputs=_side(cols))


@dataclass(frozen=True)
class NeuronGroup:
    """One set of neurons: ``kind`` is "input", "hidden" or "output"; ``layers`` touch it."""

    kind: str
    layers: tuple[Any, ...]
    active: int
    total: int


def active_neurons(layers: Any, *, pairs: Any = None, percolated: bool = False
                   ) -> list[NeuronGroup]:
    """Active neurons per neuron group of a chain (or mapping with ``pairs``).

    Groups: the inputs of each layer that has no producer (``"input"``; active =
    at least one outgoing link), each hidden channel set as resolved by
    :func:`netshape.percolate` (``"hidden"``; active = incoming and, when it has
    consumers, outgoing links — counted once however many layers share it),
    and the outputs of each uncoupled layer with no consumer (``"output"``;
    active = at least one incoming link). The layers are percolated first
    unless ``percolated=True``.

    Examples
    --------
    >>> import numpy as np
    >>> g = active_neurons([np.array([[1, 1], [0, 0]]), np.array([[1], [0]])])
    >>> [(x.kind, x.active, x.total) for x in g]
    [('input', 1, 2), ('hidden', 1, 2), ('output', 1, 1)]
    """
    if not percolated:
        layers, _ = percolate(layers, pairs=pairs)
    keys, mats, is_mapping = _normalise_layers(layers)
    sets = build_channel_sets(keys, [m.shape for m in mats], pairs, is_mapping)
    by_key = dict(zip(keys, mats, strict=True))
    produced = {c for cs in sets for c in cs.consumers}
    producers = {p for cs in sets for p in cs.producers}
    groups = []
    for k in keys:
        if k not in produced:
            deg = np.diff(by_key[k].indptr)
            groups.append(NeuronGroup("input", (k,), int(np.count_nonzero(deg)), int(deg.size)))
    for cs in sets:
        alive = channel_alive(cs, by_key)
        groups.append(NeuronGroup("hidden", tuple(cs.producers) + tuple(cs.consumers),
                                  int(np.count_nonzero(alive)), int(alive.size)))
    for k in keys:
        if k not in producers:
            deg = np.bincount(by_key[k].indices, minlength=by_key[k].shape[1])
            groups.append(NeuronGroup("output", (k,), int(np.count_nonzero(deg)), int(deg.size)))
    return groups


def anp(layers: Any, *, initial: Any = None, pairs: Any = None, include: str = "all") -> float:
    """Active-neuron post-percolation rate (paper section 3.2, Tables 1 and 7).

    .. math:: \\mathrm{ANP} = \\frac{\\#\\,\\text{active neurons of the percolated network}}
                                   {\\#\\,\\text{neurons before training}}

    Parameters
    ----------
    layers : sequence (a chain) or mapping of biadjacencies ``(n_in, n_out)``
        The current masks (``torch.nn.Linear`` masks transposed); percolated
        here with ``pairs`` before counting (see :func:`active_neurons`).
    initial : same container as ``layers``, optional
        The masks before training. If given, the denominator is the number of
        active neurons of the percolated ``initial`` network (so neurons dead
        from initialisation do not count; the rate can then exceed 1); if
        omitted, it is the number of neurons of the architecture.
    pairs : see :func:`netshape.percolate`
    include : {"all", "hidden"}
        Count every neuron group, or only hidden channel sets (the neurons
        percolation can remove). With a mapping, inputs shared by several
        layers with no producer (q, k, v reading one residual stream) are
        counted once per layer.

    Returns
    -------
    float; 0.0 when the counted groups hold no neuron (e.g. ``include="hidden"``
    on a single layer). Never NaN.

    Examples
    --------
    >>> import numpy as np
    >>> A1 = np.array([[1, 1], [0, 0]]); A2 = np.array([[1], [0]])
    >>> anp([A1, A2])  # active: input 0, hidden 0, output 0 out of 2 + 2 + 1
    0.6
    >>> anp([A1, A2], include="hidden")
    0.5
    """
    if include not in ("all", "hidden"):
        raise ValueError(f"include={include!r} is not allowed; choose 'all' or 'hidden'")

    def count(x: Any) -> tuple[int, int]:
        gs = [g for g in active_neurons(x, pairs=pairs) if include == "all" or g.kind == "hidden"]
        return sum(g.active for g in gs), sum(g.total for g in gs)

    active, total = count(layers)
    if initial is not None:
        initial_active, initial_total = count(initial)
        if initial_total != total:
            raise ValueError(
                f"initial has {initial_total} neurons but layers has {total}; pass the masks "
                "of the same network before and after training"
            )
        total = initial_active
    return active / total if total else 0.0
