"""Density / zeta / delta schedules: end points, monotonicity, hand values, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from netshape import schedules as S


@pytest.mark.parametrize("k", [1.0, 6.0, 12.0])
@pytest.mark.parametrize("si, sf", [(0.5, 0.01), (1.0, 0.05), (0.2, 0.2), (0.1, 0.3)])
def test_sigmoid_exact_end_points_and_monotone(k, si, sf):
    assert S.sigmoid_density(0, start=0, end=100, s_init=si, s_final=sf, k=k) == si
    assert S.sigmoid_density(100, start=0, end=100, s_init=si, s_final=sf, k=k) == sf
    assert S.sigmoid_density(-5, start=0, end=100, s_init=si, s_final=sf, k=k) == si
    assert S.sigmoid_density(500, start=0, end=100, s_init=si, s_final=sf, k=k) == sf
    vals = [S.sigmoid_density(t, start=0, end=100, s_init=si, s_final=sf, k=k) for t in range(101)]
    d = np.diff(vals)
    assert np.all(d <= 1e-15) if sf <= si else np.all(d >= -1e-15)


def test_sigmoid_matches_definition_and_symmetry():
    def sig(x):
        return 1 / (1 + math.exp(-x))

    for t in (10, 25, 50, 75, 90):
        p = t / 100
        want = 0.5 + (0.01 - 0.5) * (sig(6 * (2 * p - 1)) - sig(-6)) / (sig(6) - sig(-6))
        assert S.sigmoid_density(t, start=0, end=100, s_init=0.5, s_final=0.01) == pytest.approx(
            want, abs=1e-15)
    # point symmetry about the midpoint
    a = S.sigmoid_density(30, start=0, end=100, s_init=1.0, s_final=1e-12)
    b = S.sigmoid_density(70, start=0, end=100, s_init=1.0, s_final=1e-12)
    assert a + b == pytest.approx(1.0)
    # the paper's Eq. 4 as printed misses the start point: s_i + (s_i - s_f) sigma(-k)
    printed = 0.5 + (0.5 - 0.01) * sig(6 * (0 - 50) / 50)
    assert printed != 0.5


def test_sigmoid_half_length_and_integral():
    # Appendix I: the sigmoid integral over its window is half the window
    ts = np.linspace(0, 100, 200001)
    v = np.array([S.sigmoid_density(t, start=0, end=100, s_init=1.0, s_final=1e-12) for t in ts])
    assert np.trapezoid(v, ts) == pytest.approx(50.0, rel=1e-4)
    assert S.sigmoid_density(50, start=0, end=100, s_init=0.5, s_final=0.1, half_length=True) == 0.1
    assert S.sigmoid_density(25, start=0, end=100, s_init=0.5, s_final=0.1,
                             half_length=True) == pytest.approx(0.3)
    c = np.array([S.cubic_density(t, start=0, end=100, s_init=1.0, s_final=1e-12) for t in ts])
    assert np.trapezoid(c, ts) == pytest.approx(25.0, rel=1e-4)


def test_cubic_hand_values():
    assert S.cubic_density(0, start=10, end=20, s_init=0.5, s_final=0.1) == 0.5
    assert S.cubic_density(15, start=10, end=20, s_init=0.5, s_final=0.1) == pytest.approx(
        0.1 + 0.4 * 0.125)
    assert S.cubic_density(20, start=10, end=20, s_init=0.5, s_final=0.1) == 0.1


def test_mest_two_stages():
    vals = [S.mest_density(t, start=0, end=100, s_init=0.4, s_final=0.1) for t in range(0, 120, 10)]
    assert set(vals) == {0.4, 0.25, 0.1}
    assert vals[0] == 0.4 and vals[5] == 0.25 and vals[-1] == 0.1
    assert all(a >= b for a, b in zip(vals, vals[1:], strict=False))


def test_cosine_zeta_and_linear_ramp():
    assert S.cosine_zeta(50, start=0, end=100, zeta=0.3) == pytest.approx(0.15)
    assert S.cosine_zeta(200, start=0, end=100, zeta=0.3) == 0.0
    assert S.linear_ramp(0, start=0, end=10, v_init=0.5, v_final=0.75) == 0.5
    assert S.linear_ramp(20, start=0, end=10, v_init=0.5, v_final=0.75) == 0.75
    assert S.constant(3, value=0.2) == 0.2


def test_empty_window_is_a_jump():
    assert S.sigmoid_density(4, start=5, end=5, s_init=0.5, s_final=0.1) == 0.5
    assert S.sigmoid_density(5, start=5, end=5, s_init=0.5, s_final=0.1) == 0.1


@pytest.mark.parametrize(
    "kwargs, exc, words",
    [
        ({"s_init": 1.5}, ValueError, "s_init=1.5"),
        ({"s_final": -0.1}, ValueError, "s_final=-0.1"),
        ({"end": -1}, ValueError, "end=-1"),
        ({"k": 0}, ValueError, "k=0"),
        ({"k": float("nan")}, ValueError, "k=nan"),
        ({"step": float("nan")}, TypeError, "step=nan"),
        ({"step": "3"}, TypeError, "step='3'"),
    ],
)
def test_bad_input(kwargs, exc, words):
    args = dict(step=3, start=0, end=10, s_init=0.5, s_final=0.1)
    args.update(kwargs)
    with pytest.raises(exc, match=words.replace("(", r"\(").replace(")", r"\)")):
        S.sigmoid_density(**args)


def test_graph_core_modules_do_not_import_torch():
    import subprocess
    import sys

    code = ("import sys, numpy as np, netshape.schedules, netshape.sampling as s; "
            "s.choose_links(np.ones(4), 2, allowed=np.ones(4, bool), soft=True, rng=0); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
