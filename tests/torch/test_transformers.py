"""Real third-party Transformers (tiny random configurations, no download): traced pairs,
percolation of a known dead channel, a few chtss steps, export round trip."""

from __future__ import annotations

import os
import warnings
from collections import OrderedDict

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")
T = pytest.importorskip("transformers")

import netshape as ns  # noqa: E402
from netshape.cli import main  # noqa: E402
from netshape.torch import sparsify, to_biadjacency  # noqa: E402
from netshape.torch.export import MASKS_FILE, load_sparse, save_sparse  # noqa: E402

L0 = "model.layers.0"
SA = f"{L0}.self_attn"
MLP = f"{L0}.mlp"
HEADS = {"heads": 4, "kv_heads": 2, "head_dim": 8}


def _llama(kv_heads, attn="sdpa"):
    cfg = T.LlamaConfig(
        vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=1,
        num_attention_heads=4, num_key_value_heads=kv_heads, max_position_embeddings=32)
    cfg._attn_implementation = attn  # eager: matmul + repeat_kv; sdpa: one fused call
    return T.LlamaForCausalLM(cfg)


def _gpt2():
    return T.GPT2LMHeadModel(T.GPT2Config(vocab_size=64, n_embd=32, n_layer=1, n_head=4,
                                          n_positions=16, bos_token_id=0, eos_token_id=0))


def _bert():
    return T.BertModel(T.BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=1,
                                    num_attention_heads=4, intermediate_size=48))


def _t5():
    return T.T5Model(T.T5Config(vocab_size=64, d_model=32, d_kv=8, d_ff=48, num_layers=1,
                                num_heads=4, decoder_start_token_id=0))


def _torch_transformer():
    return torch.nn.Transformer(d_model=16, nhead=2, num_encoder_layers=1, num_decoder_layers=1,
                                dim_feedforward=24, dropout=0.0, batch_first=True)


IDS = torch.randint(0, 64, (2, 6), generator=torch.Generator().manual_seed(0))
SRC = torch.randn(2, 5, 16, generator=torch.Generator().manual_seed(1))
TGT = torch.randn(2, 4, 16, generator=torch.Generator().manual_seed(2))


def _attention(block: str, out: str = "o") -> list[tuple[str, str, str]]:
    """The relations traced in one attention ``block`` whose projections are named
    ``q``, ``k``, ``v`` and ``out``: query couples with key, value chains into the output."""
    return [("couple", f"{block}.q", f"{block}.k"), ("chain", f"{block}.v", f"{block}.{out}")]


E0, D0 = "encoder.block.0.layer", "decoder.block.0.layer"
ENC, DEC = "encoder.layers.0", "decoder.layers.0"
CASES = {
    "llama_gqa": (lambda: _llama(2), {"input_ids": IDS}, [
        ("couple", f"{SA}.q_proj", f"{SA}.k_proj", {**HEADS, "rotary_dim": 8, "rotary": "half"}),
        ("chain", f"{SA}.v_proj", f"{SA}.o_proj", HEADS),
        ("couple", f"{MLP}.gate_proj", f"{MLP}.up_proj"),
        ("chain", f"{MLP}.gate_proj", f"{MLP}.down_proj"),
        ("chain", f"{MLP}.up_proj", f"{MLP}.down_proj")]),
    "llama": (lambda: _llama(4), {"input_ids": IDS}, [
        ("couple", f"{SA}.q_proj", f"{SA}.k_proj",
         {"heads": 4, "kv_heads": 4, "head_dim": 8, "rotary_dim": 8, "rotary": "half"}),
        ("chain", f"{SA}.v_proj", f"{SA}.o_proj"),
        ("couple", f"{MLP}.gate_proj", f"{MLP}.up_proj"),
        ("chain", f"{MLP}.gate_proj", f"{MLP}.down_proj"),
        ("chain", f"{MLP}.up_proj", f"{MLP}.down_proj")]),
    "llama_gqa_eager": (lambda: _llama(2, "eager"), {"input_ids": IDS}, None),
    "gpt2": (_gpt2, {"input_ids": IDS}, [
        ("couple", "transformer.h.0.attn.c_attn.q", "transformer.h.0.attn.c_attn.k"),
        ("chain", "transformer.h.0.attn.c_attn.v", "transformer.h.0.attn.c_proj"),
        ("chain", "transformer.h.0.mlp.c_fc", "transformer.h.0.mlp.c_proj")]),
    "bert": (_bert, {"input_ids": IDS}, [
        ("couple", "encoder.layer.0.attention.self.query", "encoder.layer.0.attention.self.key"),
        ("chain", "encoder.layer.0.attention.self.value",
         "encoder.layer.0.attention.output.dense"),
        ("chain", "encoder.layer.0.intermediate.dense", "encoder.layer.0.output.dense")]),
    "t5": (_t5, {"input_ids": IDS, "decoder_input_ids": IDS}, [
        *_attention(f"{E0}.0.SelfAttention"),
        ("chain", f"{E0}.1.DenseReluDense.wi", f"{E0}.1.DenseReluDense.wo"),
        *_attention(f"{D0}.0.SelfAttention"),
        *_attention(f"{D0}.1.EncDecAttention")]),
    "nn_transformer": (_torch_transformer, (SRC, TGT), [
        *_attention(f"{ENC}.self_attn", "out_proj"),
        ("chain", f"{ENC}.linear1", f"{ENC}.linear2"),
        *_attention(f"{DEC}.self_attn", "out_proj"),
        *_attention(f"{DEC}.multihead_attn", "out_proj")]),
}

