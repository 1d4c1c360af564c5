"""Discrete power-law fit of neuron degrees (``powerlaw`` extra, or a scipy MLE fallback).

A layer is a biadjacency ``A`` of shape ``(n_in, n_out)`` (a
``torch.nn.Linear`` mask is ``A.T``); ``side="in"`` fits the degrees of its
input neurons (row sums), ``side="out"`` those of its output neurons (column
sums), ``side="both"`` both together.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize, special

from .._backend import array_family, require, to_numpy
from .._validation import as_biadjacency

__all__ = ["PowerLawFit", "fit_power_law"]

_SIDES = {"in": "in", "inputs": "in", "out": "out", "outputs": "out", "both": "both"}
_ALPHA_BOUNDS = (1.0 + 1e-6, 20.0)


@dataclass(frozen=True)
class PowerLawFit:
    """Result of :func:`fit_power_law`.

    ``alpha`` is the exponent of :math:`p(k) \\propto k^{-\\alpha}` for
    :math:`k \\ge x_{min}`; ``sigma`` its standard error; ``ks`` the
    Kolmogorov-Smirnov distance of the tail; ``n_tail`` the degrees in the
    tail, ``n`` the positive degrees, ``n_isolated`` the degree-0 neurons
    (reported, never fitted: :math:`k^{-\\alpha}` is undefined at 0).
    ``lognormal`` / ``exponential`` are ``(R, p)`` normalised log-likelihood
    ratios against those alternatives (R > 0 favours the power law), or None
    when the ``powerlaw`` extra is not installed. ``method`` says which
    estimator ran: ``"powerlaw"`` or ``"mle"``.
    """

    alpha: float
    xmin: int
    sigma: float
    ks: float
    n_tail: int
    n: int
    n_isolated: int
    side: str
    method: str
    lognormal: tuple[float, float] | None = None
    exponential: tuple[float, float] | None = None
    converged: bool = True

    #: significance level of the likelihood-ratio tests behind :attr:`verdict`
    P_LEVEL = 0.1

    @property
    def verdict(self) -> str:
        """What the fit supports, from the likelihood-ratio tests it already ran.

        ``"no power law"`` when the fit did not converge or an alternative
        (lognormal, exponential) is significantly better (R < 0, p < 0.1);
        ``"power law"`` when the power law is significantly better than both;
        ``"inconclusive"`` otherwise; ``"untested"`` without the ``powerlaw`` extra.
        """
        if not self.converged:
            return "no power law"
        tests = [t for t in (self.lognormal, self.exponential) if t is not None]
        if not tests:
            return "untested"
        if any(R < 0 and p < self.P_LEVEL for R, p in tests):
            return "no power law"
        if len(tests) == 2 and all(R > 0 and p < self.P_LEVEL for R, p in tests):
            return "power law"
        return "inconclusive"

    def __str__(self) -> str:
        flag = "" if self.converged else "; NOT CONVERGED: no power law"
        return (f"alpha = {self.alpha:.3f} ± {self.sigma:.3f} (xmin = {self.xmin}, "
                f"n_tail = {self.n_tail}/{self.n}, KS = {self.ks:.3f}, "
                f"isolated = {self.n_isolated}, {self.method}{flag})")


def _degrees(A_or_degrees: Any, side: str) -> np.ndarray:
    x = A_or_degrees
    if array_family(x) == "other" and isinstance(x, (list, tuple)):
        x = np.asarray(x)
    if array_family(x) == "other":
        raise TypeError(f"A_or_degrees of type {type(x).__name__} is not allowed; pass a layer "
                        "(2-D) or a 1-D array of degrees")
    if np.ndim(x) == 1 if not hasattr(x, "ndim") else x.ndim == 1:
        d = np.asarray(to_numpy(x))
        if d.size and not np.all(np.isfinite(d.astype(np.float64))):
            raise ValueError("A_or_degrees contains a non-finite degree")
        if d.size and (np.any(d < 0) or np.any(d != np.round(d))):
            raise ValueError("A_or_degrees must hold non-negative integer degrees")
        return d.astype(np.int64)
    A = as_biadjacency(x, name="A_or_degrees")
    rows = np.diff(A.indptr).astype(np.int64)
    cols = np.bincount(A.indices, minlength=A.shape[1]).astype(np.int64)
    return {"in": rows, "out": cols, "both": np.concatenate([rows, cols])}[side]


def _xmin_candidates(pos: np.ndarray, min_tail: int, max_candidates: int) -> np.ndarray:
    srt = np.sort(pos)
    hi = srt[len(srt) - min_tail]  # the largest xmin that still leaves min_tail degrees
    cand = np.unique(srt[srt <= hi])
    if cand.size > max_candidates:  # bounded search: geometric subsample of candidate values
        idx = np.unique(np.round(np.geomspace(1, cand.size, max_candidates)).astype(int) - 1)
        cand = cand[idx]
    return cand


def _mle_alpha(tail: np.ndarray, xmin: int) -> float:
    n, s = tail.size, float(np.log(tail).sum())

    def nll(a: float) -> float:
        return n * math.log(special.zeta(a, xmin)) + a * s

    res = optimize.minimize_scalar(nll, bounds=_ALPHA_BOUNDS, method="bounded",
                                   options={"xatol": 1e-7})
    return float(res.x)


def _ks(tail: np.ndarray, xmin: int, alpha: float) -> float:
    vals, counts = np.unique(tail, return_counts=True)
    emp = np.cumsum(counts) / tail.size
    model = 1.0 - special.zeta(alpha, vals + 1.0) / special.zeta(alpha, xmin)
    # compare both sides of each jump of the empirical CDF
    emp_before = np.concatenate([[0.0], emp[:-1]])
    model_before = 1.0 - special.zeta(alpha, vals) / special.zeta(alpha, xmin)
    return float(max(np.max(np.abs(emp - model)), np.max(np.abs(emp_before - model_before))))


def _sigma(n: int, xmin: int, alpha: float) -> float:
    # observed Fisher information of the discrete likelihood: n * d2/da2 log zeta(a, xmin)
    h = 1e-4 * max(1.0, alpha)
    a = max(alpha, _ALPHA_BOUNDS[0] + h)
    f = [math.log(special.zeta(a + t, xmin)) for t in (-h, 0.0, h)]
    info = n * (f[0] - 2 * f[1] + f[2]) / (h * h)
    return float(1.0 / math.sqrt(info)) if info > 0 else float((alpha - 1) / math.sqrt(n))


def _fit_mle(pos: np.ndarray, cand: np.ndarray) -> tuple[float, int, float, int]:
    best = None
    for xmin in cand:
        tail = pos[pos >= xmin]
        alpha = _mle_alpha(tail, int(xmin))
        ks = _ks(tail, int(xmin), alpha)
        if best is None or ks < best[2]:
            best = (alpha, int(xmin), ks, int(tail.size))
    return best


def _fit_powerlaw(pl: Any, pos: np.ndarray, cand: np.ndarray):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        if cand.size == 1:
            fit = pl.Fit(pos, discrete=True, xmin=int(cand[0]), estimate_discrete=False,
                         verbose=False)
        else:
            fit = pl.Fit(pos, discrete=True, xmin=(int(cand[0]), int(cand[-1]) + 1),
                         estimate_discrete=False, verbose=False)
        p = fit.power_law
        comps = {}
        for alt in ("lognormal", "exponential"):
            try:
                R, pval = fit.distribution_compare("power_law", alt, normalized_ratio=True)
                comps[alt] = (float(R), float(pval)) if np.isfinite(R) and np.isfinite(pval) \
                    else None
            except Exception:  # noqa: BLE001 - an alternative that fails to fit is "not available"
                comps[alt] = None
        # powerlaw >= 2.0 renamed sigma to standard_err
        sigma = float(getattr(p, "standard_err", None) or p.sigma)
        ok = not bool(getattr(p, "noise_flag", False))
        return float(p.alpha), int(round(fit.xmin)), sigma, float(p.D), comps, ok


def fit_power_law(A_or_degrees: Any, *, side: str = "in", min_tail: int = 10,
                  max_candidates: int = 50, method: str = "auto") -> PowerLawFit:
    """Fit a discrete power law :math:`p(k) = k^{-\\alpha} / \\zeta(\\alpha, x_{min})` to degrees.

    The exponent maximises the exact discrete likelihood
    :math:`\\mathcal L(\\alpha) = -n_{tail} \\ln \\zeta(\\alpha, x_{min}) -
    \\alpha \\sum_{k_i \\ge x_{min}} \\ln k_i` (Hurwitz zeta), and
    :math:`x_{min}` minimises the KS distance between the tail and the fitted
    law (Clauset, Shalizi & Newman 2009) over a bounded set of candidates:
    degree values leaving at least ``min_tail`` degrees in the tail, at most
    ``max_candidates`` of them (a geometric subsample beyond that).

    Parameters
    ----------
    A_or_degrees : layer ``(n_in, n_out)`` (any family) or 1-D integer degrees
    side : {"in", "out", "both"}
        For a layer: its input neurons (row sums), output neurons (column
        sums), or both. Ignored for 1-D degrees.
    min_tail, max_candidates : int
        Bounds of the xmin search.
    method : {"auto", "powerlaw", "mle"}
        ``"powerlaw"`` uses the ``powerlaw`` package (``discrete=True``, exact
        estimator, plus likelihood-ratio tests against lognormal and
        exponential); ``"mle"`` the scipy estimator above (no comparisons);
        ``"auto"`` the package when installed.

    Returns
    -------
    PowerLawFit

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> k = rng.zipf(2.5, size=3000)
    >>> fit = fit_power_law(k, method="mle")
    >>> bool(abs(fit.alpha - 2.5) < 0.15), fit.n_isolated
    (True, 0)
    """
    if side not in _SIDES:
        raise ValueError(f"side={side!r} is not allowed; choose 'in', 'out' or 'both'")
    if method not in ("auto", "powerlaw", "mle"):
        raise ValueError(f"method={method!r} is not allowed; choose 'auto', 'powerlaw' or 'mle'")
    for v, name in ((min_tail, "min_tail"), (max_candidates, "max_candidates")):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 2:
            raise ValueError(f"{name}={v!r} must be an integer >= 2")
    side = _SIDES[side]
    deg = _degrees(A_or_degrees, side)
    pos = deg[deg > 0]
    n_isolated = int(deg.size - pos.size)
    if pos.size < min_tail:
        raise ValueError(
            f"only {pos.size} neuron(s) with a positive degree ({n_isolated} isolated); a power "
            f"law needs at least min_tail={min_tail}"
        )
    if np.unique(pos).size < 2:
        raise ValueError(f"all {pos.size} positive degrees equal {int(pos[0])}; no power law "
                         "can be fitted to a constant")
    cand = _xmin_candidates(pos, int(min_tail), int(max_candidates))
    pl = None
    if method == "powerlaw":
        pl = require("powerlaw")
    elif method == "auto":
        try:
            pl = require("powerlaw")
        except ImportError:
            pass
    comps: dict[str, Any] = {"lognormal": None, "exponential": None}
    if pl is not None:
        alpha, xmin, sigma, ks, comps, ok = _fit_powerlaw(pl, pos, cand)
        n_tail = int(np.count_nonzero(pos >= xmin))
        used = "powerlaw"
    else:
        alpha, xmin, ks, n_tail = _fit_mle(pos, cand)
        sigma = _sigma(n_tail, xmin, alpha)
        ok = True
        used = "mle"
    ok = ok and _ALPHA_BOUNDS[0] + 1e-3 < alpha < _ALPHA_BOUNDS[1] - 1e-3
    return PowerLawFit(alpha=alpha, xmin=xmin, sigma=sigma, ks=ks, n_tail=n_tail,
                       n=int(pos.size), n_isolated=n_isolated, side=side, method=used,
                       lognormal=comps["lognormal"], exponential=comps["exponential"],
                       converged=bool(ok))
