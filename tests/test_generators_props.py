"""Property tests: every generator call returns a valid topology or raises the documented error."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netshape.generators import brf, bsf, bsw, csti, er

sizes = st.one_of(st.integers(-3, 40), st.floats(-2, 40), st.sampled_from([None, "8", True]))
densities = st.one_of(st.floats(-0.5, 1.5), st.sampled_from([0, 1, 1e-9, "x", float("nan")]))
unit = st.one_of(st.floats(-0.5, 1.5), st.sampled_from(["0.5", float("nan"), float("inf")]))
SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _valid_or_error(call, n_in, n_out, density):
    try:
        A = call()
    except (ValueError, TypeError) as exc:
        msg = str(exc)
        # the message names an argument and says what is allowed
        assert any(name in msg for name in ("n_in", "n_out", "density", "r=", "beta", "degrees",
                                            "gamma", "resort", "equal_partition", "X", "rng"))
        return None
    n_in, n_out = int(n_in), int(n_out)
    assert A.shape == (n_in, n_out) and A.dtype == bool and A.has_canonical_format
    m = math.floor(float(density) * n_in * n_out + 0.5)
    assert A.nnz == m and int(A.toarray().sum()) == m
    return A


@SETTINGS
@given(n_in=sizes, n_out=sizes, density=densities, r=unit,
       degrees=st.sampled_from(["fixed", "uniform", "poisson", None]), seed=st.integers(0, 5))
def test_brf_properties(n_in, n_out, density, r, degrees, seed):
    _valid_or_error(lambda: brf(n_in, n_out, density, r=r, degrees=degrees, rng=seed),
                    n_in, n_out, density)


@SETTINGS
@given(n_in=sizes, n_out=sizes, density=densities, beta=unit, seed=st.integers(0, 5))
def test_bsw_er_properties(n_in, n_out, density, beta, seed):
    _valid_or_error(lambda: bsw(n_in, n_out, density, beta=beta, rng=seed), n_in, n_out, density)
    _valid_or_error(lambda: er(n_in, n_out, density, rng=seed), n_in, n_out, density)


@SETTINGS
@given(n_in=sizes, n_out=sizes, density=densities,
       gamma=st.one_of(st.floats(1.5, 4.0), st.just(float("nan"))),
       ep=st.sampled_from([True, False, 1, "yes"]),
       resort=st.sampled_from([None, "rigid", "soft", "loose"]), seed=st.integers(0, 5))
def test_bsf_properties(n_in, n_out, density, gamma, ep, resort, seed):
    _valid_or_error(lambda: bsf(n_in, n_out, density, gamma=gamma, equal_partition=ep,
                                resort=resort, rng=seed), n_in, n_out, density)


@SETTINGS
@given(n_samples=st.integers(0, 6), n_in=st.integers(1, 8), n_out=sizes, density=densities,
       bad=st.sampled_from([None, "nan", "inf", "3d"]), seed=st.integers(0, 5))
def test_csti_properties(n_samples, n_in, n_out, density, bad, seed):
    X = np.random.default_rng(seed).normal(size=(n_samples, n_in))
    if bad == "nan" and X.size:
        X[0, 0] = np.nan
    elif bad == "inf" and X.size:
        X[-1, -1] = np.inf
    elif bad == "3d":
        X = X[None]
    _valid_or_error(lambda: csti(X, n_out, density, rng=seed), n_in, n_out, density)


@pytest.mark.parametrize(("call", "fragment"), [
    (lambda: brf(10, 10, 1.5), "density=1.5 is outside the allowed range (0, 1]"),
    (lambda: brf(10, 10, 0.0), "density=0.0 is outside the allowed range (0, 1]"),
    (lambda: brf(10, 10, 0.1, r=1.2), "r=1.2 is outside the allowed range [0, 1]"),
    (lambda: bsw(10, 10, 0.1, beta=-0.1), "beta=-0.1 is outside the allowed range [0, 1]"),
    (lambda: brf(10, 10, 0.1, degrees="poisson"), "degrees='poisson' is not allowed"),
    (lambda: er(0, 10, 0.1), "n_in=0 must be a positive integer"),
    (lambda: er(10, 2.5, 0.1), "n_out=2.5 must be a positive integer"),
    (lambda: er(10, 10, 0.001), "gives 0 links"),
    (lambda: bsf(10, 10, 0.1, gamma=2.0), "gamma=2.0 is outside the allowed range (2, inf)"),
    (lambda: bsf(10, 10, 0.1, resort="up"), "resort='up' is not allowed"),
    (lambda: csti(np.ones((1, 3)), 3, 0.5), "at least 2 rows"),
    (lambda: csti([[1.0, np.nan], [2.0, 3.0]], 2, 0.5), "X contains NaN"),
    (lambda: er(10, 10, 0.1, rng=-1), "rng=-1 is negative"),
])
def test_error_messages(call, fragment):
    with pytest.raises((ValueError, TypeError)) as info:
        call()
    assert fragment in str(info.value)
