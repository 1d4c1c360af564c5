"""Unit relations of percolate (GQA, RoPE) against a plain loop over the attention algebra."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import netshape as ns
from netshape.percolation._units import head_units


def _partner(i: int, d: int, r: int, style: str) -> set[int]:
    """Channels of a head that meet channel i in the score (i itself and its rotary partner)."""
    if i >= r:
        return {i}
    if style == "half":
        return {i, (i + r // 2) % r}
    return {i, i ^ 1}


def _oracle(q, k, v, o, H, G, d, r, style):
    """Remove q/k columns and v columns / o rows by the per-channel definition, to a fixed point."""
    q, k, v, o = (np.asarray(x, dtype=bool).copy() for x in (q, k, v, o))
    rep = H // G
    while True:
        qi, ki = q.any(axis=0), k.any(axis=0)
        vi, oo = v.any(axis=0), o.any(axis=1)
        q_keep = np.zeros(H * d, bool)
        k_keep = np.zeros(G * d, bool)
        for h in range(H):
            for i in range(d):
                # q_{h,i} meets k_{g(h), j} for j in its rotary pair
                q_keep[h * d + i] = qi[h * d + i] and any(
                    ki[(h // rep) * d + j] for j in _partner(i, d, r, style))
        for g in range(G):
            for i in range(d):
                k_keep[g * d + i] = ki[g * d + i] and any(
                    qi[h * d + j] for h in range(g * rep, (g + 1) * rep)
                    for j in _partner(i, d, r, style))
        v_keep = np.array([vi[c] and any(oo[h * d + c % d] for h in range(
            (c // d) * rep, (c // d + 1) * rep)) for c in range(G * d)])
        o_keep = np.array([oo[j] and vi[((j // d) // rep) * d + j % d] for j in range(H * d)])
        new = (q & q_keep[None, :], k & k_keep[None, :], v & v_keep[None, :],
               o & o_keep[:, None])
        if all((a == b).all() for a, b in zip(new, (q, k, v, o), strict=True)):
            return new
        q, k, v, o = new


@pytest.mark.parametrize("seed", range(40))
def test_head_relations_match_the_definition(seed):
    rng = np.random.default_rng(seed)
    G = int(rng.integers(1, 4))
    H = G * int(rng.integers(1, 4))
    d = int(rng.choice([2, 4, 6]))
    r = int(rng.choice([x for x in range(0, d + 1, 2)]))
    style = str(rng.choice(["half", "interleaved"]))
    D = int(rng.integers(2, 7))
    p = rng.uniform(0.05, 0.4)
    q, k = rng.random((D, H * d)) < p, rng.random((D, G * d)) < p
    v, o = rng.random((D, G * d)) < p, rng.random((H * d, D)) < p
    spec = {"heads": H, "kv_heads": G, "head_dim": d, "rotary_dim": r, "rotary": style}
    out, _ = ns.percolate({"q": q, "k": k, "v": v, "o": o}, pairs=[
        ("couple", "q", "k", spec),
        ("chain", "v", "o", {"heads": H, "kv_heads": G, "head_dim": d})])
    want = _oracle(q, k, v, o, H, G, d, r, style)
    for name, w in zip("qkvo", want, strict=True):
        assert (out[name].toarray() == w).all(), (name, spec)


def test_explicit_units_equal_the_head_form():
    rng = np.random.default_rng(3)
    q, k = rng.random((5, 16)) < 0.3, rng.random((5, 8)) < 0.3
    uq, uk = head_units(4, 2, 4, rotary_dim=4)
    a, _ = ns.percolate({"q": q, "k": k}, pairs=[
        ("couple", "q", "k", {"heads": 4, "kv_heads": 2, "head_dim": 4, "rotary_dim": 4})])
    b, _ = ns.percolate({"q": q, "k": k}, pairs=[
        ("couple", "q", "k", {"units": {"q": uq.tolist(), "k": uk.tolist()}})])
    assert all((a[n] != b[n]).nnz == 0 for n in "qk")


def test_gqa_key_channel_dies_only_with_its_whole_group():
    # 4 query heads, 2 key heads, head_dim 2, no rotary: k channel (0, 1) is read by q heads 0, 1
    q = np.ones((3, 8), bool)
    k = np.ones((3, 4), bool)
    q[:, 1] = False  # head 0, channel 1 dead
    out, rep = ns.percolate({"q": q, "k": k}, pairs=[
        ("couple", "q", "k", {"heads": 4, "kv_heads": 2, "head_dim": 2})])
    assert rep.links_removed == 0
    q[:, 3] = False  # head 1, channel 1 dead too: the whole group
    out, rep = ns.percolate({"q": q, "k": k}, pairs=[
        ("couple", "q", "k", {"heads": 4, "kv_heads": 2, "head_dim": 2})])
    assert rep.links_removed == 3 and not out["k"][:, [1]].toarray().any()


@pytest.mark.parametrize("pairs, match", [
    ([("couple", "q", "k", {"heads": 3, "kv_heads": 2, "head_dim": 2})], "multiple"),
    ([("couple", "q", "k", {"heads": 4, "kv_heads": 2, "head_dim": 3})], "need"),
    ([("couple", "q", "k", {"heads": 4, "kv_heads": 2})], "takes"),
    ([("couple", "q", "k", {"heads": 4, "kv_heads": 2, "head_dim": 2, "rotary_dim": 3})],
     "even"),
    ([("couple", "q", "x", {"heads": 4, "kv_heads": 2, "head_dim": 2})], "'x'"),
    ([("couple", "q", "k", {"units": {"q": [0] * 8}})], "both"),
    ([("couple", "q", "k", {"heads": 4, "kv_heads": 2, "head_dim": 2}), ("couple", "k", "c")],
     "another relation"),
])
def test_bad_unit_relations_are_rejected(pairs, match):
    layers = {"q": sp.csr_array(np.ones((3, 8))), "k": sp.csr_array(np.ones((3, 4))),
              "c": sp.csr_array(np.ones((3, 4)))}
    with pytest.raises(ValueError, match=match):
        ns.percolate(layers, pairs=pairs)


def test_analyze_names_never_chain_parallel_siblings():
    from collections import OrderedDict

    from netshape.analyze._measures import infer_pairs

    sq = sp.csr_array(np.ones((8, 8)))
    bert = OrderedDict((f"layer.0.attention.self.{n}", sq) for n in ("query", "key", "value"))
    assert infer_pairs(bert) == []
    mlp = OrderedDict([("net.0", sp.csr_array(np.ones((4, 8)))), ("net.2", sq)])
    assert infer_pairs(mlp) == [("chain", "net.0", "net.2")]
