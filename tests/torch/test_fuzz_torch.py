"""A bounded hypothesis fuzz over the torch adapter's public surface.

The torch twin of ``tests/test_fuzz_api.py``: every call starts from valid
arguments and replaces one of them with a hostile value (wrong types, NaN/inf,
float16/bfloat16/float64/int tensors, uncoalesced sparse COO tensors with
explicit zeros and duplicates, meta tensors, a CUDA device where none answers).
The contract: a valid result (checked per function) or a ``ValueError`` /
``TypeError`` whose message names the replaced argument.
``NETSHAPE_FUZZ_TALLY=path.json`` writes a tally of what was tried.
"""

from __future__ import annotations

import atexit
import json
import math
import os
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzzing import DOCUMENTED, fuzz_call

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import netshape.torch as nt  # noqa: E402
from netshape import linkpred, sampling  # noqa: E402

SETTINGS = settings(max_examples=16, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])
TALLY: Counter = Counter()
NO_CUDA = not torch.cuda.is_available()


def _dump_tally():
    path = os.environ.get("NETSHAPE_FUZZ_TALLY")
    if path:
        with open(path, "w") as fh:
            json.dump(dict(sorted(TALLY.items())), fh, indent=1)


atexit.register(_dump_tally)

BAD_SIZES = [0, -1, 1.5, 1e20, math.nan, math.inf, True, "5", None, [3], 2**62]
BAD_REALS = [math.nan, math.inf, -math.inf, -0.5, 1.5, 0, "0.5", None, True, [0.5],
             complex(0.5, 0)]
BAD_CHOICES = ["", "bogus", None, 3, "CHTS ", ["chts"]]
BAD_RNGS = ["seed", -1, 1.5, [1, -2], math.nan]
BAD_DEVICES = ["bogus", 3.5, "meta", None, *(["cuda"] if NO_CUDA else [])]


def _call(where: str, arg: str, fn, *args, check=None, **kw):
    return fuzz_call(TALLY, where, arg, fn, *args, check=check, **kw)


def _mlp(dtype=torch.float32, device="cpu", fill=None):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.Linear(12, 10), nn.ReLU(),
                          nn.Linear(10, 3)).to(device=device, dtype=dtype)
    if fill is not None:
        with torch.no_grad():
            model[0].weight[0, :3] = fill
    return model


def _train(model, dst, steps: int = 4):
    dtype = next(model.parameters()).dtype
    opt = dst.optimizer
    for _ in range(steps):
        x = torch.randn(5, 6, dtype=dtype)
        loss = model(x).float().pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        dst.step()


def _check_engine(density):
    def check(dst):
        for name, m in dst.masks.items():
            assert m.dtype == torch.bool
            total = m.numel()
            assert abs(int(m.sum()) - density * total) <= max(1.0, 0.5 + 1e-9 * total), name
    return check


# ------------------------------------------------------------------ sparsify
SPARSIFY_ARGS = ("method", "density", "total_steps", "update_every", "rng", "model",
                 "optimizer", "execution", "include", "initial_density", "zeta")


@SETTINGS
@given(which=st.sampled_from(SPARSIFY_ARGS), bad=st.integers(0, 10**6),
       method=st.sampled_from(["set", "chts", "rigl", "gmp", "fc"]))
def test_sparsify_hostile_arguments(which, bad, method):
    model = _mlp()
    kw = dict(method=method, density=0.3, total_steps=12, update_every=3, rng=0)
    args = [model, torch.optim.SGD(model.parameters(), lr=0.05)]
    pools = {"method": BAD_CHOICES, "density": BAD_REALS, "total_steps": BAD_SIZES,
             "update_every": BAD_SIZES, "rng": BAD_RNGS, "execution": BAD_CHOICES,
             "include": [3, ["nope"], "0", [None]], "initial_density": BAD_REALS,
             "zeta": BAD_REALS}
    if which == "model":
        args[0] = [None, "model", nn.Module(), 3][bad % 4]
    elif which == "optimizer":
        args[1] = [None, "sgd", torch.optim.SGD(_mlp().parameters(), lr=0.1)][bad % 3]
    else:
        pool = pools[which]
        kw[which] = pool[bad % len(pool)]
    arg = {"model": "model", "optimizer": "optimizer"}.get(which, which)
    dst = _call(f"sparsify[{method}]", arg, nt.sparsify, *args, **kw)
    if dst is not None and which not in ("model", "optimizer"):
        _train(args[0], dst)
        assert all(torch.isfinite(p).all() for p in args[0].parameters())


