"""Engine basics: exact densities, zeros off the mask, optimizer state, bad input."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from netshape._validation import link_count  # noqa: E402
from netshape.torch import STAT_KEYS, sparsify  # noqa: E402
from netshape.torch.masking import get_original  # noqa: E402

OPTIMIZERS = {
    "sgd": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=5e-4),
    "adam": lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=1e-4),
    "adamw": lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1),
}


def _check_exact(model, dst, density):
    for name, mask in dst.masks.items():
        lay = dst._layers[name]
        assert int(mask.sum()) == link_count(density, lay.slot.n_in, lay.slot.n_out)
        orig = get_original(lay.slot.module, lay.slot.param)[lay.rows]
        assert torch.all(orig[~mask] == 0)
        eff = getattr(lay.slot.module, lay.slot.param)[lay.rows]
        assert torch.all(eff[~mask] == 0)


@pytest.mark.parametrize("opt_name", sorted(OPTIMIZERS))
def test_exact_density_and_zeros_each_optimizer(tiny, opt_name):
    make_model, make_batch, train = tiny
    model = make_model("mlp")
    opt = OPTIMIZERS[opt_name](model.parameters())
    dst = sparsify(model, opt, method="set", density=0.2, total_steps=60, update_every=3, rng=1)
    for i in range(60):
        train(model, opt, dst, "mlp", 1, start=i)
        _check_exact(model, dst, 0.2)
    assert dst.update_count == 19
    # the optimizer state never holds anything off the mask
    for lay in dst._layers.values():
        for buf in opt.state[lay.param].values():
            if isinstance(buf, torch.Tensor) and buf.shape == lay.param.shape:
                assert torch.all(buf[~lay.pm.mask] == 0)


def test_masks_in_model_state_dict(tiny):
    make_model, _, _ = tiny
    model = make_model("mlp")
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    dst = sparsify(model, opt, method="set", density=0.3, total_steps=10, update_every=2, rng=0)
    sd = model.state_dict()
    assert "net.0.parametrizations.weight.0.mask" in sd
    assert sd["net.0.parametrizations.weight.0.mask"].dtype == torch.bool
    assert list(dst.masks) == ["net.0", "net.2", "net.4"]  # the head net.6 stays dense


def test_stats_keys_and_counts(tiny):
    make_model, _, train = tiny
    model = make_model("mlp")
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    dst = sparsify(model, opt, method="set", density=0.25, total_steps=10, update_every=5, rng=0)
    train(model, opt, dst, "mlp", 5)
    st = dst.stats()
    for s in st.values():
        assert set(STAT_KEYS) <= set(s)
        n_links = s["links"]
        assert s["removed"] == int(0.3 * n_links)  # floor(zeta * links)
        assert s["regrown"] == s["removed"]
        assert 0.0 <= s["overlap"] <= 1.0
        assert s["itop"] >= s["density"]
        assert s["updates"] == 1 and s["seconds"] > 0


def test_fc_is_noop(tiny):
    make_model, _, train = tiny
    model = make_model("mlp")
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    dst = sparsify(model, opt, method="fc", density=0.1, total_steps=5, update_every=1, rng=0)
    assert dict(dst.masks) == {} and dst.stats() == {}
    assert not any(dst.step() for _ in range(3))
    assert "parametrizations" not in "".join(model.state_dict())


@pytest.mark.parametrize(
    "kwargs, exc, words",
    [
        ({"density": 0.0}, ValueError, "density=0.0"),
        ({"density": 0.0}, ValueError, "density=0.0 is outside the allowed range (0, 1]"),
        ({"density": 1.5}, ValueError, "(0, 1]"),
        ({"method": "sett"}, ValueError, "method='sett'"),
        ({"regrowth": "magic"}, ValueError, "regrowth='magic'"),
        ({"removal": "magic"}, ValueError, "removal='magic'"),
        ({"init": "magic"}, ValueError, "init='magic'"),
        ({"zeta": 1.5}, ValueError, "zeta=1.5"),
        ({"bogus": 1}, ValueError, "unknown option 'bogus'"),
        ({"include": "nope*"}, ValueError, "include pattern 'nope*'"),
        ({"exclude": ["net.0", "zzz"]}, ValueError, "exclude pattern 'zzz'"),
        ({"total_steps": 0}, ValueError, "total_steps=0"),
        ({"density": 0.001}, ValueError, "gives 0 links"),
        ({"method": "chts", "init": "csti"}, ValueError, "calibration"),
        ({"pairs": [("chain", "net.0", "net.9")]}, ValueError, "'net.9'"),
        ({"pairs": [("chain", "net.4", "net.0")]}, ValueError, "do not chain"),
        ({"delta": (0.5, 1.0)}, ValueError, "delta=1.0"),
        ({"T": 0}, ValueError, "T=0"),
        ({"rng": "seed"}, TypeError, "rng='seed'"),
        ({"snapshot_dir": "/tmp", "snapshot_every": 0}, ValueError, "snapshot_every=0"),
        ({"update_every": True}, TypeError, "update_every=True"),
        ({"schedule": "linear"}, ValueError, "schedule='linear'"),
        ({"example_inputs": torch.zeros(2, 5)}, ValueError, "example_inputs"),
        ({"packed": {"net.0": ("a", "b", "c")}}, ValueError, "equal parts"),
        ({"packed": {"zz": ("a", "b")}}, ValueError, "packed pattern 'zz'"),
        ({"packed": {"net.0": {"a": 10, "b": 7}}}, ValueError, "add up to the 16"),
        ({"pairs": [("couple", "net.0", "net.2", {"heads": 3, "kv_heads": 2, "head_dim": 2})]},
         ValueError, "multiple"),
    ],
)
def test_bad_input_fails_at_sparsify(tiny, kwargs, exc, words):
    make_model, _, _ = tiny
    model = make_model("mlp")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    args = dict(method="set", density=0.2, total_steps=10, update_every=2, rng=0)
    args.update(kwargs)
    with pytest.raises(exc) as info:
        sparsify(model, opt, **args)
    assert words in str(info.value)
    after = model.state_dict()
    assert set(after) == set(before)  # nothing was parametrized
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_optimizer_must_cover_layers(tiny):
    make_model, _, _ = tiny
    model = make_model("mlp")
    opt = torch.optim.SGD(model.net[0].parameters(), lr=0.1)
    with pytest.raises(ValueError, match="optimizer does not hold the weight of layer 'net.2'"):
        sparsify(model, opt, method="set", density=0.2, total_steps=10, update_every=2)
    with pytest.raises(TypeError, match="optimizer"):
        sparsify(model, object(), method="set", density=0.2, total_steps=10, update_every=2)


def test_include_exclude(tiny):
    make_model, _, _ = tiny
    model = make_model("mlp")
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    dst = sparsify(model, opt, method="set", density=0.3, total_steps=10, update_every=2,
                   include="net.*", exclude="net.2")
    assert list(dst.masks) == ["net.0", "net.4", "net.6"]


def test_missing_torch_names_the_extra():
    import subprocess
    import sys

    code = ("import sys; sys.modules['torch'] = None\n"
            "try:\n    import netshape.torch\nexcept ImportError as e:\n"
            "    assert \"netshape[torch]\" in str(e), e\nelse:\n    raise SystemExit('no error')")
    subprocess.run([sys.executable, "-c", code], check=True)
