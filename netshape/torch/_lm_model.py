r"""A small LLaMA-style decoder: RMSNorm, rotary position embeddings, SwiGLU, optional GQA.

Block :math:`\ell` maps the residual stream :math:`x` (shape ``(batch, T, d)``) to

.. math::
    h = x + W_o\,\mathrm{Attn}\big(R(W_q \bar x), R(W_k \bar x), W_v \bar x\big), \qquad
    x' = h + W_{down}\big(\mathrm{silu}(W_{gate} \bar h) \odot W_{up} \bar h\big)

with :math:`\bar x = \mathrm{RMSNorm}(x)`, causal softmax attention over
``n_heads`` query heads sharing ``n_kv_heads`` key/value heads (grouped-query
attention when ``n_kv_heads < n_heads``) and :math:`R` the rotary embedding,
which turns channel pair :math:`(i, i + d_h/2)` of each head by the angle
:math:`t\,\theta^{-2i/d_h}` at position :math:`t`. Layer names follow LLaMA
(``blocks.N.attn.q_proj/k_proj/v_proj/o_proj``,
``blocks.N.mlp.gate_proj/up_proj/down_proj``), all without bias, so
:func:`netshape.torch.sparsify` finds them with ``include="blocks.*"``; the
token embedding ``embed`` and the output head ``head`` stay dense.

Examples
--------
>>> import torch
>>> from netshape.lm import LMShape, build_decoder
>>> m = build_decoder(LMShape(d_model=32, n_layers=2, n_heads=4, ffn=64, context=16), seed=0)
>>> m(torch.zeros(3, 16, dtype=torch.long)).shape
torch.Size([3, 16, 256])
>>> [n.split(".")[-1] for n, _ in m.named_modules() if n.startswith("blocks.0.") and
...  n.count(".") == 3]
['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ..lm.shape import LMShape

__all__ = ["VOCAB", "Decoder", "LMShape", "build_decoder", "percolation_pairs"]

#: byte-level tokens
VOCAB = 256


class RMSNorm(nn.Module):
    r""":math:`x / \sqrt{\mathrm{mean}(x^2) + \epsilon} \cdot g` over the last dimension."""

    def __init__(self, d: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def _rotary_tables(context: int, head_dim: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    inv = theta ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    ang = torch.arange(context, dtype=torch.float64)[:, None] * inv[None, :]
    ang = torch.cat([ang, ang], dim=1)  # channel i and i + head_dim/2 share an angle
    return ang.cos().float(), ang.sin().float()


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    turned = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + turned * sin


class Attention(nn.Module):
    def __init__(self, s: LMShape) -> None:
        super().__init__()
        self.n_heads, self.n_kv = s.n_heads, s.n_kv_heads
        self.head_dim = s.d_model // s.n_heads
        kv_dim = self.n_kv * self.head_dim
        self.q_proj = nn.Linear(s.d_model, s.d_model, bias=False)
        self.k_proj = nn.Linear(s.d_model, kv_dim, bias=False)
        self.v_proj = nn.Linear(s.d_model, kv_dim, bias=False)
        self.o_proj = nn.Linear(s.d_model, s.d_model, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.n_kv, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.n_kv, self.head_dim).transpose(1, 2)
        q, k = _rotate(q, cos[:t], sin[:t]), _rotate(k, cos[:t], sin[:t])
        if self.n_kv != self.n_heads:  # query heads h*g .. h*g+g-1 read key/value head h
            g = self.n_heads // self.n_kv
            k, v = k.repeat_interleave(g, dim=1), v.repeat_interleave(g, dim=1)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.o_proj(y.transpose(1, 2).reshape(b, t, -1))


class SwiGLU(nn.Module):
    def __init__(self, s: LMShape) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(s.d_model, s.ffn, bias=False)
        self.up_proj = nn.Linear(s.d_model, s.ffn, bias=False)
        self.down_proj = nn.Linear(s.ffn, s.d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, s: LMShape) -> None:
        super().__init__()
        self.attn_norm, self.attn = RMSNorm(s.d_model), Attention(s)
        self.mlp_norm, self.mlp = RMSNorm(s.d_model), SwiGLU(s)

    def forward(self, x, cos, sin):
        x = x + self.attn(self.attn_norm(x), cos, sin)
        return x + self.mlp(self.mlp_norm(x))


class Decoder(nn.Module):
    """Token ids ``(batch, T)`` -> next-token logits ``(batch, T, 256)``."""

    def __init__(self, shape: LMShape) -> None:
        super().__init__()
        s = shape.validated()
        self.shape = s
        self.embed = nn.Embedding(VOCAB, s.d_model)
        self.blocks = nn.ModuleList(Block(s) for _ in range(s.n_layers))
        self.norm = RMSNorm(s.d_model)
        self.head = nn.Linear(s.d_model, VOCAB, bias=False)
        cos, sin = _rotary_tables(s.context, s.d_model // s.n_heads, s.rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.shape[-1] > self.shape.context:
            raise ValueError(f"a sequence of {tokens.shape[-1]} tokens exceeds the model's "
                             f"context={self.shape.context}")
        x = self.embed(tokens)
        for blk in self.blocks:
            x = blk(x, self.rope_cos, self.rope_sin)
        return self.head(self.norm(x))


def build_decoder(shape: LMShape, *, seed: int) -> Decoder:
    r"""The decoder with LLaMA's initialisation, from a private stream seeded by ``seed``.

    Weights of every linear layer and of the embedding are drawn from
    :math:`\mathcal{N}(0, 0.02^2)`, the output projections of each block
    (``o_proj``, ``down_proj``) with the standard deviation divided by
    :math:`\sqrt{2 L}` so that the residual stream keeps its scale over
    :math:`L` blocks. The global torch RNG is left untouched.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        model = Decoder(shape)
        scaled = 0.02 / math.sqrt(2 * model.shape.n_layers)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name.endswith("norm.weight"):
                    continue
                std = scaled if name.endswith(("o_proj.weight", "down_proj.weight")) else 0.02
                p.normal_(0.0, std)
    return model


