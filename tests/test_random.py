import numpy as np
import pytest
from scipy import stats

from netshape._random import (
    as_rng,
    spawn,
    uniform_sample_without_replacement,
    weighted_sample_without_replacement,
)


def test_as_rng_forms():
    g = np.random.default_rng(1)
    assert as_rng(g) is g
    assert as_rng(3).integers(1 << 30) == np.random.default_rng(3).integers(1 << 30)
    assert isinstance(as_rng(None), np.random.Generator)
    assert isinstance(as_rng(np.random.SeedSequence(4)), np.random.Generator)
    with pytest.raises(TypeError, match="rng='a'"):
        as_rng("a")
    with pytest.raises(ValueError, match="negative"):
        as_rng(-1)


def test_spawn_independent_and_reproducible():
    a = [c.integers(1 << 30) for c in spawn(7, 3)]
    b = [c.integers(1 << 30) for c in spawn(7, 3)]
    assert a == b and len(set(a)) == 3


@pytest.mark.parametrize("n,k", [(10, 0), (10, 10), (1000, 3), (10**12, 5), (50, 20)])
def test_uniform_sample_distinct(n, k):
    idx = uniform_sample_without_replacement(n, k, rng=0)
    assert idx.size == k and np.unique(idx).size == k
    assert idx.min(initial=0) >= 0 and idx.max(initial=0) < n
    np.testing.assert_array_equal(idx, uniform_sample_without_replacement(n, k, rng=0))


def test_uniform_sample_is_uniform():
    counts = np.zeros(20)
    rng = np.random.default_rng(0)
    for _ in range(2000):
        counts[uniform_sample_without_replacement(20, 3, rng)] += 1
    assert stats.chisquare(counts).pvalue > 1e-3


def test_weighted_sample_basic():
    idx = weighted_sample_without_replacement([0, 0, 3, 1, 0, 2], 3, rng=1)
    assert sorted(idx.tolist()) == [2, 3, 5]
    with pytest.raises(ValueError, match="exceeds the number of positive weights"):
        weighted_sample_without_replacement([0, 1, 0], 2, rng=0)
    with pytest.raises(ValueError, match="finite and non-negative"):
        weighted_sample_without_replacement([np.nan, 1], 1)
    with pytest.raises(ValueError, match="finite and non-negative"):
        weighted_sample_without_replacement([-1, 1], 1)


def test_weighted_sample_first_draw_probabilities():
    """The first drawn index follows p ∝ w (successive sampling)."""
    w = np.array([1.0, 2.0, 3.0, 4.0])
    rng = np.random.default_rng(5)
    first = np.array([weighted_sample_without_replacement(w, 2, rng)[0] for _ in range(8000)])
    counts = np.bincount(first, minlength=4)
    assert stats.chisquare(counts, 8000 * w / w.sum()).pvalue > 1e-3


def test_weighted_sample_inclusion_matches_numpy_choice():
    """Inclusion frequencies agree with numpy's successive sampling (k=2 of 5)."""
    w = np.array([5.0, 1.0, 1.0, 2.0, 0.5])
    rng = np.random.default_rng(9)
    ours = np.zeros(5)
    ref = np.zeros(5)
    for _ in range(6000):
        ours[weighted_sample_without_replacement(w, 2, rng)] += 1
        ref[rng.choice(5, 2, replace=False, p=w / w.sum())] += 1
    table = np.vstack([ours, ref])
    assert stats.chi2_contingency(table).pvalue > 1e-3


def test_weighted_sample_beyond_2_pow_24():
    n = 2**24 + 1000
    w = np.zeros(n, dtype=np.float32)
    hot = np.array([3, 2**24 + 5, 2**24 + 999])
    w[hot] = 1.0
    idx = weighted_sample_without_replacement(w, 3, rng=0)
    assert sorted(idx.tolist()) == sorted(hot.tolist())
