"""Percolation: hand-built chains, coupled groups, fixed point vs a plain-loop reference."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import netshape as ns
from netshape.percolation import PercolationReport


def dense(x):
    return x.toarray().astype(int) if sp.issparse(x) else np.asarray(x).astype(int)


# ---------------------------------------------------------------- reference (plain loops)
def reference(mats, structure):
    """Neuron-by-neuron removal until nothing changes.

    ``structure``: list of (units, consumers); units = tuples of coupled producers.
    """
    M = {k: dense(v).copy() for k, v in mats.items()}
    changed = True
    while changed:
        changed = False
        for units, consumers in structure:
            width = M[units[0][0]].shape[1]
            for h in range(width):
                incoming = False
                for unit in units:
                    if all(any(M[p][i, h] for i in range(M[p].shape[0])) for p in unit):
                        incoming = True
                outgoing = not consumers or any(
                    any(M[c][h, j] for j in range(M[c].shape[1])) for c in consumers)
                if incoming and outgoing:
                    continue
                for unit in units:
                    for p in unit:
                        if M[p][:, h].any():
                            M[p][:, h] = 0
                            changed = True
                for c in consumers:
                    if M[c][h, :].any():
                        M[c][h, :] = 0
                        changed = True
    return M


def chain_structure(n):
    return [([(i,)], [i + 1]) for i in range(n - 1)]


LLAMA_PAIRS = [("chain", "pre", "q"), ("chain", "pre", "k"), ("chain", "pre", "v"),
               ("couple", "q", "k"), ("chain", "v", "o"), ("couple", "gate", "up"),
               ("chain", "gate", "down"), ("chain", "up", "down")]
LLAMA_STRUCTURE = [([("pre",)], ["q", "k", "v"]), ([("q", "k")], []), ([("v",)], ["o"]),
                   ([("gate", "up")], ["down"])]


def llama_block(rng, d=6, h=9, p=0.25):
    shapes = {"pre": (d, d), "q": (d, d), "k": (d, d), "v": (d, d), "o": (d, d),
              "gate": (d, h), "up": (d, h), "down": (h, d)}
    return {n: (rng.random(s) < p).astype(np.float32) for n, s in shapes.items()}


def assert_fixed_point(out, structure):
    for units, consumers in structure:
        for unit in units:
            for p in unit:
                indeg = dense(out[p]).sum(axis=0)
                for q in unit:
                    # coupled layers agree on which channels have incoming links
                    assert np.array_equal(indeg > 0, dense(out[q]).sum(axis=0) > 0)
        has_in = np.zeros(dense(out[units[0][0]]).shape[1], dtype=bool)
        for unit in units:
            has_in |= dense(out[unit[0]]).sum(axis=0) > 0
        for c in consumers:
            assert not np.any(dense(out[c]).sum(axis=1)[~has_in]), "consumer reads a dead channel"
        if consumers:
            has_out = np.zeros_like(has_in)
            for c in consumers:
                has_out |= dense(out[c]).sum(axis=1) > 0
            assert np.array_equal(has_in, has_out)


# ---------------------------------------------------------------- hand-built cases
def test_mlp_chain_by_hand():
    A1 = np.array([[1, 1, 0], [0, 1, 0]])   # hidden 2 has no incoming link
    A2 = np.array([[1, 0], [0, 0], [1, 1]])  # hidden 1 has no outgoing link
    A3 = np.array([[1], [1]])
    out, rep = ns.percolate([A1, A2, A3])
    assert dense(out[0]).tolist() == [[1, 0, 0], [0, 0, 0]]
    assert dense(out[1]).tolist() == [[1, 0], [0, 0], [0, 0]]
    assert dense(out[2]).tolist() == [[1], [0]]
    assert rep.layers[0].links_removed == 2 and rep.layers[0].outputs_removed == 1
    assert rep.layers[0].inputs_removed == 1  # input 1 lost its only link to dead hidden 1
    assert rep.layers[1].inputs_removed == 1 and rep.layers[1].outputs_removed == 1
    assert rep.layers[2].inputs_removed == 1
    assert rep.links_removed == 5
    assert isinstance(rep, PercolationReport) and "5 link(s) removed" in str(rep)


def test_chain_ends_never_removed():
    # input neuron 0 has no link and output neuron 1 none: percolation leaves them alone,
    # and links of input 1 / output 0 survive as long as a path exists
    A1 = np.array([[0, 0], [1, 1]])
    A2 = np.array([[1, 0], [1, 0]])
    out, rep = ns.percolate([A1, A2])
    assert dense(out[0]).tolist() == [[0, 0], [1, 1]]
    assert dense(out[1]).tolist() == [[1, 0], [1, 0]]
    assert rep.links_removed == 0 and rep.iterations == 1
    # a single layer has nothing hidden
    single, rep1 = ns.percolate([np.array([[1, 0], [0, 0]])])
    assert dense(single[0]).tolist() == [[1, 0], [0, 0]] and rep1.links_removed == 0


def one_fixed_order_pass(m):
    """The authors' order: backward sweep, forward sweep, then the coupling check, once."""
    M = {k: dense(v).copy() for k, v in m.items()}
    # backward: hidden neurons with no outgoing link lose their incoming links
    dead = M["down"].sum(axis=1) == 0
    M["gate"][:, dead] = 0
    M["up"][:, dead] = 0
    dead = (M["gate"].sum(axis=1) + M["up"].sum(axis=1)) == 0
    M["pre"][:, dead] = 0
    # forward: hidden neurons with no incoming link lose their outgoing links
    dead = M["pre"].sum(axis=0) == 0
    M["gate"][dead] = 0
    M["up"][dead] = 0
    dead = (M["gate"].sum(axis=0) + M["up"].sum(axis=0)) == 0
    M["down"][dead] = 0
    # coupling: a channel survives only if gate and up both keep an incoming link
    dead = (M["gate"].sum(axis=0) == 0) | (M["up"].sum(axis=0) == 0)
    M["gate"][:, dead] = 0
    M["up"][:, dead] = 0
    M["down"][dead] = 0
    return M


