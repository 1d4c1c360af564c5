"""Every preset on a tiny MLP, a tiny nn.TransformerEncoder and a tiny LLaMA-style block."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from netshape._validation import link_count  # noqa: E402
from netshape.torch import PRESETS, sparsify  # noqa: E402

KINDS = ["mlp", "transformer", "llama"]
EXPECTED_LAYERS = {
    "mlp": ["net.0", "net.2", "net.4"],
    "transformer": [f"enc.layers.{i}.{n}" for i in range(2)
                    for n in ("self_attn.q", "self_attn.k", "self_attn.v", "self_attn.out_proj",
                              "linear1", "linear2")],
    "llama": [f"blocks.{i}.{n}" for i in range(2)
              for n in ("attn.q_proj", "attn.k_proj", "attn.v_proj", "attn.o_proj",
                        "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")],
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("method", sorted(PRESETS))
def test_preset_runs(tiny, kind, method):
    make_model, make_batch, train = tiny
    model = make_model(kind)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    total, every, density = 12, 3, 0.3
    dst = sparsify(model, opt, method=method, density=density, total_steps=total,
                   update_every=every, rng=0, initial_density=0.6)
    losses = train(model, opt, dst, kind, total)
    assert all(torch.isfinite(torch.tensor(losses)))
    if method == "fc":
        assert not dst.masks
        return
    assert list(dst.masks) == EXPECTED_LAYERS[kind]
    until = dst.config["update_until"] * total
    steps = [s for s in range(every, total, every) if s <= until]
    if dst.stopped:  # CHT's topological early stop ends the updates
        assert method == "cht" and 1 <= dst.update_count <= len(steps)
    else:
        assert dst.update_count == len(steps)
    last = steps[dst.update_count - 1]
    for name, st in dst.stats().items():
        lay = dst._layers[name]
        # each layer sits exactly at the scheduled count of the last update
        want = link_count(dst.density_at(last), lay.slot.n_in, lay.slot.n_out)
        assert st["links"] == want, (name, st)
        assert st["updates"] == dst.update_count
        w = getattr(lay.slot.module, lay.slot.param)[lay.rows]
        assert torch.all(w[~lay.mask] == 0)


def test_packed_in_proj_blocks_are_separate(tiny):
    make_model, _, train = tiny
    model = make_model("transformer")
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    dst = sparsify(model, opt, method="chts", density=0.25, total_steps=12, update_every=3, rng=2)
    train(model, opt, dst, "transformer", 12)
    attn = model.enc.layers[0].self_attn
    full = attn.parametrizations.in_proj_weight[0].mask
    E = attn.embed_dim
    for i, tag in enumerate("qkv"):
        block = full[i * E:(i + 1) * E]
        assert torch.equal(block, dst.masks[f"enc.layers.0.self_attn.{tag}"])
        assert int(block.sum()) == link_count(0.25, E, E)
    assert torch.all(attn.in_proj_weight[~full] == 0)


@pytest.mark.parametrize("method, extra", [("gmp", {"initial_density": 1.0, "init": "dense"}),
                                           ("chtss", {"initial_density": 0.8}),
                                           ("chtss", {"initial_density": 0.8, "half_length": True}),
                                           ("granet", {"initial_density": 0.9}),
                                           ("mest", {"initial_density": 0.7})])
def test_gradual_density_follows_schedule(tiny, method, extra):
    make_model, _, train = tiny
    model = make_model("mlp")
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    dst = sparsify(model, opt, method=method, density=0.1, total_steps=40, update_every=2,
                   rng=0, decay_end=0.5, **extra)
    d0 = extra["initial_density"]
    assert all(int(m.sum()) == round(d0 * m.numel()) for m in dst.masks.values())
    seen = []
    for step in range(1, 40):
        train(model, opt, dst, "mlp", 1, start=step)
        if step % 2 == 0:
            d = dst.density_at(step)
            seen.append(d)
            for name, st in dst.stats().items():
                lay = dst._layers[name]
                assert st["links"] == link_count(d, lay.slot.n_in, lay.slot.n_out), (step, name)
    end = 10 if extra.get("half_length") else 20
    assert dst.density_at(end) == 0.1 and dst.density_at(end - 2) > 0.1
    assert all(a >= b for a, b in zip(seen, seen[1:], strict=False))  # never grows back


# ---------------------------------------------------------------- one name per method
def test_fc_is_the_one_name_of_the_unsparsified_method(tiny):
    """``fc`` is listed; the retired ``dense`` still loads saved runs, warns, and is hidden."""
    from netshape.cli import build_parser
    from netshape.torch import METHODS, preset_table, resolve_method
    from netshape.train import METHODS as RUNNER_METHODS

    assert "fc" in PRESETS and "dense" not in PRESETS and "dense" not in METHODS
    assert RUNNER_METHODS.count("fc") == 1 and "dense" not in RUNNER_METHODS
    assert [r.split("|")[1].strip() for r in preset_table().splitlines()[2:]] == list(METHODS)
    helps = " ".join(a.help or "" for a in build_parser()._subparsers._group_actions[0]
                     .choices["train"]._actions if "--method" in a.option_strings)
    assert "fc" in helps and "dense" not in helps
    make_model, _, _ = tiny
    model = make_model("mlp")
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.warns(DeprecationWarning, match="method='dense' is a deprecated alias of 'fc'"):
        dst = sparsify(model, opt, method="dense", density=0.1, total_steps=5, rng=0)
    assert dst.config["method"] == "fc" and not dst.masks
    with pytest.warns(DeprecationWarning):
        assert resolve_method("DENSE", {})["method"] == "fc"


def test_saved_runs_named_dense_resolve_to_fc():
    from netshape.lm import LMConfig
    from netshape.lm.config import resolve as resolve_lm
    from netshape.train import TrainConfig, resolve

    with pytest.warns(DeprecationWarning, match="deprecated alias of 'fc'"):
        assert resolve(TrainConfig(dataset="digits", method="dense")).method == "fc"
    with pytest.warns(DeprecationWarning, match="deprecated alias of 'fc'"):
        assert resolve_lm(LMConfig(method="dense")).method == "fc"


def test_an_engine_saved_under_the_retired_name_loads(tiny):
    make_model, _, _ = tiny
    model = make_model("mlp")
    dst = sparsify(model, torch.optim.SGD(model.parameters(), lr=0.1), method="fc",
                   density=0.1, total_steps=5, rng=0)
    sd = dst.state_dict()
    sd["method"] = "dense"  # what an engine of the retired name wrote
    again = sparsify(model, torch.optim.SGD(model.parameters(), lr=0.1), method="fc",
                     density=0.1, total_steps=5, rng=0)
    with pytest.warns(DeprecationWarning, match="deprecated alias of 'fc'"):
        again.load_state_dict(sd)
    assert again.step_count == dst.step_count
