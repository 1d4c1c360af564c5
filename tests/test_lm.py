"""netshape.lm: every preset, resume equality, bad input before writing, corpus split, model."""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from netshape._validation import link_count  # noqa: E402
from netshape.lm import LMConfig, LMShape, build_decoder, load_corpus, resume, train  # noqa: E402
from netshape.lm.data import default_corpus_dir, is_validation  # noqa: E402
from netshape.torch._lm_model import percolation_pairs  # noqa: E402
from netshape.torch._lm_runner import METRIC_COLUMNS  # noqa: E402
from netshape.train import METHODS  # noqa: E402
from netshape.train import _rundir as rd  # noqa: E402
from tests.run_checks import assert_same_state, strip_timings  # noqa: E402

LEAVES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def write_corpus(d, n=16, words=60):
    d.mkdir(parents=True, exist_ok=True)
    gen = np.random.default_rng(0)
    vocab = ["def", "return", "self", "import", "class", "for", "in", "if", "x", "y", "=", ":"]
    for i in range(n):
        text = " ".join(gen.choice(vocab, size=words)) + f"\n# file {i}\n"
        (d / f"mod_{i:02d}.py").write_text(text)
    return d


@pytest.fixture
def corpus(tmp_path):
    return write_corpus(tmp_path / "corpus")


def tiny(corpus, method="chts", **kw) -> LMConfig:
    base = dict(method=method, density=0.4, steps=8, batch_size=2, context=16, d_model=16,
                n_layers=2, n_heads=2, ffn=24, update_every=2, eval_every=4, eval_windows=3,
                val_fraction=0.25, warmup=2, iterative_warmup=2, data_dir=str(corpus), rng=3)
    base.update(kw)
    return LMConfig(**base)


@pytest.mark.parametrize("method", METHODS)
def test_every_preset_trains_a_few_steps(tmp_path, corpus, method):
    out = tmp_path / method
    s = train(tiny(corpus, method), out, progress=False)
    assert s["finished"] and s["steps_done"] == 8 and s["method"] == method
    assert s["tokens_seen"] == 8 * 2 * 16
    assert {"config.json", "split.json", "metrics.csv", "checkpoint.pt", "summary.json"} <= \
        {p.name for p in out.iterdir()}
    rows = rd.read_metrics(out / "metrics.csv", METRIC_COLUMNS)
    assert [r["step"] for r in rows] == [4, 8]
    assert all(np.isfinite(r["val_loss"]) and r["val_ppl"] == pytest.approx(np.exp(r["val_loss"]),
                                                                            rel=1e-5)
               for r in rows)
    ck = torch.load(out / "checkpoint.pt", weights_only=True)
    assert ck["step"] == 8
    want = {f"blocks.{i}.{'attn' if leaf[0] in 'qkvo' else 'mlp'}.{leaf}"
            for i in range(2) for leaf in LEAVES}
    # every block linear, never embed or head; a dense run records the same layers, all ones
    assert set(ck["masks"]) == want
    if method == "fc":
        assert all(bool(m.all()) for m in ck["masks"].values())
        assert s["density"] == 1.0
        return
    if PRESET_CONSTANT[method]:
        for name, m in ck["masks"].items():
            assert int(m.sum()) == link_count(0.4, m.shape[1], m.shape[0]), name
    assert any((out / "snapshots").glob("update_*.npz"))


PRESET_CONSTANT = {m: m in ("set", "rigl", "cht", "chts", "chts_ri") for m in METHODS}


@pytest.mark.parametrize("method", ["fc", "chts", "rigl", "chtss"])
def test_interrupt_then_resume_equals_uninterrupted(tmp_path, corpus, method):
    full = tmp_path / "full"
    train(tiny(corpus, method), full, progress=False)

    class Stop(KeyboardInterrupt):
        pass

    def boom(step):
        if step == 6:  # between the evaluations at steps 4 and 8
            raise Stop

    part = tmp_path / "part"
    with pytest.raises(KeyboardInterrupt):
        train(tiny(corpus, method), part, progress=False, on_step=boom)
    ck = torch.load(part / "checkpoint.pt", weights_only=True)
    assert ck["step"] == 4
    assert not json.loads((part / "summary.json").read_text())["finished"]
    s = resume(part, progress=False)
    assert s["finished"]
    assert strip_timings(rd.read_metrics(part / "metrics.csv", METRIC_COLUMNS)) == \
        strip_timings(rd.read_metrics(full / "metrics.csv", METRIC_COLUMNS))
    assert_same_state(torch.load(part / "checkpoint.pt", weights_only=True),
                      torch.load(full / "checkpoint.pt", weights_only=True))


