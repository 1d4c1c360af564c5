"""Density, removal-fraction and softness schedules for dynamic sparse training.

All schedules are plain functions of the (integer or float) training step
and return Python floats; they know nothing about torch. ``start``/``end``
are steps; before ``start`` a schedule returns its initial value, from
``end`` on its final value.

Densities (fraction of links kept) are used throughout, not sparsities: the
decay formulas are affine in the value, so they read the same either way.
"""

from __future__ import annotations

import math
import numbers

from ._validation import check_density, check_range

__all__ = [
    "constant",
    "cosine_zeta",
    "cubic_density",
    "linear_ramp",
    "mest_density",
    "sigmoid_density",
]


def _check_finite(v, name: str) -> float:
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
        raise TypeError(f"{name}={v!r} must be a finite real number")
    return float(v)


def _check_window(step, start, end) -> tuple[float, float, float]:
    for name, v in (("step", step), ("start", start), ("end", end)):
        _check_finite(v, name)
    if end < start:
        raise ValueError(f"end={end!r} must be >= start={start!r}")
    return float(step), float(start), float(end)


def _check_value(v, name: str) -> float:
    return check_range(v, name, 0, 1)



def _progress(step: float, start: float, end: float) -> float:
    """Fraction of the window elapsed, clipped to [0, 1] (an empty window is a jump)."""
    if step <= start:
        return 0.0 if end > start else (1.0 if step >= end else 0.0)
    if step >= end:
        return 1.0
    return (step - start) / (end - start)


def constant(step, *, value: float) -> float:
    """A constant schedule: ``value`` at every step.

    ``value`` is a density: a finite number in (0, 1].

    >>> constant(10, value=0.05)
    0.05
    """
    return check_density(value, "value")


def sigmoid_density(step, *, start, end, s_init, s_final, k: float = 6.0,
                    half_length: bool = False) -> float:
    r"""Sigmoid gradual density decay (CHTss, paper Sec. 3.3, with exact end points).

    With progress :math:`p = (t - t_0)/(t_f - t_0)` clipped to [0, 1] and
    :math:`\sigma(x) = 1/(1+e^{-x})`,

    .. math::

        s(t) = s_i + (s_f - s_i)\,
               \frac{\sigma(k(2p - 1)) - \sigma(-k)}{\sigma(k) - \sigma(-k)} ,

    so :math:`s(t_0) = s_i` and :math:`s(t_f) = s_f` exactly. The paper's
    Eq. 4 writes :math:`s_i + (s_i - s_f)\sigma(\cdot)`, which has the sign
    slipped and misses both end points by :math:`\sigma(\pm k)`.

    Parameters
    ----------
    step : float
        Current step (or epoch; any unit, the same as ``start``/``end``).
    start, end : float
        First and last step of the decay window.
    s_init, s_final : float in (0, 1]
        Density at ``start`` and from ``end`` on.
    k : float, default 6
        Curvature (the paper uses 6 throughout).
    half_length : bool, default False
        Appendix I: the sigmoid's integral over its window is half the
        window, the cubic's a quarter; ``True`` ends the decay at
        ``start + (end - start) / 2`` so that the training FLOPs match a
        cubic schedule over ``[start, end]``.

    Examples
    --------
    >>> sigmoid_density(0, start=0, end=100, s_init=0.5, s_final=0.01)
    0.5
    >>> sigmoid_density(100, start=0, end=100, s_init=0.5, s_final=0.01)
    0.01
    >>> round(sigmoid_density(50, start=0, end=100, s_init=0.5, s_final=0.01), 6)
    0.255
    """
    step, start, end = _check_window(step, start, end)
    s_init, s_final = check_density(s_init, "s_init"), check_density(s_final, "s_final")
    check_range(k, "k", 0, math.inf, lo_open=True, hi_open=True)
    if half_length:
        end = start + (end - start) / 2.0
    p = _progress(step, start, end)
    if p <= 0.0:
        return s_init
    if p >= 1.0:
        return s_final

    def sig(x: float) -> float:
        return 1.0 / (1.0 + math.exp(-x))

    lo, hi = sig(-k), sig(k)
    frac = (sig(k * (2.0 * p - 1.0)) - lo) / (hi - lo)
    return s_init + (s_final - s_init) * frac


def cubic_density(step, *, start, end, s_init, s_final) -> float:
    r"""Cubic gradual density decay of GMP / GraNet (paper Eq. 9, Appendix I).

    .. math:: s(t) = s_f + (s_i - s_f)\,(1 - p)^3,\quad p = \frac{t - t_0}{t_f - t_0}\in[0,1].

    >>> cubic_density(0, start=0, end=10, s_init=1.0, s_final=0.1)
    1.0
    >>> round(cubic_density(5, start=0, end=10, s_init=1.0, s_final=0.1), 6)
    0.2125
    >>> cubic_density(10, start=0, end=10, s_init=1.0, s_final=0.1)
    0.1
    """
    step, start, end = _check_window(step, start, end)
    s_init, s_final = check_density(s_init, "s_init"), check_density(s_final, "s_final")
    p = _progress(step, start, end)
    if p >= 1.0:
        return s_final
    return s_final + (s_init - s_final) * (1.0 - p) ** 3


def mest_density(step, *, start, end, s_init, s_final, split: float = 0.5) -> float:
    r"""MEST\ :sub:`EM&S` two-stage density: discrete drops instead of a curve.

    Stage 1 (``start <= t < start + split (end - start)``) trains at
    ``s_init``; stage 2 (until ``end``) at the midpoint
    ``(s_init + s_final) / 2``; from ``end`` on at ``s_final``. Before
    ``start`` the density is ``s_init``.

    >>> [mest_density(t, start=0, end=10, s_init=0.5, s_final=0.1) for t in (0, 6, 10)]
    [0.5, 0.3, 0.1]
    """
    step, start, end = _check_window(step, start, end)
    s_init, s_final = check_density(s_init, "s_init"), check_density(s_final, "s_final")
    split = _check_value(split, "split")
    if step >= end:
        return s_final
    if step < start + split * (end - start):
        return s_init
    return (s_init + s_final) / 2.0


def cosine_zeta(step, *, start, end, zeta: float) -> float:
    r"""RigL's cosine-decayed removal fraction: :math:`\zeta/2\,(1 + \cos(\pi p))`.

    >>> cosine_zeta(0, start=0, end=100, zeta=0.3)
    0.3
    >>> cosine_zeta(100, start=0, end=100, zeta=0.3)
    0.0
    """
    step, start, end = _check_window(step, start, end)
    zeta = _check_value(zeta, "zeta")
    p = _progress(step, start, end)
    return 0.5 * zeta * (1.0 + math.cos(math.pi * p))


def linear_ramp(step, *, start, end, v_init: float, v_final: float) -> float:
    """Linear interpolation from ``v_init`` at ``start`` to ``v_final`` at ``end``.

    Used for the soft-removal ``delta`` (0.5 -> 0.75 in the paper) and for a
    regrowth temperature schedule.

    >>> linear_ramp(50, start=0, end=100, v_init=0.5, v_final=0.75)
    0.625
    """
    step, start, end = _check_window(step, start, end)
    v_init, v_final = _check_finite(v_init, "v_init"), _check_finite(v_final, "v_final")
    p = _progress(step, start, end)
    return v_init + (v_final - v_init) * p