CASES["llama_gqa_eager"] = CASES["llama_gqa_eager"][:2] + (CASES["llama_gqa"][2],)

# (layer, output channels to kill) -> {layer: ("cols" | "rows", indices removed)}
KILLS = {
    # k channels 1 and 5 of key head 0 are one rotary pair: q heads 0 and 1 lose channels 1, 5
    "llama_gqa": [({f"{SA}.k_proj": [1]}, {}),
                  ({f"{SA}.k_proj": [1, 5]}, {f"{SA}.q_proj": ("cols", [1, 5, 9, 13])}),
                  ({f"{SA}.v_proj": [11]}, {f"{SA}.o_proj": ("rows", [19, 27])})],
    "llama_gqa_eager": [({f"{SA}.k_proj": [1, 5]}, {f"{SA}.q_proj": ("cols", [1, 5, 9, 13])})],
    "llama": [({f"{SA}.q_proj": [2, 6]}, {f"{SA}.k_proj": ("cols", [2, 6])}),
              ({f"{SA}.v_proj": [3]}, {f"{SA}.o_proj": ("rows", [3])})],
    "gpt2": [({"transformer.h.0.mlp.c_fc": [5]}, {"transformer.h.0.mlp.c_proj": ("rows", [5])}),
             ({"transformer.h.0.attn.c_attn.q": [0]},
              {"transformer.h.0.attn.c_attn.k": ("cols", [0])})],
    "bert": [({"encoder.layer.0.attention.self.value": [4]},
              {"encoder.layer.0.attention.output.dense": ("rows", [4])}),
             ({"encoder.layer.0.attention.self.query": [0]},
              {"encoder.layer.0.attention.self.key": ("cols", [0])})],
    "t5": [({f"{E0}.1.DenseReluDense.wi": [7]}, {f"{E0}.1.DenseReluDense.wo": ("rows", [7])})],
    "nn_transformer": [({f"{ENC}.linear1": [3]}, {f"{ENC}.linear2": ("rows", [3])})],
}


def _call(model, inputs):
    out = model(**inputs) if isinstance(inputs, dict) else model(*inputs)
    return out if isinstance(out, torch.Tensor) else out[0]


def _sparse(case, method="set", density=0.6, **kw):
    build, inputs, _ = CASES[case]
    torch.manual_seed(0)
    model = build()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    kw.setdefault("total_steps", 100)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dst = sparsify(model, opt, method, density=density, example_inputs=inputs, rng=0, **kw)
    dst.warnings = [str(w.message) for w in caught if "traced" in str(w.message)]
    return model, opt, dst, inputs


@pytest.mark.parametrize("case", list(CASES))
def test_traced_pairs_are_exact(case):
    _, _, dst, _ = _sparse(case)
    print(case, dst.pairs)
    assert dst.pairs == CASES[case][2]
    assert dst.warnings == []  # every block was followed


@pytest.mark.parametrize("case", list(KILLS))
def test_percolation_removes_the_dead_channel_and_nothing_else(case):
    _, _, dst, _ = _sparse(case)
    base, _ = ns.percolate(OrderedDict((n, to_biadjacency(m)) for n, m in dst.masks.items()),
                           pairs=dst.pairs)
    for kill, removed in KILLS[case]:
        layers = OrderedDict((n, A.tolil()) for n, A in base.items())
        for name, cols in kill.items():
            layers[name][:, cols] = False
        layers = OrderedDict((n, A.tocsr()) for n, A in layers.items())
        out, _ = ns.percolate(layers, pairs=dst.pairs)
        for n, A in out.items():
            before = layers[n].toarray()
            if n not in removed:
                assert (A.toarray() == before).all(), (case, kill, n)
                continue
            side, idx = removed[n]
            want = before.copy()
            if side == "cols":
                want[:, idx] = False
            else:
                want[idx, :] = False
            assert (A.toarray() == want).all(), (case, kill, n)
            assert (want != before).any()  # the kill did remove something there


