"""networkx and igraph views of a layer or of a stack of chained layers.

Node numbering (both libraries): neurons are numbered depth by depth. For one
layer ``A`` of shape ``(n_in, n_out)`` the inputs are nodes ``0 .. n_in-1``
and the outputs ``n_in .. n_in+n_out-1``. For a stack ``[A_0, A_1, ...]``
(layer ``l``'s outputs are layer ``l+1``'s inputs, so ``A_l.shape[1] ==
A_{l+1}.shape[0]``) depth 0 is the first layer's inputs, depth ``l+1`` the
outputs of layer ``l``, and the numbering continues across depths.

Node attributes: ``layer`` (depth), ``neuron`` (index within its depth) and
``bipartite`` = ``layer % 2`` (0 inputs, 1 outputs for one layer; a stack is
bipartite by the parity of the depth). igraph also gets ``type`` =
``bool(layer % 2)``, its own bipartite convention. Edge attribute
``layer_name``: the layer's key (mapping) or position (list).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from .._backend import require
from .._validation import as_biadjacency, canonical_csr

__all__ = ["from_networkx", "to_igraph", "to_networkx"]


def _is_matrix(x: Any) -> bool:
    """A 2-D thing (so a list of them is a stack, while a nested list of numbers is one layer)."""
    if sp.issparse(x) or getattr(x, "ndim", None) == 2:
        return True
    return isinstance(x, (list, tuple)) and bool(x) and isinstance(x[0], (list, tuple))


def _stack(A: Any) -> tuple[list[Any], list[sp.csr_array]]:
    """Names and canonical layers of one layer, a list of layers or a mapping of layers."""
    if isinstance(A, (Mapping, list, tuple)) and len(A) == 0:
        raise ValueError("A is empty; pass a layer, or a list/mapping of at least one layer")
    if isinstance(A, Mapping):
        names, layers = list(A.keys()), list(A.values())
    elif isinstance(A, (list, tuple)) and A and _is_matrix(A[0]):
        names, layers = list(range(len(A))), list(A)
    else:
        names, layers = [0], [A]
    csr = [as_biadjacency(L, f"A[{n!r}]" if len(layers) > 1 else "A")
           for n, L in zip(names, layers, strict=True)]
    for i in range(len(csr) - 1):
        if csr[i].shape[1] != csr[i + 1].shape[0]:
            raise ValueError(
                f"layers {names[i]!r} {csr[i].shape} and {names[i + 1]!r} {csr[i + 1].shape} "
                "do not chain: a layer's n_out must equal the next layer's n_in")
    return names, csr


def _layout(csr: list[sp.csr_array]):
    sizes = [csr[0].shape[0]] + [L.shape[1] for L in csr]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    return sizes, offsets


def _edges(csr, offsets):
    for depth, L in enumerate(csr):
        rows = np.repeat(np.arange(L.shape[0]), np.diff(L.indptr))
        yield depth, rows + offsets[depth], L.indices.astype(np.int64) + offsets[depth + 1]


def to_networkx(A: Any, *, directed: bool = False):
    """networkx graph of a layer or of a stack of chained layers.

    Parameters
    ----------
    A : topology, or list / mapping of topologies
        One biadjacency ``(n_in, n_out)`` (rows inputs, columns outputs; a
        torch mask is ``A.T``), or an ordered list or mapping ``name -> layer``
        of chained layers. Node numbering and attributes: see the module
        docstring.
    directed : bool
        ``DiGraph`` with edges from inputs to outputs instead of ``Graph``.

    Returns
    -------
    networkx.Graph or networkx.DiGraph

    Examples
    --------
    >>> import numpy as np
    >>> G = to_networkx(np.array([[1, 0], [1, 1], [0, 1]]))
    >>> sorted(G.edges())
    [(0, 3), (1, 3), (1, 4), (2, 4)]
    >>> [G.nodes[v]["bipartite"] for v in G]
    [0, 0, 0, 1, 1]
    """
    nx = require("networkx")
    names, csr = _stack(A)
    sizes, offsets = _layout(csr)
    G = nx.DiGraph() if directed else nx.Graph()
    for depth, n in enumerate(sizes):
        G.add_nodes_from((int(offsets[depth] + i), {"layer": depth, "neuron": i,
                                                     "bipartite": depth % 2})
                         for i in range(n))
    for depth, u, v in _edges(csr, offsets):
        G.add_edges_from(zip(u.tolist(), v.tolist(), strict=True), layer_name=names[depth])
    return G


def from_networkx(G, *, inputs: Sequence | None = None, outputs: Sequence | None = None
                  ) -> sp.csr_array:
    """Biadjacency ``(n_in, n_out)`` of a bipartite networkx graph.

    Inputs are the nodes with ``bipartite == 0`` and outputs those with
    ``bipartite == 1``, each in the graph's node order, unless ``inputs`` and
    ``outputs`` give the orders explicitly. Edges inside one side raise.

    Returns
    -------
    scipy.sparse.csr_array of bool
        Rows inputs, columns outputs (a torch mask is ``A.T``).

    Examples
    --------
    >>> import numpy as np
    >>> A = np.array([[1, 0], [1, 1], [0, 1]])
    >>> bool((from_networkx(to_networkx(A)).toarray() == A).all())
    True
    """
    if not (hasattr(G, "nodes") and hasattr(G, "edges")):
        raise TypeError(f"G must be a networkx graph; got {type(G).__name__}")
    if inputs is None or outputs is None:
        side = dict(G.nodes(data="bipartite"))
        missing = [v for v, s in side.items() if s not in (0, 1)]
        if missing:
            raise ValueError(f"G: node {missing[0]!r} has bipartite={side[missing[0]]!r}; every "
                             "node needs bipartite=0 (input) or 1 (output), or pass "
                             "inputs= and outputs=")
        inputs = [v for v in G if side[v] == 0] if inputs is None else list(inputs)
        outputs = [v for v in G if side[v] == 1] if outputs is None else list(outputs)
    row = {v: i for i, v in enumerate(inputs)}
    col = {v: j for j, v in enumerate(outputs)}
    if not row or not col:
        raise ValueError(f"G has {len(row)} input and {len(col)} output nodes; both sides "
                         "need at least one")
    rr, cc = [], []
    for u, v in G.edges():
        if u in row and v in col:
            rr.append(row[u])
            cc.append(col[v])
        elif v in row and u in col:
            rr.append(row[v])
            cc.append(col[u])
        else:
            raise ValueError(f"G: edge ({u!r}, {v!r}) does not join an input to an output")
    A = sp.csr_array((np.ones(len(rr), dtype=bool), (rr, cc)), shape=(len(row), len(col)))
    return canonical_csr(A)


def to_igraph(A: Any):
    """igraph ``Graph`` (undirected) of a layer or of a stack of chained layers.

    Same node numbering and attributes as :func:`to_networkx`, plus the vertex
    attribute ``type`` (False inputs / True outputs for one layer), so
    ``g.get_biadjacency(g.vs["type"])`` gives the biadjacency back.

    Examples
    --------
    >>> import numpy as np
    >>> g = to_igraph(np.array([[1, 0], [1, 1], [0, 1]]))
    >>> g.vcount(), g.ecount(), g.vs["type"]
    (5, 4, [False, False, False, True, True])
    """
    ig = require("igraph")
    names, csr = _stack(A)
    sizes, offsets = _layout(csr)
    edges, labels = [], []
    for depth, u, v in _edges(csr, offsets):
        edges.append(np.column_stack([u, v]))
        labels.extend([names[depth]] * u.size)
    g = ig.Graph(n=int(offsets[-1]), edges=np.concatenate(edges).tolist(), directed=False)
    depth_of = np.repeat(np.arange(len(sizes)), sizes)
    g.vs["layer"] = depth_of.tolist()
    g.vs["neuron"] = np.concatenate([np.arange(n) for n in sizes]).tolist()
    g.vs["bipartite"] = (depth_of % 2).tolist()
    g.vs["type"] = (depth_of % 2 == 1).tolist()
    g.es["layer_name"] = labels
    return g