def test_resume_after_layers_switched_to_sparse_execution(tmp_path, corpus):
    # gmp prunes towards 5 %: execution="auto" switches the 256-wide layers to sparse
    # execution during the run, so the checkpoint holds sparse layers the fresh model lacks
    cfg = tiny(corpus, "gmp", density=0.05, d_model=256, ffn=256, n_layers=1, n_heads=2,
               steps=12, eval_every=3, update_every=2, context=8)
    full = tmp_path / "full"
    train(cfg, full, progress=False)

    def stop_at_7(step):
        if step == 6:
            raise KeyboardInterrupt

    part = tmp_path / "part"
    with pytest.raises(KeyboardInterrupt):
        train(cfg, part, progress=False, on_step=stop_at_7)
    ck = torch.load(part / "checkpoint.pt", weights_only=True)
    assert ck["step"] == 6
    assert any(k.endswith(".indices") for k in ck["model"]), "no layer ran sparse"
    s = resume(part, progress=False)
    assert s["finished"] and s["steps_done"] == 12
    assert strip_timings(rd.read_metrics(part / "metrics.csv", METRIC_COLUMNS)) == \
        strip_timings(rd.read_metrics(full / "metrics.csv", METRIC_COLUMNS))
    assert_same_state(torch.load(part / "checkpoint.pt", weights_only=True),
                      torch.load(full / "checkpoint.pt", weights_only=True))


def test_a_diverged_run_stops_and_says_so(tmp_path, corpus):
    # a learning rate of 1e30 turns the weights to inf/NaN within a few steps
    out = tmp_path / "r"
    s = train(tiny(corpus, "set", lr=1e30, steps=40, eval_every=20), out, progress=False)
    assert s["diverged"] and s["finished"] and s["steps_done"] < 40
    assert s["val_ppl"] == float("inf")  # never NaN
    rows = rd.read_metrics(out / "metrics.csv", METRIC_COLUMNS)
    assert rows[-1]["step"] == s["steps_done"] and rows[-1]["val_ppl"] is None  # empty cell
    ck = torch.load(out / "checkpoint.pt", weights_only=True)
    assert [r["val_ppl"] for r in ck["metrics"]][-1] == float("inf")
    saved = json.loads((out / "summary.json").read_text())
    assert saved["diverged"] is True and saved["val_ppl"] is None  # JSON has no inf
    assert resume(out, progress=False)["steps_done"] == s["steps_done"]  # over, not retried
    fine = train(tiny(corpus, "set"), tmp_path / "fine", progress=False)
    assert fine["diverged"] is False


def test_finished_run_resumes_to_its_summary_and_train_api_dispatches(tmp_path, corpus):
    from netshape import train as mlp_runner

    out = tmp_path / "r"
    s = mlp_runner.train(tiny(corpus, "set"), out, progress=False)  # LMConfig -> LM runner
    assert s["task"] == "lm"
    assert mlp_runner.resume(out, progress=False) == s


def test_inoam_for_dst_noam_for_fc(tmp_path, corpus):
    from netshape.torch.lr import inoam_factor, noam_factor

    lrs = {}
    for method in ("fc", "set"):
        cfg = tiny(corpus, method, steps=9, eval_every=1, update_every=4, warmup=3,
                   iterative_warmup=2, lr=0.01)
        train(cfg, tmp_path / method, progress=False)
        lrs[method] = [r["lr"] for r in rd.read_metrics(tmp_path / method / "metrics.csv",
                                                        METRIC_COLUMNS)]
    assert lrs["fc"] == pytest.approx([0.01 * noam_factor(s, 3) for s in range(1, 10)], rel=1e-5)
    last, want = None, []
    for s in range(1, 10):
        want.append(0.01 * inoam_factor(s, 3, last, 2))
        if s in (4, 8):
            last = s
    assert lrs["set"] == pytest.approx(want, rel=1e-5)
    assert lrs["set"][4] < lrs["fc"][4]  # the warm-up after the update at step 4


