"""Soft removal scores (Eq. 2) and link selection, numpy and torch, against plain loops."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from netshape.sampling import choose_links, removal_scores, removal_scores_at, sample_indices

torch = pytest.importorskip("torch")


def eq2_loop(W, alpha, delta):
    n, m = W.shape
    out = np.zeros((n, m))
    for i in range(n):
        for j in range(m):
            a = abs(W[i, j])
            if a == 0:
                continue
            row = alpha + (1 - alpha) * sum(abs(W[i, k]) for k in range(m))
            col = alpha + (1 - alpha) * sum(abs(W[k, j]) for k in range(n))
            out[i, j] = (a / 2 / row + a / 2 / col) ** (delta / (1 - delta))
    return out


def test_removal_scores_match_definition():
    rng = np.random.default_rng(0)
    for _ in range(40):
        n, m = rng.integers(1, 9, size=2)
        W = rng.normal(size=(n, m)) * (rng.random((n, m)) < 0.5)
        for alpha in (0.0, 0.3, 1.0):
            for delta in (0.25, 0.5, 0.75):
                want = eq2_loop(W, alpha, delta)
                np.testing.assert_allclose(removal_scores(W, alpha=alpha, delta=delta), want,
                                           rtol=1e-12, atol=0)
                got = removal_scores(torch.from_numpy(W), alpha=alpha, delta=delta)
                assert isinstance(got, torch.Tensor)
                np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=0)


def test_removal_scores_hand_case_and_zero_rows():
    W = np.array([[2.0, 0.0], [0.0, 0.0]])
    # RI: |W|/sum_row + |W|/sum_col = 1 + 1, Eq. 2 halves it
    assert removal_scores(W, alpha=0.0, delta=0.5)[0, 0] == 1.0
    s = removal_scores(np.zeros((3, 3)), alpha=0.0, delta=0.75)
    assert np.all(s == 0) and np.all(np.isfinite(s))
    with pytest.raises(ValueError, match="alpha=2"):
        removal_scores(W, alpha=2, delta=0.5)
    with pytest.raises(ValueError, match="delta=1.0"):
        removal_scores(W, alpha=1, delta=1.0)


def _lib(x, kind):
    return torch.from_numpy(x) if kind == "torch" else x


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_choose_links_hard_topk_and_allowed(kind):
    rng = np.random.default_rng(1)
    for _ in range(60):
        n = int(rng.integers(2, 40))
        s = rng.random(n) * (rng.random(n) < 0.6)
        allowed = rng.random(n) < 0.7
        k = int(rng.integers(0, allowed.sum() + 1))
        idx, short = choose_links(_lib(s, kind), k, allowed=_lib(allowed, kind), rng=3)
        idx = np.asarray(idx)
        assert idx.size == k and len(set(idx.tolist())) == k
        assert allowed[idx].all()
        pos = np.flatnonzero(allowed & (s > 0))
        if pos.size >= k:
            assert short == 0
            # hard mode: exactly the k largest scores among the allowed positives
            assert np.sort(s[idx]).tolist() == np.sort(s[pos])[::-1][:k][::-1].tolist()
        else:
            assert short == k - pos.size
            assert set(pos.tolist()) <= set(idx.tolist())


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_choose_links_soft_never_picks_zero_or_disallowed(kind):
    s = np.array([0.0, 1.0, 2.0, 0.0, 3.0, 4.0])
    allowed = np.array([True, True, True, True, True, False])
    for seed in range(50):
        idx, short = choose_links(_lib(s, kind), 2, allowed=_lib(allowed, kind), soft=True,
                                  temperature=0.7, rng=seed)
        assert short == 0 and set(np.asarray(idx).tolist()) <= {1, 2, 4}
    with pytest.raises(ValueError, match="k=6 exceeds"):
        choose_links(_lib(s, kind), 6, allowed=_lib(allowed, kind))


@pytest.mark.parametrize("kind", ["numpy", "torch"])
@pytest.mark.parametrize("T", [1.0, 0.5, 2.0])
def test_soft_sampling_distribution(kind, T):
    """Pairs drawn in order follow successive sampling with p ∝ w^(1/T)."""
    w = np.array([1.0, 2.0, 3.0, 0.0, 4.0])
    p = np.where(w > 0, w ** (1 / T), 0.0)
    n_trials = 6000
    gen = np.random.default_rng(7)
    counts: dict[tuple[int, int], int] = {}
    for _ in range(n_trials):
        idx = sample_indices(_lib(w, kind), 2, temperature=T,
                             rng=torch.Generator().manual_seed(int(gen.integers(2**62)))
                             if kind == "torch" else gen)
        key = tuple(int(i) for i in np.asarray(idx))
        counts[key] = counts.get(key, 0) + 1
    assert all(3 not in key for key in counts)
    for i, j in itertools.permutations([0, 1, 2, 4], 2):
        want = p[i] / p.sum() * p[j] / (p.sum() - p[i])
        got = counts.get((i, j), 0) / n_trials
        assert abs(got - want) < 4 * np.sqrt(want * (1 - want) / n_trials) + 1e-3


def test_tiny_temperature_does_not_underflow():
    w = np.array([1e-300, 1e-200, 1.0, 0.0])
    idx = sample_indices(w, 3, temperature=0.01, rng=0)
    assert sorted(idx.tolist()) == [0, 1, 2]
    assert idx[0] == 2  # overwhelmingly the largest weight first


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_beyond_2_pow_24_categories(kind):
    n = 2**24 + 1000
    w = np.zeros(n, dtype=np.float32)
    hot = np.array([5, 2**24 + 3, 2**24 + 999, 2**23])
    w[hot] = [1.0, 1.0, 2.0, 0.5]
    idx = sample_indices(_lib(w, kind), 3, rng=0)
    idx = np.asarray(idx)
    assert set(idx.tolist()) <= set(hot.tolist()) and len(set(idx.tolist())) == 3
    allowed = np.ones(n, dtype=bool)
    allowed[2**24 + 3] = False
    got, short = choose_links(_lib(w, kind), 5, allowed=_lib(allowed, kind), soft=True, rng=1)
    got = np.asarray(got)
    assert short == 2 and 2**24 + 3 not in got.tolist()
    assert {5, 2**24 + 999, 2**23} <= set(got.tolist())
    if kind == "torch":  # the reason this sampler exists
        with pytest.raises(RuntimeError):
            torch.multinomial(torch.from_numpy(w), 3)


def test_sample_indices_bad_input():
    with pytest.raises(ValueError, match="non-negative"):
        sample_indices(np.array([1.0, -1.0]), 1)
    with pytest.raises(ValueError, match="temperature=0"):
        sample_indices(np.array([1.0]), 1, temperature=0)
    with pytest.raises(ValueError, match="k=2 exceeds"):
        sample_indices(torch.tensor([1.0, 0.0]), 2)


def test_same_seed_same_result():
    w = np.random.default_rng(0).random(1000)
    assert np.array_equal(sample_indices(w, 50, rng=4), sample_indices(w, 50, rng=4))
    a, _ = choose_links(torch.from_numpy(w), 50, allowed=torch.ones(1000, dtype=torch.bool),
                        soft=True, rng=torch.Generator().manual_seed(3))
    b, _ = choose_links(torch.from_numpy(w), 50, allowed=torch.ones(1000, dtype=torch.bool),
                        soft=True, rng=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_removal_scores_at_matches_dense():
    rng = np.random.default_rng(3)
    for _ in range(30):
        n, m = rng.integers(1, 10, size=2)
        mask = rng.random((n, m)) < 0.5
        W = rng.normal(size=(n, m))  # nonzero off the mask too: only idx links count
        idx = np.flatnonzero(mask)
        for alpha in (0.0, 0.4, 1.0):
            for delta in (0.3, 0.5, 0.75):
                want = removal_scores(W * mask, alpha=alpha, delta=delta).reshape(-1)[idx]
                np.testing.assert_allclose(removal_scores_at(W, idx, alpha=alpha, delta=delta),
                                           want, rtol=1e-12)
                got = removal_scores_at(torch.from_numpy(W), torch.from_numpy(idx),
                                        alpha=alpha, delta=delta)
                np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)
