"""A bounded hypothesis fuzz over the torch-free public API.

Every call starts from valid arguments and replaces exactly one of them with
a value drawn from a hostile pool (wrong types, NaN/inf, huge or negative
sizes, degenerate shapes, sparse arrays with explicit zeros and duplicate
entries, object arrays, ...). The contract checked: the call returns a valid
result (checked per function) or raises ``ValueError`` / ``TypeError`` whose
message names the replaced argument. ``NETSHAPE_FUZZ_TALLY=path.json``
writes a tally of what was tried and how it ended.
"""

from __future__ import annotations

import atexit
import json
import math
import os
from collections import Counter

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import netshape as ns
from netshape._validation import link_count
from tests.fuzzing import fuzz_call

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])
TALLY: Counter = Counter()


def _dump_tally():
    path = os.environ.get("NETSHAPE_FUZZ_TALLY")
    if path:
        with open(path, "w") as fh:
            json.dump(dict(sorted(TALLY.items())), fh, indent=1)


atexit.register(_dump_tally)

# ------------------------------------------------------------------ hostile pools
BAD_SIZES = [0, -1, -(2**40), 1.5, 1e20, float("nan"), float("inf"), 2**62, 10**30, True,
             "5", None, [3], np.float64(2.5), complex(3, 0)]
BAD_REALS = [float("nan"), float("inf"), -float("inf"), -0.5, 1.5, 7.0, 0, "0.5", None, True,
             [0.5], complex(0.5, 0), np.float32("nan")]
BAD_CHOICES = ["", "bogus", None, 3, "AUTO ", ["auto"]]