def _bad(corpus, tmp_path):
    small = write_corpus(tmp_path / "small", n=4, words=3)
    empty = tmp_path / "empty"
    empty.mkdir()
    binary = tmp_path / "binary"
    binary.mkdir()
    (binary / "a.bin").write_bytes(b"\x00\x01" * 500)
    return [
        (dict(method="sgd"), "method='sgd'"),
        (dict(density=0.0), "density=0.0"),
        (dict(density=1.5), "density=1.5"),
        (dict(density=1e-5), "gives 0 links on a"),  # per layer: refused before any file
        (dict(steps=0), "steps=0"),
        (dict(update_every=8), "update_every=8 leaves no topology update"),
        (dict(n_heads=3), "d_model=16 must split into n_heads=3"),
        (dict(n_heads=2, n_kv_heads=3), "n_kv_heads=3 must divide n_heads=2"),
        (dict(lr=-1.0), "lr=-1.0"),
        (dict(zeta=1.5), "zeta=1.5"),
        (dict(val_fraction=1.0), "val_fraction=1.0"),
        (dict(overrides={"bogus": 1}), "bogus"),
        (dict(method="fc", overrides={"T": 2}), "method='fc' takes none"),
        (dict(context=100_000), "fewer than context + 1 = 100001"),
        (dict(data_dir=str(tmp_path / "missing")), "does not exist"),
        (dict(data_dir=str(empty)), "holds no text files"),
        (dict(data_dir=str(binary)), "holds no text files"),
        (dict(data_dir=str(small), context=64), "fewer than context + 1"),
    ]


def test_bad_input_is_refused_before_anything_is_written(tmp_path, corpus):
    for i, (kw, message) in enumerate(_bad(corpus, tmp_path)):
        out = tmp_path / f"out{i}"
        with pytest.raises((ValueError, TypeError, FileNotFoundError), match=re.escape(message)):
            train(tiny(corpus, **kw), out, progress=False)
        assert not out.exists(), kw


def test_existing_run_and_changed_corpus_are_refused(tmp_path, corpus):
    out = tmp_path / "r"
    cfg = tiny(corpus, "fc", steps=8)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, out, progress=False, on_eval=lambda row: (_ for _ in ()).throw(
            KeyboardInterrupt))
    with pytest.raises(ValueError, match="already holds a run"):
        train(cfg, out, progress=False)
    (corpus / "mod_00.py").write_text("changed")
    with pytest.raises(ValueError, match="corpus .* changed"):
        resume(out, progress=False)