@SETTINGS
@given(dtype=st.sampled_from([torch.float16, torch.bfloat16, torch.float64]),
       fill=st.sampled_from([None, math.nan, math.inf, -math.inf]),
       method=st.sampled_from(["set", "chts", "rigl"]))
def test_sparsify_dtypes_and_nonfinite_weights(dtype, fill, method):
    model = _mlp(dtype, fill=fill)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    dst = _call(f"sparsify[{dtype}]", "weight", nt.sparsify, model, opt, method=method,
                density=0.4, total_steps=8, update_every=2, rng=0, check=_check_engine(0.4))
    if dst is None:
        return
    try:
        _train(model, dst)
    except DOCUMENTED as exc:  # a NaN weight reaches the removal scores: refused by name
        TALLY[f"dst.step[{dtype}]: refused"] += 1
        assert fill is not None and ("weight" in str(exc) or "W" in str(exc)), exc
        return
    TALLY[f"dst.step[{dtype}]: valid"] += 1
    _check_engine(0.4)(dst)


@pytest.mark.parametrize("device", ["meta", *(["cuda"] if NO_CUDA else [])])
def test_a_device_that_cannot_run(device):
    if device == "meta":  # parameters without values: refused before anything changes
        model = _mlp(device="meta")
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        _call("sparsify[meta]", "model", nt.sparsify, model, opt, method="set", density=0.3,
              total_steps=4, rng=0)
        assert not any(nt.is_masked(m, "weight") for m in model if isinstance(m, nn.Linear))
    else:  # no CUDA device answers here
        _call("torch_generator[cuda]", "device", sampling.torch_generator, 0, device=device)
        assert TALLY["torch_generator[cuda]: refused"] >= 1


# ------------------------------------------------------------------ engine state
def _engine(method="chts"):
    model = _mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    dst = nt.sparsify(model, opt, method=method, density=0.3, total_steps=12, update_every=3,
                      rng=0)
    _train(model, dst, 3)
    return model, dst


def _hostile_states(sd, bad):
    masks = sd["masks"]
    first = next(iter(masks))
    variants = [
        None, "state", {}, {**sd, "masks": None}, {**sd, "masks": {}},
        {**sd, "masks": {**masks, first: masks[first].T.contiguous()}},
        {**sd, "masks": {**masks, first: masks[first].float()}},
        {**sd, "masks": {**masks, first: torch.zeros_like(masks[first])}},
        {k: v for k, v in sd.items() if k != "rng"},
        {k: v for k, v in sd.items() if k != "itop"},
        {**sd, "step": "three"}, {**sd, "step": -4}, {**sd, "method": "set"},
        {**sd, "hist": None}, {**sd, "stats": None}, {**sd, "rng": {"state": 1}},
    ]
    return variants[bad % len(variants)]


@SETTINGS
@given(bad=st.integers(0, 10**6))
def test_load_state_dict_hostile(bad):
    model, dst = _engine()
    sd = dst.state_dict()
    before = ({n: m.clone() for n, m in dst.masks.items()}, dst.step_count, dst.update_count)
    refused = TALLY["dst.load_state_dict: refused"]
    _call("dst.load_state_dict", "state_dict", dst.load_state_dict, _hostile_states(sd, bad))
    if TALLY["dst.load_state_dict: refused"] > refused:
        # a refused state leaves the engine as it was
        assert dst.step_count == before[1]
        assert all(torch.equal(m, before[0][n]) for n, m in dst.masks.items())
        assert dst.update_count == before[2]
    _train(model, dst, 3)
    _check_engine(0.3)(dst)


def test_state_dict_round_trip_after_updates():
    model, dst = _engine()
    sd = dst.state_dict()
    model2, dst2 = _engine("chts")
    dst2.load_state_dict(sd)
    assert all(torch.equal(dst.masks[n], dst2.masks[n]) for n in dst.masks)


