"""sparsify leaves no side effects: tracing only for percolation, isolated; errors undo swaps."""

from __future__ import annotations

import warnings

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from netshape.torch import find_slots, sparsify  # noqa: E402
from netshape.torch.dataflow import trace_pairs  # noqa: E402


class _BNNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.bn = nn.Linear(8, 16), nn.BatchNorm1d(16)
        self.drop, self.b = nn.Dropout(0.5), nn.Linear(16, 3)

    def forward(self, x):
        return self.b(self.drop(torch.relu(self.bn(self.a(x)))))


def _buffers(model):
    return {k: v.clone() for k, v in model.state_dict().items() if "running" in k
            or "num_batches" in k}


@pytest.mark.parametrize("method", ["set", "chts"])
@pytest.mark.parametrize("kw", ["example_inputs", "calibration"])
def test_sparsify_changes_no_buffers_and_no_rng(method, kw):
    torch.manual_seed(0)
    model = _BNNet().train()
    before = _buffers(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    batch = torch.randn(32, 8)
    rng_before = torch.random.get_rng_state()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        sparsify(model, opt, method, density=0.5, total_steps=10, update_every=5, rng=0,
                 **{kw: batch})
    assert torch.equal(torch.random.get_rng_state(), rng_before)
    after = _buffers(model)
    assert int(after["bn.num_batches_tracked"]) == 0
    for k, v in before.items():
        assert torch.equal(after[k], v), k
    assert model.training and model.bn.training


def test_csti_calibration_leaves_buffers():
    torch.manual_seed(0)
    model = _BNNet().train()
    before = _buffers(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        sparsify(model, opt, "chts", density=0.5, total_steps=10, update_every=5, rng=0,
                 init="csti", calibration=torch.randn(16, 8))
    for k, v in before.items():
        assert torch.equal(_buffers(model)[k], v), k


def test_trace_uses_a_bounded_number_of_rows():
    from netshape.torch import dataflow

    seen = []

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.head = nn.Linear(4, 6), nn.Linear(6, 5), nn.Linear(5, 2)

        def forward(self, x):
            seen.append(x.shape[0])
            return self.head(self.b(torch.relu(self.a(x))))

    m = Net()
    pairs = trace_pairs(m, find_slots(m), torch.randn(1000, 4))
    assert seen == [dataflow.TRACE_ROWS]
    assert pairs == [("chain", "a", "b")]


def test_no_trace_without_percolation():
    calls = []

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(4, 6), nn.Linear(6, 2)

        def forward(self, x):
            calls.append(1)
            return self.b(torch.relu(self.a(x)))

    m = Net()
    sparsify(m, torch.optim.SGD(m.parameters(), lr=0.1), "set", density=0.5, total_steps=10,
             calibration=torch.randn(2, 4), rng=0)
    assert calls == []  # a calibration batch is traced only for percolation


# ---------------------------------------------------------------- 13: repeated calls, pow
def test_layer_called_twice_on_different_producers_gets_no_chain():
    class Loop(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.c = nn.Linear(4, 6), nn.Linear(4, 6)
            self.b, self.head = nn.Linear(6, 6), nn.Linear(6, 2)

        def forward(self, x):
            return self.head(self.b(torch.relu(self.a(x))) + self.b(torch.relu(self.c(x))))

    m = Loop()
    with pytest.warns(UserWarning, match=r"\['b'\] are called more than once"):
        pairs = trace_pairs(m, find_slots(m), torch.randn(2, 4))
    assert not [r for r in pairs if r[0] == "chain" and r[2] == "b"]


def test_layer_called_twice_on_the_same_producer_keeps_its_chain():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.head = nn.Linear(4, 6), nn.Linear(6, 6), nn.Linear(6, 2)

        def forward(self, x):
            h = torch.relu(self.a(x))
            return self.head(self.b(h) + self.b(h * 2))

    m = Twice()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        pairs = trace_pairs(m, find_slots(m), torch.randn(2, 4))
    assert ("chain", "a", "b") in pairs


@pytest.mark.parametrize("exponent, coupled", [(2, True), (0.5, True), (0, False), (-1, False)])
def test_pow_keeps_zeros_only_for_positive_exponents(exponent, coupled):
    class Gated(nn.Module):
        def __init__(self):
            super().__init__()
            self.gate, self.up = nn.Linear(4, 6), nn.Linear(4, 6)
            self.down, self.head = nn.Linear(6, 4), nn.Linear(4, 2)

        def forward(self, x):
            return self.head(self.down(torch.relu(self.gate(x)) ** exponent * self.up(x)))

    m = Gated()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        pairs = trace_pairs(m, find_slots(m), torch.rand(2, 4) + 1)
    assert (("couple", "gate", "up") in pairs) is coupled


# ---------------------------------------------------------------- 8: errors leave GPT-2 alone
def test_failed_sparsify_leaves_conv1d_layers():
    pytest.importorskip("transformers")
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = GPT2Config(n_layer=1, n_head=2, n_embd=16, vocab_size=50, n_positions=16)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randint(0, 50, (2, 8))
    model(x).logits.sum().backward()
    opt.step()
    types = {n: type(m).__name__ for n, m in model.named_modules()}
    weights = {n: p.detach().clone() for n, p in model.named_parameters()}
    state = {id(p): {k: v.clone() for k, v in opt.state[p].items() if torch.is_tensor(v)}
             for p in model.parameters()}
    for bad in ({"include": "no_such_layer*"}, {"execution": "sparse", "include": "*.c_attn"}):
        with pytest.raises(ValueError):
            sparsify(model, opt, "set", density=0.1, total_steps=10, rng=0, **bad)
        assert {n: type(m).__name__ for n, m in model.named_modules()} == types
        for n, p in model.named_parameters():
            assert torch.equal(p.detach(), weights[n]), n
            for k, v in state[id(p)].items():
                assert torch.equal(opt.state[p][k], v), (n, k)
    sparsify(model, opt, "set", density=0.1, total_steps=10, rng=0)  # still usable
