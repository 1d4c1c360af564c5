"""Checkpoint/resume: bit-identical masks and losses on CPU; atomic files; mismatches refused."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from netshape.torch import sparsify  # noqa: E402


def _build(tiny, kind, method, seed_model=0):
    make_model, _, _ = tiny
    model = make_model(kind, seed=seed_model)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    dst = sparsify(model, opt, method=method, density=0.25, total_steps=20, update_every=3,
                   rng=123, initial_density=0.6)
    return model, opt, dst


@pytest.mark.parametrize("kind, method", [("mlp", "chts"), ("mlp", "rigl"), ("mlp", "chtss"),
                                          ("llama", "chtss"), ("transformer", "mest")])
def test_resume_is_bit_identical(tiny, tmp_path, kind, method):
    _, _, train = tiny
    model, opt, dst = _build(tiny, kind, method)
    full = train(model, opt, dst, kind, 20)
    full_masks = {n: m.clone() for n, m in dst.masks.items()}
    full_stats = dst.stats()

    model, opt, dst = _build(tiny, kind, method)
    first = train(model, opt, dst, kind, 10)
    torch.save({"model": model.state_dict(), "opt": opt.state_dict()}, tmp_path / "ck.pt")
    dst.save(tmp_path / "dst.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.pt", "dst.pt"]  # no temp files

    # a fresh process would rebuild everything, from another model init even
    model, opt, dst = _build(tiny, kind, method, seed_model=7)
    ck = torch.load(tmp_path / "ck.pt", weights_only=True)
    model.load_state_dict(ck["model"])
    opt.load_state_dict(ck["opt"])
    dst.load(tmp_path / "dst.pt")
    rest = train(model, opt, dst, kind, 10, start=10)
    assert first + rest == full  # exact float equality
    for n, m in dst.masks.items():
        assert torch.equal(m, full_masks[n])
    def strip(st):  # wall-clock seconds differ between runs, nothing else may
        return {n: {k: v for k, v in s.items() if k != "seconds"} for n, s in st.items()}

    assert strip(dst.stats()) == strip(full_stats)


def test_load_refuses_other_config(tiny):
    model, opt, dst = _build(tiny, "mlp", "chts")
    sd = dst.state_dict()
    make_model, _, _ = tiny
    m2 = make_model("mlp")
    o2 = torch.optim.SGD(m2.parameters(), lr=0.1)
    other = sparsify(m2, o2, method="set", density=0.25, total_steps=20, update_every=3)
    with pytest.raises(ValueError, match="method='chts'"):
        other.load_state_dict(sd)
    sd2 = dict(sd, masks={"nope": sd["masks"]["net.0"]})
    with pytest.raises(ValueError, match="layers"):
        dst.load_state_dict(sd2)


def test_state_dict_contents(tiny):
    _, _, train = tiny
    model, opt, dst = _build(tiny, "mlp", "chts")
    train(model, opt, dst, "mlp", 7)
    sd = dst.state_dict()
    assert {"step", "updates", "rng", "masks", "itop", "hist", "stats"} <= set(sd)
    assert sd["step"] == 7 and sd["updates"] == 2
    assert set(sd["hist"]) == set(dst.masks)  # chts keeps historical weights
    for n, m in sd["masks"].items():
        assert m.dtype == torch.bool and m.data_ptr() != dst.masks[n].data_ptr()


def test_snapshots_readable(tiny, tmp_path):
    from netshape.io import load_topology

    make_model, _, train = tiny
    model = make_model("llama")
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    dst = sparsify(model, opt, method="chts", density=0.25, total_steps=20, update_every=2,
                   rng=0, snapshot_dir=tmp_path / "snaps", snapshot_every=3)
    train(model, opt, dst, "llama", 13)
    files = sorted(p.name for p in (tmp_path / "snaps").iterdir())
    assert files == ["update_000003.npz", "update_000006.npz"]
    train(model, opt, dst, "llama", 6, start=13)
    got = load_topology(tmp_path / "snaps" / "update_000009.npz")
    assert list(got) == list(dst.masks)
    for name, A in got.items():
        assert A.shape == tuple(dst.masks[name].T.shape)
        assert (A.toarray() == dst.masks[name].T.numpy()).all()
