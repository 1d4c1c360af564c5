"""Tiny models for the DST adapter tests: an MLP, a TransformerEncoder, a LLaMA-style block."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402


class MLP(nn.Module):
    def __init__(self, sizes=(12, 16, 16, 16, 3)):
        super().__init__()
        layers = []
        for a, b in zip(sizes, sizes[1:], strict=False):
            layers += [nn.Linear(a, b), nn.ReLU()]
        self.net = nn.Sequential(*layers[:-1])

    def forward(self, x):
        return self.net(x)


class TinyTransformer(nn.Module):
    def __init__(self, vocab=20, d=16, ff=24, n_classes=3):
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        layer = nn.TransformerEncoderLayer(d, nhead=2, dim_feedforward=ff, dropout=0.0,
                                           batch_first=True)
        self.enc = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.head = nn.Linear(d, n_classes)

    def forward(self, x):
        return self.head(self.enc(self.emb(x)).mean(dim=1))


class LlamaBlock(nn.Module):
    """Attention (q/k/v/o) + SwiGLU MLP (gate/up/down), pre-norm residuals."""

    def __init__(self, d=16, ff=24, heads=2):
        super().__init__()
        self.h = heads
        self.attn = nn.Module()
        for n in ("q_proj", "k_proj", "v_proj", "o_proj"):
            setattr(self.attn, n, nn.Linear(d, d, bias=False))
        self.mlp = nn.Module()
        self.mlp.gate_proj = nn.Linear(d, ff, bias=False)
        self.mlp.up_proj = nn.Linear(d, ff, bias=False)
        self.mlp.down_proj = nn.Linear(ff, d, bias=False)
        self.n1, self.n2 = nn.LayerNorm(d), nn.LayerNorm(d)

    def forward(self, x):
        b, t, d = x.shape
        h = self.n1(x)
        a = self.attn

        def split(z):
            return z.view(b, t, self.h, d // self.h).transpose(1, 2)

        q, k, v = split(a.q_proj(h)), split(a.k_proj(h)), split(a.v_proj(h))
        att = torch.softmax(q @ k.transpose(-1, -2) / (d // self.h) ** 0.5, dim=-1) @ v
        x = x + a.o_proj(att.transpose(1, 2).reshape(b, t, d))
        h = self.n2(x)
        m = self.mlp
        return x + m.down_proj(torch.nn.functional.silu(m.gate_proj(h)) * m.up_proj(h))


class TinyLlama(nn.Module):
    def __init__(self, vocab=20, d=16, ff=24):
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.blocks = nn.ModuleList([LlamaBlock(d, ff), LlamaBlock(d, ff)])
        self.lm_head = nn.Linear(d, vocab, bias=False)

    def forward(self, x):
        h = self.emb(x)
        for blk in self.blocks:
            h = blk(h)
        return self.lm_head(h).mean(dim=1)


def make_model(kind: str, seed: int = 0):
    torch.manual_seed(seed)
    return {"mlp": MLP, "transformer": TinyTransformer, "llama": TinyLlama}[kind]()


def make_batch(kind: str, seed: int, n: int = 8):
    g = torch.Generator().manual_seed(seed)
    if kind == "mlp":
        x = torch.randn(n, 12, generator=g)
        y = torch.randint(0, 3, (n,), generator=g)
    else:
        x = torch.randint(0, 20, (n, 5), generator=g)
        y = torch.randint(0, 3 if kind == "transformer" else 20, (n,), generator=g)
    return x, y


def train(model, opt, dst, kind: str, steps: int, start: int = 0):
    """Run ``steps`` SGD steps on deterministic batches; return the list of losses."""
    losses = []
    for i in range(start, start + steps):
        x, y = make_batch(kind, i)
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        dst.step()
        losses.append(float(loss.detach()))
    return losses


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models: intra-op threads only spin on a shared machine (restored afterwards)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def tiny():
    return make_model, make_batch, train