def test_one_fixed_order_pass_is_not_enough():
    m = {"pre": np.array([[1, 1], [1, 1]]),
         "gate": np.array([[1, 0], [0, 1]]),   # channel 1 fed only by hidden 1
         "up": np.array([[1, 0], [0, 0]]),     # up has no link on channel 1 -> channel 1 dies
         "down": np.array([[1], [1]])}
    pairs = [("chain", "pre", "gate"), ("chain", "pre", "up"), ("couple", "gate", "up"),
             ("chain", "gate", "down"), ("chain", "up", "down")]
    once = one_fixed_order_pass(m)
    # after one pass, hidden neuron 1 of `pre` has incoming links but no outgoing link
    assert once["pre"][:, 1].any() and not (once["gate"][1].any() or once["up"][1].any())
    out, rep = ns.percolate(m, pairs=pairs)
    assert dense(out["pre"]).tolist() == [[1, 0], [1, 0]]
    assert dense(out["gate"]).tolist() == [[1, 0], [0, 0]]
    assert dense(out["down"]).tolist() == [[1], [0]]
    assert rep.iterations >= 3  # two sweeps that remove, one that confirms
    ref = reference(m, [([("pre",)], ["gate", "up"]), ([("gate", "up")], ["down"])])
    for k in m:
        assert np.array_equal(dense(out[k]), ref[k])


def test_plain_chain_one_backward_forward_pass_suffices():
    # the complement of the case above: without coupling, backward-then-forward once
    # already reaches the fixed point (forward removals never empty a neuron's outputs)
    for seed in range(200):
        rng = np.random.default_rng(seed)
        sizes = rng.integers(1, 8, size=int(rng.integers(3, 7)))
        L = [(rng.random((sizes[i], sizes[i + 1])) < 0.3).astype(int)
             for i in range(len(sizes) - 1)]
        once = [x.copy() for x in L]
        for l in range(len(once) - 1, 0, -1):
            once[l - 1][:, once[l].sum(axis=1) == 0] = 0
        for l in range(len(once) - 1):
            once[l + 1][once[l].sum(axis=0) == 0] = 0
        out, _ = ns.percolate(L)
        assert all(np.array_equal(a, dense(b)) for a, b in zip(once, out, strict=True))


