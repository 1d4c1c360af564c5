"""ITOP and removal/regrowth overlap on known mask sequences, and vs plain-loop definitions."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from netshape.metrics import ITOPTracker, itop, overlap_rate


def test_itop_known_sequence():
    masks = [np.array([[1, 0, 0], [0, 0, 0]]), np.array([[1, 1, 0], [0, 0, 0]]),
             np.array([[0, 0, 0], [0, 0, 1]])]
    t = ITOPTracker()
    rates = []
    for m in masks:
        t.update(m)
        rates.append(t.rate)
    assert rates == [1 / 6, 2 / 6, 3 / 6]
    assert t.union.toarray().astype(int).tolist() == [[1, 1, 0], [0, 0, 1]]
    assert itop(masks) == 0.5
    assert t.rates == {None: 0.5}


def test_itop_multi_layer_per_layer_and_total():
    t = ITOPTracker()
    t.update({"a": np.eye(2), "b": np.zeros((3, 4))})
    t.update({"a": np.ones((2, 2)), "b": sp.csr_array(np.eye(3, 4))})
    assert t.rates == {"a": 1.0, "b": 0.25}
    assert t.rate == pytest.approx((4 + 3) / (4 + 12))
    assert set(t.union) == {"a", "b"}
    with pytest.raises(ValueError, match="same layers"):
        t.update({"a": np.eye(2)})
    with pytest.raises(ValueError, match="same layers"):
        t.update({"a": np.eye(2), "b": np.zeros((4, 3))})


@pytest.mark.parametrize("seed", range(10))
def test_itop_random_vs_plain_union(seed):
    rng = np.random.default_rng(seed)
    shape = tuple(int(s) for s in rng.integers(1, 40, size=2))
    masks = [rng.random(shape) < 0.1 for _ in range(int(rng.integers(1, 8)))]
    union = np.zeros(shape, dtype=bool)
    for m in masks:
        union |= m
    t = ITOPTracker()
    for m in masks:
        t.update(m)
    assert t.rate == union.sum() / union.size
    assert np.array_equal(t.union.toarray(), union)


def test_itop_state_dict_round_trip_and_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    t = ITOPTracker()
    t.update([torch.tensor(rng.random((5, 7)) < 0.3), rng.random((7, 3)) < 0.3])
    sd = t.state_dict()
    assert all(isinstance(b, np.ndarray) for b in sd["bits"])
    u = ITOPTracker()
    # arrays may come back as tensors after torch.save / torch.load(weights_only=True)
    u.load_state_dict({**sd, "bits": [torch.from_numpy(b) for b in sd["bits"]]})
    assert u.rate == t.rate and u.n_updates == 1
    nxt = [rng.random((5, 7)) < 0.3, rng.random((7, 3)) < 0.3]
    t.update(nxt)
    u.update(nxt)
    assert u.rates == t.rates
    with pytest.raises(ValueError, match="state_dict"):
        u.load_state_dict({"mode": "single"})
    with pytest.raises(ValueError, match="empty"):
        itop([])


def test_overlap_known_values():
    removed = np.array([[1, 1, 0], [0, 0, 1]])
    regrown = np.array([[1, 0, 0], [1, 0, 1]])
    assert overlap_rate(removed, regrown) == pytest.approx(2 / 3)
    assert overlap_rate(np.array([0, 1, 5]), np.array([5, 0, 2, 2])) == pytest.approx(2 / 3)
    assert overlap_rate((np.array([0, 0, 1]), np.array([0, 1, 2])),
                        (np.array([0, 1, 1]), np.array([0, 0, 2]))) == pytest.approx(2 / 3)
    assert overlap_rate(removed, np.zeros((2, 3))) == 0.0  # nothing regrown: 0.0, not NaN
    assert overlap_rate({"a": removed, "b": np.eye(2)},
                        {"a": regrown, "b": np.eye(2)}) == pytest.approx(4 / 5)


@pytest.mark.parametrize("seed", range(10))
def test_overlap_random_vs_loop(seed):
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(1, 20)), int(rng.integers(1, 20)))
    a, b = rng.random(shape) < 0.3, rng.random(shape) < 0.3
    inter = sum(1 for i in range(shape[0]) for j in range(shape[1]) if a[i, j] and b[i, j])
    expect = inter / b.sum() if b.sum() else 0.0
    assert overlap_rate(a, b) == pytest.approx(expect)
    assert overlap_rate(np.flatnonzero(a), np.flatnonzero(b)) == pytest.approx(expect)
    assert overlap_rate(np.nonzero(a), np.nonzero(b)) == pytest.approx(expect)
    assert overlap_rate(sp.csr_array(a), b.astype(np.float32)) == pytest.approx(expect)


def test_overlap_bad_input():
    with pytest.raises(ValueError, match="shape"):
        overlap_rate(np.ones((2, 2)), np.ones((2, 3)))
    with pytest.raises(TypeError, match="same way"):
        overlap_rate(np.ones((2, 2)), np.array([1, 2]))
    with pytest.raises(TypeError, match="integer"):
        overlap_rate(np.array([0.5]), np.array([1.5]))
    with pytest.raises(ValueError, match="negative"):
        overlap_rate(np.array([-1]), np.array([1]))
    with pytest.raises(ValueError, match="same keys"):
        overlap_rate({"a": np.eye(2)}, {"b": np.eye(2)})