def _sparse_with_junk(rng: np.random.Generator, shape, density) -> sp.coo_array:
    """COO with explicit zeros and duplicate entries mixed into a random layer."""
    n = max(1, int(density * shape[0] * shape[1]))
    r = rng.integers(0, shape[0], n)
    c = rng.integers(0, shape[1], n)
    v = rng.choice([0.0, 1.0, 2.0, -1.0], n)
    r = np.concatenate([r, r[: n // 2]])  # duplicates
    c = np.concatenate([c, c[: n // 2]])
    v = np.concatenate([v, v[: n // 2]])
    return sp.coo_array((v, (r, c)), shape=shape)


def hostile_topologies(rng: np.random.Generator):
    shape = (int(rng.integers(1, 12)), int(rng.integers(1, 12)))
    dense = rng.random(shape) < 0.3
    yield "coo_junk", _sparse_with_junk(rng, shape, 0.3)
    yield "csr_junk", sp.csr_matrix(_sparse_with_junk(rng, shape, 0.3))
    yield "float_nan", np.where(dense, np.nan, 0.0)
    yield "float_inf", np.where(dense, np.inf, 0.0)
    yield "int", dense.astype(np.int64) * 3
    yield "1d", dense.ravel()
    yield "3d", dense[None]
    yield "empty_rows", np.zeros((0, shape[1]), dtype=bool)
    yield "empty_cols", np.zeros((shape[0], 0), dtype=bool)
    yield "object", dense.astype(object)
    yield "list", dense.tolist()
    yield "str", "A"
    yield "none", None
    yield "complex", dense.astype(complex)


def _call(where: str, arg: str, fn, *args, check=None, **kw):
    return fuzz_call(TALLY, where, arg, fn, *args, check=check, **kw)


# ------------------------------------------------------------------ generators
GENERATORS = {
    "er": lambda n_in, n_out, d, **kw: ns.generators.er(n_in, n_out, d, **kw),
    "bsw": lambda n_in, n_out, d, **kw: ns.generators.bsw(n_in, n_out, d, beta=0.3, **kw),
    "brf": lambda n_in, n_out, d, **kw: ns.generators.brf(n_in, n_out, d, r=0.3, **kw),
    "bsf": lambda n_in, n_out, d, **kw: ns.generators.bsf(n_in, n_out, d, **kw),
}


def _check_layer(n_in, n_out, d):
    def check(A):
        assert isinstance(A, sp.csr_array) and A.shape == (n_in, n_out)
        assert A.nnz == link_count(d, n_in, n_out)
        assert A.has_canonical_format
    return check


@pytest.mark.parametrize("gen", sorted(GENERATORS))
@SETTINGS
@given(n_in=st.integers(1, 30), n_out=st.integers(1, 30), d=st.floats(0.05, 1.0),
       which=st.sampled_from(["n_in", "n_out", "density", "rng", "none"]),
       bad=st.integers(0, 10**6))
def test_generators(gen, n_in, n_out, d, which, bad):
    d = max(d, 1.0 / (n_in * n_out))  # valid baseline: at least one link
    args = {"n_in": n_in, "n_out": n_out, "density": d}
    rng_arg = 0
    if which in ("n_in", "n_out"):
        args[which] = BAD_SIZES[bad % len(BAD_SIZES)]
    elif which == "density":
        args[which] = BAD_REALS[bad % len(BAD_REALS)]
    elif which == "rng":
        rng_arg = ["seed", -1, 1.5, object(), float("nan")][bad % 5]
    check = _check_layer(args["n_in"], args["n_out"], args["density"]) if which in (
        "none", "rng") else None
    _call(f"generators.{gen}", which, GENERATORS[gen], args["n_in"], args["n_out"],
          args["density"], rng=rng_arg, check=check)


@SETTINGS
@given(n=st.integers(2, 40), f=st.integers(1, 10), n_out=st.integers(1, 20),
       d=st.floats(0.05, 1.0), kind=st.integers(0, 7))
def test_csti(n, f, n_out, d, kind):
    d = max(d, 1.0 / (f * n_out))
    rng = np.random.default_rng(n * 31 + f)
    X = rng.standard_normal((n, f))
    bad = [X, np.where(X > 1, np.nan, X), X[0], X[None], "X", None, X.astype(object),
           np.zeros((0, f))][kind]
    check = _check_layer(f, n_out, d) if kind == 0 else None
    _call("generators.csti", "X", ns.generators.csti, bad, n_out, d, rng=0, check=check)


# ------------------------------------------------------------------ link prediction
PREDICTORS = sorted(ns.linkpred.available())


def _check_scores(A):
    def check(S):
        S = S.toarray() if sp.issparse(S) else np.asarray(S)
        assert S.shape == A.shape and np.all(np.isfinite(S))
        assert np.all(S[A.toarray()] == 0)  # existing links are never candidates
    return check


@pytest.mark.parametrize("name", PREDICTORS)
@SETTINGS
@given(seed=st.integers(0, 10**6), which=st.integers(0, 15))
def test_link_predictors(name, seed, which):
    rng = np.random.default_rng(seed)
    hostile = list(hostile_topologies(rng))
    kw = {"rng": 0} if name == "random" else {}
    if which < len(hostile):
        label, A = hostile[which]
        out = _call(f"linkpred.{name}[{label}]", "A", ns.linkpred.predict, A, name, **kw)
        if out is not None:  # a valid layer in disguise: compare with the canonical input
            ref = ns._validation.as_biadjacency(A)
            _check_scores(ref)(out)
    else:
        A = ns.generators.er(int(rng.integers(1, 15)), int(rng.integers(1, 15)),
                             float(rng.uniform(0.05, 0.9)), rng=seed)
        _call(f"linkpred.{name}", "A", ns.linkpred.predict, A, name, check=_check_scores(A),
              **kw)


@SETTINGS
@given(bad=st.sampled_from(BAD_CHOICES))
def test_ch2_l3n_method_choice(bad):
    A = ns.generators.er(8, 6, 0.3, rng=0)
    _call("linkpred.ch2_l3n", "method", ns.linkpred.ch2_l3n, A, method=bad)


@SETTINGS
@given(bad=st.sampled_from(BAD_CHOICES + [3.5]))
def test_predict_name(bad):
    A = ns.generators.er(8, 6, 0.3, rng=0)
    _call("linkpred.predict", "name", ns.linkpred.predict, A, bad)


# ------------------------------------------------------------------ percolation and metrics
@SETTINGS
@given(seed=st.integers(0, 10**6), which=st.integers(0, 17))
def test_percolate_and_layer_metrics(seed, which):
    rng = np.random.default_rng(seed)
    a = ns.generators.er(6, 5, 0.4, rng=seed)
    b = ns.generators.er(5, 4, 0.4, rng=seed + 1)
    hostile = list(hostile_topologies(rng))
    if which < len(hostile):
        layers = [a, hostile[which][1]]
        label = hostile[which][0]
    elif which == len(hostile):
        layers, label = [a, ns.generators.er(7, 4, 0.4, rng=1)], "shape_mismatch"
    elif which == len(hostile) + 1:
        layers, label = "ab", "str"
    else:
        layers, label = [a, b], "valid"

    def check(res):
        out, _ = res
        assert len(out) == 2
        for x, y in zip(out, layers, strict=True):
            assert x.shape == y.shape and (x > ns._validation.as_biadjacency(y)).nnz == 0

    _call(f"percolate[{label}]", "layer", ns.percolate, layers,
          check=check if label == "valid" else None)
    _call(f"metrics.anp[{label}]", "layer", ns.metrics.anp, layers,
          check=lambda v: 0.0 <= v <= 1.0)


@SETTINGS
@given(seed=st.integers(0, 10**6), which=st.integers(0, 14))
def test_degree_stats_and_power_law(seed, which):
    rng = np.random.default_rng(seed)
    hostile = list(hostile_topologies(rng))
    A = hostile[which][1] if which < len(hostile) else ns.generators.er(20, 20, 0.3, rng=seed)
    label = hostile[which][0] if which < len(hostile) else "valid"
    _call(f"metrics.degree_stats[{label}]", "A", ns.metrics.degree_stats, A)


@SETTINGS
@given(removed=st.sampled_from([np.array([1, 2]), np.array([np.nan]), "x", None, [1.5],
                                np.zeros((2, 2)), np.array([-1])]))
def test_overlap_rate(removed):
    _call("metrics.overlap_rate", "removed", ns.metrics.overlap_rate, removed,
          np.array([1, 3]), check=lambda v: 0.0 <= v <= 1.0)


# ------------------------------------------------------------------ schedules and sampling
DENSITY_SCHEDULES = {
    "sigmoid_density": ns.schedules.sigmoid_density,
    "cubic_density": ns.schedules.cubic_density,
    "mest_density": ns.schedules.mest_density,
}


@pytest.mark.parametrize("name", sorted(DENSITY_SCHEDULES))
@SETTINGS
@given(which=st.sampled_from(["step", "start", "end", "s_init", "s_final", "none"]),
       bad=st.integers(0, 10**6), step=st.integers(0, 200))
def test_density_schedules(name, which, bad, step):
    kw = {"start": 10, "end": 110, "s_init": 0.5, "s_final": 0.05}
    s = step
    if which == "step":
        s = BAD_REALS[bad % len(BAD_REALS)]
    elif which in ("start", "end"):
        kw[which] = BAD_SIZES[bad % len(BAD_SIZES)]
    elif which in ("s_init", "s_final"):
        kw[which] = BAD_REALS[bad % len(BAD_REALS)]

    def check(v):
        assert math.isfinite(v)
        lo, hi = sorted((float(kw["s_init"]), float(kw["s_final"])))
        assert lo - 1e-12 <= v <= hi + 1e-12 and 0 <= v <= 1  # schedule values lie in [0, 1]

    _call(f"schedules.{name}", which if which != "none" else "step",
          DENSITY_SCHEDULES[name], s, check=check, **kw)


@SETTINGS
@given(bad=st.sampled_from(BAD_REALS))
def test_constant_schedule_value(bad):
    _call("schedules.constant", "value", ns.schedules.constant, 3, value=bad,
          check=lambda v: 0.0 < v <= 1.0)


@SETTINGS
@given(seed=st.integers(0, 10**6), kind=st.integers(0, 6), alpha=st.sampled_from(
    [0.0, 1.0, 0.5, float("nan"), 2.0, -1.0]))
def test_removal_scores(seed, kind, alpha):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((5, 4))
    bad = [W, np.where(W > 1, np.nan, W), np.where(W > 1, np.inf, W), W[0], "W", None,
           W.astype(object)][kind]
    which = "W" if kind else "alpha"
    ok_alpha = math.isfinite(alpha) and 0.0 <= alpha <= 1.0
    if kind and not ok_alpha:
        alpha = 1.0
    _call("sampling.removal_scores", which, ns.sampling.removal_scores, bad, alpha=alpha,
          check=lambda S: np.all(np.isfinite(np.asarray(S))))


@SETTINGS
@given(k=st.sampled_from([0, 1, 3, -1, 1.5, 10**20, float("nan"), None, 100]),
       kind=st.integers(0, 4))
def test_choose_links(k, kind):
    scores = np.linspace(0, 1, 12).reshape(3, 4)
    allowed = np.ones((3, 4), dtype=bool)
    bad_scores = [scores, np.full((3, 4), np.nan), scores[0], "s", scores][kind]
    which = "scores" if kind in (1, 2, 3) else "k"
    if which == "scores" and not (isinstance(k, int) and 0 <= k <= 12):
        k = 3
    _call("sampling.choose_links", which, ns.sampling.choose_links, bad_scores, k,
          allowed=allowed, rng=0)