def test_transformer_block_by_hand():
    blk = {"q": np.array([[1, 0], [0, 1]]), "k": np.array([[1, 0], [0, 0]]),
           "v": np.array([[0, 1], [1, 0]]), "o": np.array([[0, 0], [1, 1]]),
           "fc1": np.array([[1, 0, 1], [0, 0, 1]]), "fc2": np.array([[1, 1], [1, 0], [0, 0]])}
    pairs = [("couple", "q", "k"), ("chain", "v", "o"), ("chain", "fc1", "fc2")]
    out, rep = ns.percolate(blk, pairs=pairs)
    assert list(out) == list(blk)
    assert dense(out["q"]).tolist() == [[1, 0], [0, 0]]      # channel 1: k has no link
    assert dense(out["k"]).tolist() == [[1, 0], [0, 0]]
    assert dense(out["v"]).tolist() == [[0, 1], [0, 0]]      # channel 0 of v: o row 0 empty
    assert dense(out["o"]).tolist() == [[0, 0], [1, 1]]
    assert dense(out["fc1"]).tolist() == [[1, 0, 0], [0, 0, 0]]  # hidden 2: fc2 row 2 empty
    assert dense(out["fc2"]).tolist() == [[1, 1], [0, 0], [0, 0]]  # hidden 1: no incoming
    assert rep.layers["q"].outputs_removed == 1 and rep.layers["k"].outputs_removed == 0


def test_pairs_semantics_uncoupled_producers_any():
    # two uncoupled producers writing the same channels: one incoming link is enough
    m = {"a": np.array([[1, 0]]), "b": np.array([[0, 0]]), "c": np.array([[1], [1]])}
    out, _ = ns.percolate(m, pairs=[("chain", "a", "c"), ("chain", "b", "c")])
    assert dense(out["c"]).tolist() == [[1], [0]]
    assert dense(out["a"]).tolist() == [[1, 0]]
    # coupled: both must keep a link
    out2, _ = ns.percolate(m, pairs=[("couple", "a", "b"), ("chain", "a", "c"),
                                     ("chain", "b", "c")])
    assert dense(out2["a"]).sum() == 0 and dense(out2["c"]).sum() == 0


def test_mapping_without_pairs_is_untouched():
    m = {"x": np.array([[1, 0], [0, 0]]), "y": np.array([[0, 0], [0, 1]])}
    out, rep = ns.percolate(m)
    assert isinstance(out, dict) and rep.links_removed == 0
    assert all(np.array_equal(dense(out[k]), m[k]) for k in m)


def test_sequence_pairs_add_to_implicit_chain():
    A = [np.array([[1, 1]]), np.array([[1], [0]]), np.array([[1, 1]])]
    # layer 0's outputs are layer 1's inputs implicitly; the coupling of 0 with 2 adds to that
    out, _ = ns.percolate(A, pairs=[("couple", 0, 2)])
    assert dense(out[0]).tolist() == [[1, 0]]
    assert dense(out[2]).tolist() == [[1, 0]]  # coupled to 0: channel 1 died with layer 0's


# ---------------------------------------------------------------- random: fixed point + reference
@pytest.mark.parametrize("seed", range(25))
def test_random_chains_match_reference(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 5))
    sizes = rng.integers(1, 7, size=n + 1)
    p = float(rng.uniform(0.1, 0.5))
    layers = [(rng.random((sizes[i], sizes[i + 1])) < p) for i in range(n)]
    out, rep = ns.percolate(layers)
    ref = reference(dict(enumerate(layers)), chain_structure(n))
    for i in range(n):
        assert np.array_equal(dense(out[i]), ref[i])
    assert_fixed_point(dict(enumerate(out)), chain_structure(n))
    again, rep2 = ns.percolate(out)
    assert rep2.links_removed == 0 and rep2.iterations == 1
    assert all(np.array_equal(dense(a), dense(b)) for a, b in zip(out, again, strict=True))
    assert rep.links_removed == sum(int(L.sum()) for L in layers) - sum(o.nnz for o in out)