# ------------------------------------------------------------------ scores and sampling
def _hostile_tensor(kind: str, bad: int):
    g = torch.Generator().manual_seed(bad)
    W = torch.randn(5, 7, generator=g)
    W[W.abs() < 0.5] = 0
    if kind in ("float16", "bfloat16", "float64"):
        return W.to(getattr(torch, kind))
    if kind == "int":
        return (W * 3).to(torch.int64)
    if kind == "nan":
        W[0, 0] = math.nan
        return W
    if kind == "inf":
        W[1, 1] = -math.inf
        return W
    if kind == "coo":  # uncoalesced: duplicates and explicit zeros
        i = torch.tensor([[0, 0, 1, 2, 2], [1, 1, 3, 0, 6]])
        return torch.sparse_coo_tensor(i, torch.tensor([1.0, 2.0, 0.0, -1.0, 0.5]), (5, 7))
    if kind == "meta":
        return W.to("meta")
    if kind == "3d":
        return W[None]
    if kind == "bool":
        return W != 0
    return {"list": W.tolist(), "none": None, "str": "W"}[kind]


TENSOR_KINDS = ["float16", "bfloat16", "float64", "int", "nan", "inf", "coo", "meta", "3d",
                "bool", "list", "none", "str"]


def _finite_nonneg(out):
    out = out if isinstance(out, torch.Tensor) else torch.as_tensor(np.asarray(out))
    assert torch.isfinite(out.float()).all() and (out >= 0).all()


@SETTINGS
@given(kind=st.sampled_from(TENSOR_KINDS), bad=st.integers(0, 100),
       alpha=st.sampled_from([0.0, 0.5, 1.0]))
def test_removal_scores_torch(kind, bad, alpha):
    W = _hostile_tensor(kind, bad)
    out = _call("removal_scores[torch]", "W", sampling.removal_scores, W, alpha=alpha,
                check=_finite_nonneg)
    if isinstance(W, torch.Tensor) and out is not None:
        assert out.shape == W.shape and out.device == W.device
        assert out.dtype.is_floating_point
    index = torch.tensor([0, 3, 8, 20])
    if kind in ("float16", "nan", "int"):
        index = [torch.tensor([0, 40]), torch.tensor([[1, 2]]), torch.tensor([0.5]),
                 np.array([1, 2])][bad % 4]
        _call("removal_scores_at[torch]", "index", sampling.removal_scores_at, W, index,
              alpha=alpha)
        return
    _call("removal_scores_at[torch]", "W", sampling.removal_scores_at, W, index, alpha=alpha,
          check=_finite_nonneg)


@SETTINGS
@given(kind=st.sampled_from(TENSOR_KINDS), bad=st.integers(0, 100),
       name=st.sampled_from(["ch2_l3n", "ch3_l3p", "l3_paths", "ra_l3"]))
def test_link_predictors_on_torch_tensors(kind, bad, name):
    A = _hostile_tensor(kind, bad)
    if isinstance(A, torch.Tensor) and A.ndim == 2 and kind != "meta":
        A = A.T.contiguous() if A.layout == torch.strided else A

    def check(S):
        assert isinstance(S, torch.Tensor) and S.device == A.device
        assert torch.isfinite(S).all() and (S >= 0).all()

    _call(f"linkpred.{name}[torch]", "A", linkpred.predict, A, name, check=check)


@SETTINGS
@given(which=st.sampled_from(["scores", "k", "allowed", "temperature", "rng"]),
       bad=st.integers(0, 10**6), soft=st.booleans())
def test_choose_links_torch(which, bad, soft):
    scores = torch.rand(5, 7, generator=torch.Generator().manual_seed(bad))
    allowed = scores > 0.3
    kw = dict(k=4, allowed=allowed, soft=soft, temperature=1.0, rng=0)
    args = [scores]
    if which == "scores":
        hostile = _hostile_tensor(TENSOR_KINDS[bad % len(TENSOR_KINDS)], bad)
        args = [hostile if not isinstance(hostile, torch.Tensor) or hostile.ndim != 2
                else hostile.abs() if hostile.dtype != torch.bool else hostile]
    elif which == "allowed":
        kw["allowed"] = [allowed.numpy(), allowed.float(), allowed[:2], None, "all",
                         allowed.to_sparse()][bad % 6]
    elif which == "k":
        kw["k"] = [*BAD_SIZES, 1000][bad % (len(BAD_SIZES) + 1)]
    elif which == "temperature":
        kw["temperature"] = BAD_REALS[bad % len(BAD_REALS)]
    else:
        kw["rng"] = BAD_RNGS[bad % len(BAD_RNGS)]

    def check(out):
        pos, short = out
        pos = torch.as_tensor(pos)
        assert pos.numel() == min(kw["k"], int(torch.as_tensor(kw["allowed"]).sum()))
        assert len(set(pos.tolist())) == pos.numel()

    _call("choose_links[torch]", which, sampling.choose_links, *args, check=check, **kw)


