"""Traced percolation relations on hand-written blocks (torch only): packed qkv, residual
uses, gates whose zeros do not survive, ops the tracer does not follow."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

import netshape as ns  # noqa: E402
from netshape.torch import find_slots, sparsify, to_biadjacency  # noqa: E402
from netshape.torch.dataflow import trace_pairs  # noqa: E402


class ViTBlock(nn.Module):
    """timm-style attention: one packed qkv Linear, reshape/permute/unbind into heads."""

    def __init__(self, d=16, heads=2):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc1, self.fc2 = nn.Linear(d, 2 * d), nn.Linear(2 * d, d)
        self.head = nn.Linear(d, 3)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(self.norm1(x)).reshape(B, N, 3, self.heads, C // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        attn = ((q @ k.transpose(-2, -1)) * (C // self.heads) ** -0.5).softmax(-1)
        x = x + self.proj((attn @ v).transpose(1, 2).reshape(B, N, C))
        x = x + self.fc2(F.gelu(self.fc1(self.norm2(x))))
        return self.head(x.mean(1))


def _trace(model, x, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pairs = trace_pairs(model, find_slots(model, **kw), x)
    return pairs, [str(w.message) for w in caught]


def test_packed_qkv_is_split_into_slots_and_traced():
    torch.manual_seed(0)
    model = ViTBlock()
    pairs, msgs = _trace(model, torch.randn(2, 5, 16), packed={"qkv": ("q", "k", "v")})
    assert pairs == [("couple", "qkv.q", "qkv.k"), ("chain", "qkv.v", "proj"),
                     ("chain", "fc1", "fc2")]
    assert not msgs


def test_undeclared_packed_qkv_gets_no_relation_and_a_warning_that_says_what_to_do():
    torch.manual_seed(0)
    pairs, msgs = _trace(ViTBlock(), torch.randn(2, 5, 16))
    assert pairs == [("chain", "fc1", "fc2")]
    assert len(msgs) == 1 and "packed={'qkv'" in msgs[0] and "only part of qkv" in msgs[0]


def test_packed_dead_v_channel_percolates_into_proj_only():
    torch.manual_seed(0)
    model = ViTBlock()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    dst = sparsify(model, opt, "set", density=0.7, rng=0, packed={"qkv": ("q", "k", "v")},
                   example_inputs=torch.randn(2, 5, 16), total_steps=100)
    base, _ = ns.percolate({n: to_biadjacency(m) for n, m in dst.masks.items()}, pairs=dst.pairs)
    layers = {n: A.tolil() for n, A in base.items()}
    layers["qkv.v"][:, 6] = False
    out, _ = ns.percolate({n: A.tocsr() for n, A in layers.items()}, pairs=dst.pairs)
    for n, A in out.items():
        want = layers[n].toarray()
        if n == "proj":
            assert want[6].any()
            want[6] = False
        assert (A.toarray() == want).all(), n


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.head = nn.Linear(8, 8), nn.Linear(8, 8), nn.Linear(8, 2)

    def forward(self, x):
        h = self.fc1(x)
        return self.head(self.fc2(torch.relu(h)) + h)  # h is read twice


def test_a_producer_read_elsewhere_is_not_chained():
    torch.manual_seed(0)
    pairs, msgs = _trace(Residual(), torch.randn(3, 8))
    assert pairs == []
    assert len(msgs) == 1 and "fc1 -> fc2" in msgs[0] and "read elsewhere" in msgs[0]


class SigmoidGate(nn.Module):
    def __init__(self):
        super().__init__()
        self.gate, self.up, self.down = nn.Linear(6, 10), nn.Linear(6, 10), nn.Linear(10, 6)
        self.head = nn.Linear(6, 2)

    def forward(self, x):
        return self.head(x + self.down(torch.sigmoid(self.gate(x)) * self.up(x)))


def test_a_gate_whose_zeros_do_not_survive_is_not_coupled():
    # sigmoid(0) = 1/2: a dead gate channel still passes up's channel, so no couple
    torch.manual_seed(0)
    pairs, msgs = _trace(SigmoidGate(), torch.randn(3, 6))
    assert pairs == [("chain", "gate", "down"), ("chain", "up", "down")]
    assert not msgs


class Einsum(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b, self.head = nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 2)

    def forward(self, x):
        return self.head(self.b(torch.einsum("ij,jk->ik", self.a(x), torch.eye(4))))


def test_an_op_the_tracer_does_not_follow_gives_no_relation_and_is_named():
    pairs, msgs = _trace(Einsum(), torch.randn(3, 4))
    assert pairs == []
    assert len(msgs) == 1 and "einsum (a)" in msgs[0]


def test_sequential_mlp_traced_equals_the_name_rules(tiny):
    make_model, _, _ = tiny
    model = make_model("mlp")
    from netshape.torch import percolation_pairs

    slots = find_slots(model)
    assert trace_pairs(model, slots, torch.randn(4, 12)) == percolation_pairs(slots, model)


def test_traced_pairs_are_used_by_the_engine():
    torch.manual_seed(0)
    model = SigmoidGate()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    dst = sparsify(model, opt, "chts", density=0.5, total_steps=4, update_every=2, rng=0,
                   calibration=torch.randn(3, 6))  # calibration doubles as the example
    assert dst.pairs == [("chain", "gate", "down"), ("chain", "up", "down")]
    pruned = {n: m.clone() for n, m in dst.masks.items()}
    pruned["down"][:, 4] = False  # channel 4 has no consumer left: gate and up lose it
    dst._percolate(pruned)
    assert not pruned["gate"][4].any() and not pruned["up"][4].any()
    assert np.array_equal(pruned["gate"][:4].numpy(), dst.masks["gate"][:4].numpy())