@pytest.mark.parametrize("seed", range(15))
def test_random_llama_blocks_match_reference(seed):
    rng = np.random.default_rng(100 + seed)
    blk = llama_block(rng, p=float(rng.uniform(0.1, 0.4)))
    out, _ = ns.percolate(blk, pairs=LLAMA_PAIRS)
    ref = reference(blk, LLAMA_STRUCTURE)
    for k in blk:
        assert np.array_equal(dense(out[k]), ref[k]), k
    assert_fixed_point(out, LLAMA_STRUCTURE)
    again, rep2 = ns.percolate(out, pairs=LLAMA_PAIRS)
    assert rep2.links_removed == 0


def test_torch_and_sparse_inputs():
    torch = pytest.importorskip("torch")
    A1 = torch.tensor([[0.5, 0.0], [0.0, 0.0]])
    A2 = sp.csr_matrix(np.array([[1], [1]]))
    out, _ = ns.percolate([A1, A2])
    assert all(isinstance(o, sp.csr_array) and o.dtype == bool for o in out)
    assert dense(out[1]).tolist() == [[1], [0]]


# ---------------------------------------------------------------- bad input
def test_shapes_that_do_not_chain():
    with pytest.raises(ValueError, match=r"layer 0 has shape \(3, 4\).*layer 1 has shape \(5, 2\)"):
        ns.percolate([np.ones((3, 4)), np.ones((5, 2))])
    with pytest.raises(ValueError, match=r"'v' has shape \(2, 3\).*'o' has shape \(2, 2\)"):
        ns.percolate({"v": np.ones((2, 3)), "o": np.ones((2, 2))}, pairs=[("chain", "v", "o")])


def test_bad_pairs_and_containers():
    m = {"a": np.ones((2, 2)), "b": np.ones((2, 3))}
    with pytest.raises(ValueError, match="'zz'"):
        ns.percolate(m, pairs=[("couple", "a", "zz")])
    with pytest.raises(ValueError, match="same number of outputs"):
        ns.percolate(m, pairs=[("couple", "a", "b")])
    with pytest.raises(ValueError, match="not allowed"):
        ns.percolate(m, pairs=[("glue", "a", "b")])
    with pytest.raises(ValueError, match="exactly two"):
        ns.percolate(m, pairs=[("chain", "a", "b", "a")])
    with pytest.raises(TypeError, match="single array"):
        ns.percolate(np.ones((2, 2)))
    with pytest.raises(ValueError, match="empty"):
        ns.percolate([])


def test_analysis_modules_import_without_torch():
    import subprocess
    import sys

    code = ("import sys, netshape.percolation, netshape.metrics, netshape.io._checkpoint, "
            "netshape.analyze, netshape.plot._training, netshape._cli.analyze; "
            "assert 'torch' not in sys.modules, 'torch imported at module import time'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_pairs_inferred_without_torch_match_adapter_rules():
    """``netshape.percolation._pairs`` (torch-free) gives LLaMA / Transformer / MLP relations."""
    from netshape.percolation._pairs import infer_pairs

    llama = [("b.q_proj", 8, 8), ("b.k_proj", 8, 8), ("b.v_proj", 8, 8), ("b.o_proj", 8, 8),
             ("b.gate_proj", 8, 20), ("b.up_proj", 8, 20), ("b.down_proj", 20, 8)]
    assert sorted(infer_pairs(llama)) == sorted([
        ("couple", "b.q_proj", "b.k_proj"), ("chain", "b.v_proj", "b.o_proj"),
        ("couple", "b.gate_proj", "b.up_proj"), ("chain", "b.gate_proj", "b.down_proj"),
        ("chain", "b.up_proj", "b.down_proj")])
    # shapes that do not chain are not related; different parents are not chained
    assert infer_pairs([("a.0", 4, 6), ("a.1", 5, 3)]) == []
    assert infer_pairs([("a.0", 4, 6), ("b.0", 6, 3)]) == []
    assert infer_pairs([("0", 4, 6), ("1", 6, 3), ("2", 3, 2)]) == [("chain", "0", "1"),
                                                                   ("chain", "1", "2")]