@SETTINGS
@given(bad=st.integers(0, 10**6), which=st.sampled_from(["device", "rng"]))
def test_torch_generator(bad, which):
    kw = dict(rng=0, device="cpu")
    pool = BAD_DEVICES if which == "device" else BAD_RNGS
    kw[which] = pool[bad % len(pool)]

    def check(g):
        assert isinstance(g, torch.Generator)

    _call("torch_generator", which, sampling.torch_generator, check=check, **kw)


# ------------------------------------------------------------------ save / load / export
@SETTINGS
@given(bad=st.integers(0, 10**6), which=st.sampled_from(["directory", "model", "dst"]))
def test_save_sparse_hostile(tmp_path_factory, bad, which):
    tmp = tmp_path_factory.mktemp("save")
    model, dst = _engine("set")
    (tmp / "file.txt").write_text("x")
    kw = dict(model=model, directory=tmp / "out", dst=dst)
    if which == "directory":
        kw["directory"] = ["", None, tmp / "file.txt", tmp / "file.txt" / "sub", 3,
                           tmp / "deep" / "er", tmp / "fresh"][bad % 7]
    elif which == "model":
        kw["model"] = [None, "model", _mlp(), nn.Linear(2, 2)][bad % 4]
    else:
        kw["dst"] = ["dst", 3, _engine("chts")[1]][bad % 3]
    out = _call("save_sparse", which, nt.save_sparse, kw.pop("model"), kw.pop("directory"),
                **kw)
    if out is None:
        assert not (tmp / "file.txt").is_dir() and (tmp / "file.txt").read_text() == "x"
        return
    model2 = _mlp()
    dst2 = nt.load_sparse(model2, torch.optim.SGD(model2.parameters(), lr=0.1), out,
                          total_steps=12)
    assert all(torch.equal(dst.masks[n], dst2.masks[n]) for n in dst.masks)


@SETTINGS
@given(bad=st.integers(0, 10**6))
def test_load_sparse_from_hostile_directories(tmp_path_factory, bad):
    tmp = tmp_path_factory.mktemp("load")
    model, dst = _engine("set")
    good = nt.save_sparse(model, tmp / "good", dst)
    files = sorted(p.name for p in good.iterdir())
    target = tmp / "bad"
    target.mkdir()
    case = bad % 5
    for name in files:
        data = (good / name).read_bytes()
        if case == 0 and name.endswith(".json"):
            data = b"{not json"
        elif case == 1 and not name.endswith(".json"):
            data = data[: len(data) // 2]
        elif case == 2 and name.endswith(".json"):
            data = json.dumps({"masks": 3}).encode()
        elif case == 3:
            continue
        (target / name).write_bytes(data)
    if case == 4:
        target = tmp / "missing"
    model2 = _mlp()
    try:
        dst2 = nt.load_sparse(model2, torch.optim.SGD(model2.parameters(), lr=0.1), target,
                              total_steps=12)
    except FileNotFoundError as exc:  # a missing file: the loaders' usual error, named
        TALLY["load_sparse: refused"] += 1
        assert case in (3, 4) and "directory=" in str(exc), exc
        return
    except DOCUMENTED as exc:
        TALLY["load_sparse: refused"] += 1
        assert str(target) in str(exc), exc
        return
    TALLY["load_sparse: valid"] += 1
    assert case in (0, 2)  # only the model's own json was damaged; the masks are intact
    assert all(torch.equal(dst.masks[n], dst2.masks[n]) for n in dst.masks)


@SETTINGS
@given(bad=st.integers(0, 10**6))
def test_export_dense_hostile(bad):
    model, _ = _engine("set")
    arg = [model, None, "model", nn.Linear(3, 2), _mlp(torch.float16)][bad % 5]

    def check(plain):
        assert isinstance(plain, nn.Module)
        assert not any(isinstance(m, nt.SparseLinear) for m in plain.modules())

    _call("export_dense", "model", nt.export_dense, arg, check=check)