@pytest.mark.parametrize("case", list(CASES))
def test_chtss_trains_and_export_round_trips(case, tmp_path):
    model, opt, dst, inputs = _sparse(case, "chtss", density=0.3, total_steps=6, update_every=2)
    for _ in range(6):
        opt.zero_grad()
        _call(model, inputs).float().pow(2).mean().backward()
        opt.step()
        dst.step()
    stats = dst.stats()
    assert all(s["updates"] == 2 for s in stats.values())
    assert all(s["links"] == s["target_links"] for s in stats.values())
    model.eval()
    with torch.no_grad():
        before = _call(model, inputs)
    d = tmp_path / "export"
    if hasattr(type(model), "from_pretrained"):
        model.save_pretrained(d)  # goes through save_sparse
        plain, info = type(model).from_pretrained(d, output_loading_info=True)
        assert not info["missing_keys"] and not info["unexpected_keys"]
    else:
        save_sparse(model, d)
        from safetensors.torch import load_model

        torch.manual_seed(5)
        plain = CASES[case][0]()
        load_model(plain, str(d / "model.safetensors"))
    from safetensors import safe_open

    with safe_open(str(next(d.glob("model*.safetensors"))), framework="pt") as f:
        assert not [k for k in f.keys() if "parametrizations" in k]
    plain.eval()
    with torch.no_grad():
        assert torch.allclose(_call(plain, inputs), before, atol=1e-5, rtol=0)
    plain.train()
    opt2 = torch.optim.AdamW(plain.parameters(), lr=1e-3)
    dst2 = load_sparse(plain, opt2, d, total_steps=10, update_every=2)
    assert dst2.pairs == dst.pairs and dst2.step_count == 6
    for n, m in dst.masks.items():
        assert (dst2.masks[n] == m).all()
    plain.eval()
    with torch.no_grad():
        assert torch.allclose(_call(plain, inputs), before, atol=1e-5, rtol=0)
    assert (d / MASKS_FILE).is_file()
    assert main(["analyze", str(d), "--no-plots", "-o", str(tmp_path / "report")]) == 0


def test_gpt2_conv1d_becomes_linear_with_the_same_parameters():
    from netshape.torch.linear_like import Conv1DLinear, linearize_conv1d

    torch.manual_seed(0)
    model = _gpt2().eval()  # no dropout: the two passes must agree
    c_fc = model.transformer.h[0].mlp.c_fc
    w_id, w = id(c_fc.weight), c_fc.weight.detach().clone()
    with torch.no_grad():
        ref = model(IDS).logits
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    assert linearize_conv1d(model, opt) == [
        "transformer.h.0.attn.c_attn", "transformer.h.0.attn.c_proj",
        "transformer.h.0.mlp.c_fc", "transformer.h.0.mlp.c_proj"]
    lin = model.transformer.h[0].mlp.c_fc
    assert isinstance(lin, Conv1DLinear) and id(lin.weight) == w_id
    assert torch.equal(lin.weight.detach(), w.t())  # (out, in)
    with torch.no_grad():
        assert torch.allclose(model(IDS).logits, ref, atol=1e-6, rtol=0)
        back = lin.to_conv1d()
    assert type(back).__name__ == "Conv1D" and torch.equal(back.weight, w)


def test_bert_names_alone_never_chain_parallel_projections():
    torch.manual_seed(0)
    model = _bert()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.warns(UserWarning, match="example_inputs"):
        dst = sparsify(model, opt, "chts", density=0.5, rng=0, total_steps=100)
    q = "encoder.layer.0.attention.self"
    assert not [r for r in dst.pairs if {r[1], r[2]} <= {f"{q}.query", f"{q}.key", f"{q}.value"}
                and r[0] == "chain"]


def test_llama_gqa_names_alone_never_chain_q_to_k():
    torch.manual_seed(0)
    model = _llama(2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.warns(UserWarning, match="example_inputs"):
        dst = sparsify(model, opt, "chts", density=0.5, rng=0, total_steps=100)
    assert ("chain", f"{SA}.q_proj", f"{SA}.k_proj") not in dst.pairs
    assert not [r for r in dst.pairs if f"{SA}.q_proj" in r[1:3]]


def test_packed_sizes_for_gqa_qkv():
    torch.manual_seed(0)
    model = _gpt2()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dst = sparsify(model, opt, "set", density=0.5, rng=0, example_inputs={"input_ids": IDS},
                       packed={"transformer.h.*.attn.c_attn": {"q": 32, "k": 32, "v": 32}},
                       total_steps=100)
    assert [n for n in dst.masks if "c_attn" in n] == [
        f"transformer.h.0.attn.c_attn.{t}" for t in "qkv"]
    assert np.allclose([m.float().mean().item() for m in dst.masks.values()], 0.5, atol=0.02)
