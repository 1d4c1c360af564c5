"""degree_stats, active neurons and ANP on hand-computed cases and vs plain loops."""

from __future__ import annotations

import numpy as np
import pytest

import netshape as ns
from netshape.metrics import active_neurons, anp, degree_stats


def test_degree_stats_by_hand():
    A = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]])
    s = degree_stats(A)
    assert s.shape == (3, 4) and s.links == 3 and s.density == 0.25
    assert (s.inputs.n, s.inputs.min, s.inputs.max, s.inputs.dead) == (3, 0, 2, 1)
    assert s.inputs.mean == pytest.approx(1.0) and s.inputs.median == 1.0
    assert (s.outputs.max, s.outputs.dead) == (2, 2)
    assert s.outputs.std == pytest.approx(np.std([2, 1, 0, 0]))


def test_degree_stats_random(small_layers):
    for L in small_layers:
        s = degree_stats(L)
        rows, cols = L.sum(axis=1), L.sum(axis=0)
        assert s.inputs.dead == int((rows == 0).sum()) and s.outputs.dead == int((cols == 0).sum())
        assert s.inputs.mean == pytest.approx(rows.mean())
        assert s.outputs.max == int(cols.max()) and s.links == int(L.sum())


def test_anp_mlp_by_hand():
    # 3 inputs -> 4 hidden -> 2 hidden -> 2 outputs
    A1 = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]])
    A2 = np.array([[1, 0], [0, 0], [0, 1], [0, 0]])  # hidden 1 has no outgoing link
    A3 = np.array([[1, 0], [0, 1]])                  # hidden' 1 fed only by hidden 2 (dead)
    # after percolation: inputs {0}, hidden {0}, hidden' {0}, outputs {0}
    assert anp([A1, A2, A3]) == pytest.approx(4 / (3 + 4 + 2 + 2))
    assert anp([A1, A2, A3], include="hidden") == pytest.approx(2 / 6)
    groups = active_neurons([A1, A2, A3])
    assert [(g.kind, g.active, g.total) for g in groups] == [
        ("input", 1, 3), ("hidden", 1, 4), ("hidden", 1, 2), ("output", 1, 2)]
    # relative to the initial topology: a dense start has all 11 neurons active
    init = [np.ones((3, 4)), np.ones((4, 2)), np.ones((2, 2))]
    assert anp([A1, A2, A3], initial=init) == pytest.approx(4 / 11)
    with pytest.raises(ValueError, match="same network"):
        anp([A1, A2, A3], initial=[np.ones((3, 4)), np.ones((4, 3)), np.ones((3, 2))])
    with pytest.raises(ValueError, match="include"):
        anp([A1], include="inputs")
    assert anp([A1], include="hidden") == 0.0


def test_anp_llama_block_counts_coupled_channels_once():
    d, h = 3, 4
    blk = {"q": np.ones((d, d)), "k": np.eye(d), "v": np.ones((d, d)), "o": np.ones((d, d)),
           "gate": np.ones((d, h)), "up": np.ones((d, h)), "down": np.ones((h, d))}
    blk["up"][:, 3] = 0  # channel 3 of gate/up dies
    pairs = [("couple", "q", "k"), ("chain", "v", "o"), ("couple", "gate", "up"),
             ("chain", "gate", "down"), ("chain", "up", "down")]
    groups = active_neurons(blk, pairs=pairs)
    hidden = {g.layers: (g.active, g.total) for g in groups if g.kind == "hidden"}
    assert hidden[("q", "k")] == (3, 3)
    assert hidden[("v", "o")] == (3, 3)
    assert hidden[("gate", "up", "down")] == (3, 4)
    assert anp(blk, pairs=pairs, include="hidden") == pytest.approx(9 / 10)


@pytest.mark.parametrize("seed", range(10))
def test_anp_random_chain_vs_loop(seed):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 8, size=4)
    layers = [rng.random((sizes[i], sizes[i + 1])) < 0.3 for i in range(3)]
    perc, _ = ns.percolate(layers)
    P = [p.toarray() for p in perc]
    active = 0
    for i in range(sizes[0]):
        active += any(P[0][i])
    for l in range(1, 3):
        for h in range(sizes[l]):
            active += bool(P[l - 1][:, h].any() and P[l][h].any())
    for j in range(sizes[3]):
        active += any(P[2][:, j])
    assert anp(layers) == pytest.approx(active / sizes.sum())
