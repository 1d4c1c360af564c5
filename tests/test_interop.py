"""networkx / igraph round trips for layers and stacks of layers."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from netshape.generators import brf, bsf, er
from netshape.io import from_networkx, to_igraph, to_networkx


def test_networkx_round_trip(small_layers):
    for M in small_layers:
        G = to_networkx(M)
        n_in, n_out = M.shape
        assert G.number_of_nodes() == n_in + n_out
        assert G.number_of_edges() == int((M != 0).sum())
        assert [G.nodes[v]["bipartite"] for v in range(n_in)] == [0] * n_in
        assert all(G.nodes[n_in + j]["neuron"] == j for j in range(n_out))
        assert np.array_equal(from_networkx(G).toarray(), M != 0)


def test_networkx_directed_and_foreign_graph():
    A = brf(20, 10, 0.2, r=0.5, rng=0)
    D = to_networkx(A, directed=True)
    assert all(u < 20 <= v for u, v in D.edges())
    # a graph built by networkx itself, with string nodes
    B = nx.Graph()
    B.add_nodes_from(["x", "y"], bipartite=0)
    B.add_nodes_from(["p", "q", "r"], bipartite=1)
    B.add_edges_from([("x", "q"), ("r", "y"), ("y", "p")])
    assert from_networkx(B).toarray().astype(int).tolist() == [[0, 1, 0], [1, 0, 1]]
    assert from_networkx(B, inputs=["y", "x"], outputs=["r", "q", "p"]).toarray().astype(
        int).tolist() == [[1, 0, 1], [0, 1, 0]]


def test_from_networkx_errors():
    G = nx.path_graph(3)
    with pytest.raises(ValueError, match="bipartite"):
        from_networkx(G)
    nx.set_node_attributes(G, {0: 0, 1: 1, 2: 1}, "bipartite")
    with pytest.raises(ValueError, match="does not join an input to an output"):
        from_networkx(G)


def test_stack_numbering_and_attributes():
    layers = {"fc1": er(6, 4, 0.5, rng=0), "fc2": er(4, 3, 0.5, rng=1), "out": er(3, 2, 0.5,
                                                                               rng=2)}
    G = to_networkx(layers)
    assert G.number_of_nodes() == 6 + 4 + 3 + 2
    assert G.number_of_edges() == sum(L.nnz for L in layers.values())
    depth = nx.get_node_attributes(G, "layer")
    for u, v, name in G.edges(data="layer_name"):
        a, b = sorted((u, v))
        idx = list(layers).index(name)
        assert depth[a] == idx and depth[b] == idx + 1
        assert layers[name][G.nodes[a]["neuron"], G.nodes[b]["neuron"]]
    # same with a list: names are positions
    G2 = to_networkx(list(layers.values()))
    assert sorted(G2.edges()) == sorted(G.edges())


def test_stack_must_chain():
    with pytest.raises(ValueError, match="do not chain"):
        to_networkx([er(4, 3, 0.5, rng=0), er(4, 3, 0.5, rng=1)])
    with pytest.raises(ValueError, match="empty"):
        to_networkx([])


def test_igraph_round_trip(small_layers):
    pytest.importorskip("igraph")
    for M in small_layers + [bsf(60, 40, 0.1, rng=0).toarray()]:
        g = to_igraph(M)
        assert g.vcount() == sum(M.shape) and g.ecount() == int((M != 0).sum())
        back, rows, cols = g.get_biadjacency(g.vs["type"])
        assert rows == list(range(M.shape[0]))
        assert np.array_equal(np.asarray(back.data if hasattr(back, "data") else back) != 0,
                              M != 0)


def test_igraph_stack_matches_networkx():
    pytest.importorskip("igraph")
    layers = [er(5, 4, 0.4, rng=0), er(4, 6, 0.4, rng=1)]
    g = to_igraph(layers)
    G = to_networkx(layers)
    assert sorted(tuple(sorted(e)) for e in g.get_edgelist()) == sorted(
        tuple(sorted(e)) for e in G.edges())
    assert g.vs["layer"] == [G.nodes[v]["layer"] for v in range(G.number_of_nodes())]
    assert set(g.es["layer_name"]) == {0, 1}