def percolation_pairs(shape: LMShape) -> list[tuple[str, str, str]]:
    r"""Relations that are right by construction, for ``sparsify(pairs=)``.

    Per block: gate/up are coupled (channel :math:`c` of
    :math:`\mathrm{silu}(W_{gate}\bar h) \odot W_{up}\bar h` is zero when
    either row :math:`c` has no link, as :math:`\mathrm{silu}(0) = 0`); up ->
    down and gate -> down are chains. Without GQA, v -> o is a chain (channel
    :math:`c` of v reaches only input column :math:`c` of o, the softmax
    weights mix positions, never channels). q and k are left unrelated: under
    rotary embeddings the score reads channel :math:`i` of a head together
    with channel :math:`i + d_h/2`, so a q channel with no links does not make
    the k channel of the same index useless. Under GQA nothing is coupled in
    attention (v channel of head :math:`h` feeds the o columns of every query
    head of its group).

    >>> for p in percolation_pairs(LMShape(n_layers=1)):
    ...     print(p)
    ('couple', 'blocks.0.mlp.gate_proj', 'blocks.0.mlp.up_proj')
    ('chain', 'blocks.0.mlp.up_proj', 'blocks.0.mlp.down_proj')
    ('chain', 'blocks.0.mlp.gate_proj', 'blocks.0.mlp.down_proj')
    ('chain', 'blocks.0.attn.v_proj', 'blocks.0.attn.o_proj')
    """
    s = shape.validated()
    pairs: list[tuple[str, str, str]] = []
    for i in range(s.n_layers):
        a, m = f"blocks.{i}.attn", f"blocks.{i}.mlp"
        pairs += [("couple", f"{m}.gate_proj", f"{m}.up_proj"),
                  ("chain", f"{m}.up_proj", f"{m}.down_proj"),
                  ("chain", f"{m}.gate_proj", f"{m}.down_proj")]
        if s.n_kv_heads == s.n_heads:
            pairs.append(("chain", f"{a}.v_proj", f"{a}.o_proj"))
    return pairs