def test_split_is_by_file_hash_and_independent_of_listing(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    names = [f"pkg{i % 3}/file_{i}.txt" for i in range(40)]
    for root, order in ((a, names), (b, names[::-1])):
        for n in order:
            (root / n).parent.mkdir(parents=True, exist_ok=True)
            (root / n).write_text(f"text of {n}\n" * 5)
    (a / ".hidden").write_text("skip me " * 50)
    (b / ".hidden").write_text("skip me " * 50)
    ca, cb = load_corpus(a, val_fraction=0.3, context=8), load_corpus(b, val_fraction=0.3,
                                                                        context=8)
    assert ca.split_record()["validation_files"] == cb.split_record()["validation_files"]
    assert ca.sha256 == cb.sha256 and np.array_equal(ca.train, cb.train)
    assert sorted(ca.train_files + ca.validation_files) == sorted(names)
    for n in names:
        assert (n in ca.validation_files) == is_validation(n, 0.3)
    # the hash rule, written out
    import hashlib

    for n in names:
        h = int(hashlib.sha256(n.encode()).hexdigest()[:16], 16)
        assert (n in ca.validation_files) == (h < 0.3 * 2**64)


def test_default_stdlib_corpus_split_is_deterministic():
    c1, c2 = load_corpus(context=128), load_corpus(context=128)
    assert c1.kind == "stdlib" and c1.source == str(default_corpus_dir())
    assert c1.train_files == c2.train_files and c1.validation_files == c2.validation_files
    assert c1.sha256 == c2.sha256
    files = c1.train_files + c1.validation_files
    assert files and all(f.endswith(".py") for f in files)
    assert not any(part in ("site-packages", "dist-packages") for f in files
                   for part in f.split("/"))
    assert not set(c1.train_files) & set(c1.validation_files)
    assert 0.05 < len(c1.validation_files) / len(files) < 0.15  # val_fraction 0.1
    assert all(is_validation(f, 0.1) for f in c1.validation_files)


def test_split_json_records_the_split(tmp_path, corpus):
    out = tmp_path / "r"
    train(tiny(corpus, "fc"), out, progress=False)
    split = json.loads((out / "split.json").read_text())
    c = load_corpus(corpus, val_fraction=0.25, context=16)
    assert split["validation_files"] == c.validation_files
    assert split["train_files"] == c.train_files and split["sha256"] == c.sha256
    assert split["train_bytes"] == c.train.size


def test_analyze_reads_an_lm_run_directory(tmp_path, corpus):
    from netshape.analyze import analyze_source, write_report

    out = tmp_path / "r"
    train(tiny(corpus, "chts", snapshot_every=1), out, progress=False)
    an = analyze_source(out, progress=False)
    assert len(an.layers) == 14
    assert an.summary["density"] == pytest.approx(0.4, abs=0.01)
    assert an.curves and len(an.curves["step"]) == 3  # updates at steps 2, 4, 6
    rep = tmp_path / "rep"
    rep.mkdir()
    assert write_report(an, rep, plots=False).is_file()


# ---------------------------------------------------------------- the model

def _shape(**kw):
    return LMShape(**{**dict(d_model=16, n_layers=2, n_heads=4, ffn=24, context=12), **kw})


def test_decoder_is_causal_and_deterministic():
    m = build_decoder(_shape(), seed=1)
    x = torch.randint(0, 256, (2, 12), generator=torch.Generator().manual_seed(0))
    y = x.clone()
    y[:, 7:] = (y[:, 7:] + 1) % 256
    with torch.no_grad():
        a, b = m(x), m(y)
    assert torch.allclose(a[:, :7], b[:, :7], atol=1e-6)
    assert not torch.allclose(a[:, 7:], b[:, 7:])
    state = build_decoder(_shape(), seed=1).state_dict()
    assert all(torch.equal(v, m.state_dict()[k]) for k, v in state.items())
    with pytest.raises(ValueError, match="exceeds the model's context=12"):
        m(torch.zeros(1, 13, dtype=torch.long))


def test_rotary_scores_depend_on_relative_position_only():
    from netshape.torch._lm_model import _rotary_tables, _rotate

    cos, sin = _rotary_tables(32, 8, 10000.0)
    gen = torch.Generator().manual_seed(2)
    q, k = torch.randn(8, generator=gen, dtype=torch.float64), torch.randn(8, generator=gen,
                                                                          dtype=torch.float64)
    cos, sin = cos.double(), sin.double()
    for t, s, shift in ((5, 2, 7), (10, 0, 3), (3, 3, 20)):
        def score(a, b):
            return float(_rotate(q, cos[a], sin[a]) @ _rotate(k, cos[b], sin[b]))
        assert score(t, s) == pytest.approx(score(t + shift, s + shift), abs=1e-5)
    # a plain 2-D rotation of each channel pair (i, i + 4)
    t = 6
    r = _rotate(q, cos[t], sin[t])
    for i in range(4):
        ang = t * 10000.0 ** (-2 * i / 8)
        a, b = float(q[i]), float(q[i + 4])
        assert float(r[i]) == pytest.approx(a * np.cos(ang) - b * np.sin(ang), abs=1e-6)
        assert float(r[i + 4]) == pytest.approx(a * np.sin(ang) + b * np.cos(ang), abs=1e-6)


def test_grouped_query_attention_equals_attention_with_repeated_heads():
    gqa = build_decoder(_shape(n_kv_heads=2), seed=4)
    mha = build_decoder(_shape(), seed=5)
    sd = {k: v.clone() for k, v in gqa.state_dict().items()}
    hd = 16 // 4
    for key, v in list(sd.items()):
        if key.endswith(("k_proj.weight", "v_proj.weight")):  # (2 heads * hd, d) -> (4 * hd, d)
            sd[key] = v.view(2, hd, 16).repeat_interleave(2, dim=0).reshape(4 * hd, 16)
    mha.load_state_dict(sd)
    x = torch.randint(0, 256, (3, 12), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.allclose(gqa(x), mha(x), atol=1e-5)


def test_percolation_pairs_are_accepted_and_skip_attention_under_gqa():
    from netshape.torch import sparsify

    for kv, has_vo in ((None, True), (2, False)):
        shape = _shape(n_kv_heads=kv)
        pairs = percolation_pairs(shape)
        assert (("chain", "blocks.0.attn.v_proj", "blocks.0.attn.o_proj") in pairs) == has_vo
        assert not any("q_proj" in p[1] or "k_proj" in p[1] for p in pairs)
        m = build_decoder(shape, seed=0)
        opt = torch.optim.Adam(m.parameters())
        dst = sparsify(m, opt, method="chts", density=0.3, total_steps=4, update_every=2,
                       rng=0, include="blocks.*", pairs=pairs)
        assert len(dst.masks) == 14


def test_config_round_trip_and_defaults():
    from netshape.lm.config import DST_LR, FC_LR, resolve

    c = resolve(LMConfig())
    assert (c.lr, c.warmup, c.eval_every, c.zeta, c.update_every) == (DST_LR, 100, 100, 0.1, 100)
    assert resolve(LMConfig(method="fc")).lr == FC_LR
    assert LMConfig.from_dict(c.to_dict()) == c
    with pytest.raises(ValueError, match="unknown keys"):
        LMConfig.from_dict({**c.to_dict(), "hidden": 3})
    assert dataclasses.replace(c, method="set").task == "lm"
