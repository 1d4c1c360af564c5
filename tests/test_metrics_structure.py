"""Power-law fits (both estimators), CAP by hand and vs brute force, hub alignment."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from netshape.metrics import cap, fit_power_law, hub_alignment


# ---------------------------------------------------------------- power law
def discrete_power_law(rng, alpha, xmin, n):
    """Exact discrete power-law samples by inverting the CDF on a truncated support."""
    from scipy import special

    k = np.arange(xmin, 200_000, dtype=np.float64)
    p = k ** -alpha / special.zeta(alpha, xmin)
    cdf = np.cumsum(p)
    u = rng.random(n) * cdf[-1]
    return k[np.searchsorted(cdf, u)].astype(np.int64)


@pytest.mark.parametrize("method", ["mle", "powerlaw"])
@pytest.mark.parametrize("alpha", [2.1, 2.5, 3.0])
def test_power_law_recovers_exponent(method, alpha):
    if method == "powerlaw":
        pytest.importorskip("powerlaw")
    rng = np.random.default_rng(int(alpha * 10))
    k = discrete_power_law(rng, alpha, 1, 4000)
    fit = fit_power_law(k, method=method)
    # stated tolerance: within 0.1 of the true exponent and within 4 standard errors
    assert abs(fit.alpha - alpha) < 0.1
    assert abs(fit.alpha - alpha) < 4 * fit.sigma + 0.02
    assert fit.method == method and fit.n == 4000 and fit.n_isolated == 0
    assert 0 <= fit.ks < 0.05
    if method == "powerlaw":
        assert fit.exponential is not None and fit.exponential[0] > 0  # power law beats exp
    else:
        assert fit.lognormal is None and fit.exponential is None


@pytest.mark.parametrize("method", ["mle", "powerlaw"])
def test_power_law_finds_xmin(method):
    if method == "powerlaw":
        pytest.importorskip("powerlaw")
    rng = np.random.default_rng(7)
    tail = discrete_power_law(rng, 2.5, 5, 3000)
    body = rng.integers(1, 5, size=1500)  # a flat body below xmin
    fit = fit_power_law(np.concatenate([tail, body]), method=method)
    assert 4 <= fit.xmin <= 7
    assert abs(fit.alpha - 2.5) < 0.15
    assert fit.n_tail <= 3000 + 1500


def test_power_law_on_a_layer_counts_isolated():
    rng = np.random.default_rng(3)
    deg = discrete_power_law(rng, 2.5, 1, 300).clip(max=200)
    A = np.zeros((400, 200), dtype=bool)
    for i, d in enumerate(deg):
        A[i, rng.choice(200, size=d, replace=False)] = True
    fit = fit_power_law(A, side="in", method="mle")
    assert fit.n_isolated == 100 and fit.n == 300 and fit.side == "in"
    assert fit_power_law(A, side="inputs", method="mle").alpha == fit.alpha
    both = fit_power_law(A, side="both", method="mle")
    assert both.n + both.n_isolated == 600


def test_mle_likelihood_is_maximal():
    # the estimator's alpha beats neighbouring exponents on the exact discrete likelihood
    from scipy import special

    rng = np.random.default_rng(11)
    k = discrete_power_law(rng, 2.7, 1, 2000)
    fit = fit_power_law(k, method="mle", max_candidates=2)
    tail = k[k >= fit.xmin]

    def ll(a):
        return -tail.size * math.log(special.zeta(a, fit.xmin)) - a * np.log(tail).sum()

    assert ll(fit.alpha) >= max(ll(fit.alpha - 1e-3), ll(fit.alpha + 1e-3))


def test_power_law_bad_input():
    with pytest.raises(ValueError, match="side"):
        fit_power_law(np.ones((3, 3)), side="rows")
    with pytest.raises(ValueError, match="min_tail"):
        fit_power_law(np.array([1, 2, 3]))
    with pytest.raises(ValueError, match="constant"):
        fit_power_law(np.full(50, 4))
    with pytest.raises(ValueError, match="non-negative integer"):
        fit_power_law(np.array([1.5] * 20))
    with pytest.raises(ValueError, match="method"):
        fit_power_law(np.arange(1, 30), method="ols")
    with pytest.raises(TypeError, match="not allowed"):
        fit_power_law("degrees")


# ---------------------------------------------------------------- CAP + hubs
def brute_force_paths(layers):
    count = 0
    sizes = [layers[0].shape[0]] + [L.shape[1] for L in layers]
    for path in itertools.product(*[range(s) for s in sizes]):
        if all(layers[l][path[l], path[l + 1]] for l in range(len(layers))):
            count += 1
    return count


def test_cap_by_hand():
    A1 = np.array([[1, 1, 0], [0, 1, 0]])
    A2 = np.array([[1, 0], [1, 1], [0, 1]])
    # paths: 0-0-0, 0-1-0, 0-1-1, 1-1-0, 1-1-1 -> 5 paths, each ending at one of the outputs
    A3 = np.array([[1], [1]])
    r = cap([A1, A2, A3])
    assert r.paths == 5.0 and r.log10 == pytest.approx(math.log10(5))
    assert cap({"a": A1, "b": A2}).paths == 5.0
    none = cap([A1, np.zeros((3, 2))])
    assert none.paths == 0.0 and none.log10 == -math.inf


@pytest.mark.parametrize("seed", range(8))
def test_cap_random_vs_brute_force(seed):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 5, size=4)
    layers = [rng.random((sizes[i], sizes[i + 1])) < 0.5 for i in range(3)]
    assert cap(layers).paths == brute_force_paths(layers)


def test_cap_log_scale_safe():
    # 40 dense 100x100 layers: 100**41 paths overflows nothing in log10
    layers = [np.ones((100, 100), dtype=bool)] * 40
    r = cap(layers)
    assert r.log10 == pytest.approx(82.0)
    deep = cap([np.ones((300, 300), dtype=bool)] * 130)  # 300**131 > float64 max
    assert deep.log10 == pytest.approx(131 * math.log10(300)) and deep.paths == math.inf
    assert len(deep.hub_alignment) == 129


def test_hub_alignment():
    A = np.array([[1, 1, 1, 0], [0, 1, 1, 0], [0, 0, 1, 1]])   # hidden in-degrees 1,2,3,1
    B_aligned = np.array([[1, 0], [1, 1], [1, 1], [0, 0]])     # out-degrees 1,2,2,0
    assert hub_alignment(A, B_aligned) > 0.7
    B_anti = np.array([[1, 1], [1, 0], [0, 0], [1, 1]])      # out-degrees 2,1,0,2
    assert hub_alignment(A, B_anti) < 0
    assert hub_alignment(np.ones((2, 3)), np.ones((3, 2))) == 0.0  # constant degrees
    with pytest.raises(ValueError, match="n_out must equal"):
        hub_alignment(np.ones((2, 3)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="do not chain"):
        cap([np.ones((2, 3)), np.ones((2, 2))])


def test_power_law_without_the_extra(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "powerlaw", None)  # makes `import powerlaw` fail
    k = discrete_power_law(np.random.default_rng(5), 2.5, 1, 1000)
    assert fit_power_law(k).method == "mle"
    with pytest.raises(ImportError, match=r"netshape\[powerlaw\]"):
        fit_power_law(k, method="powerlaw")


@pytest.mark.parametrize("method", ["mle", "powerlaw"])
def test_power_law_flags_non_power_law_degrees(method):
    if method == "powerlaw":
        pytest.importorskip("powerlaw")
    k = np.random.default_rng(0).binomial(5000, 0.05, size=2000)  # narrow, no heavy tail
    fit = fit_power_law(k, method=method)
    assert not fit.converged and "NOT CONVERGED" in str(fit)
    assert fit_power_law(discrete_power_law(np.random.default_rng(1), 2.5, 1, 2000),
                         method=method).converged


def test_power_law_verdict_from_the_likelihood_ratio_tests():
    pytest.importorskip("powerlaw")
    import netshape as ns

    er = ns.generators.er(2000, 2000, 0.01, rng=0)
    f = ns.metrics.fit_power_law(er, side="in")
    assert f.lognormal is not None and f.lognormal[0] < 0 and f.lognormal[1] < 0.1
    assert f.verdict == "no power law"
    bsf = ns.generators.bsf(4000, 4000, 0.005, gamma=2.3, rng=0)
    assert ns.metrics.fit_power_law(bsf, side="in").verdict in ("power law", "inconclusive")


def test_power_law_verdict_rules_on_made_up_tests():
    from netshape.metrics import PowerLawFit

    def fit(ln, ex, converged=True):
        return PowerLawFit(alpha=2.5, xmin=3, sigma=0.1, ks=0.05, n_tail=100, n=200,
                           n_isolated=0, side="in", method="powerlaw", lognormal=ln,
                           exponential=ex, converged=converged)

    assert fit((2.0, 0.01), (3.0, 0.001)).verdict == "power law"
    assert fit((-2.0, 0.01), (3.0, 0.001)).verdict == "no power law"
    assert fit((0.5, 0.5), (3.0, 0.001)).verdict == "inconclusive"
    assert fit(None, None).verdict == "untested"
    assert fit((2.0, 0.01), (3.0, 0.001), converged=False).verdict == "no power law"
