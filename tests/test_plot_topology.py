"""Topology plots: exact and bucketed adjacency images, degree distributions, gallery."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import scipy.sparse as sp

from netshape.generators import brf, er
from netshape.plot import adjacency, degree_distribution, gallery
from netshape.plot._topology import bucket_counts

matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_adjacency_exact_pixels():
    A = np.array([[1, 0, 0], [0, 0, 1]])
    ax = adjacency(A)
    img = ax.images[0].get_array()
    assert img.shape == (2, 3)
    assert np.array_equal(np.asarray(img), A.astype(float))


def test_adjacency_uses_given_axes_and_never_shows(monkeypatch):
    monkeypatch.setattr(plt, "show", lambda *a, **k: pytest.fail("show() called"))
    fig, ax = plt.subplots()
    assert adjacency(er(10, 10, 0.2, rng=0), ax=ax) is ax


def test_bucket_counts_match_plain_loop():
    rng = np.random.default_rng(0)
    for _ in range(20):
        n_in, n_out = (int(v) for v in rng.integers(1, 60, size=2))
        bins = int(rng.integers(1, 20))
        M = rng.random((n_in, n_out)) < 0.3
        grid, br, bc = bucket_counts(sp.csr_array(M), bins)
        plain = np.zeros((br, bc), int)
        for i in range(n_in):
            for j in range(n_out):
                plain[i * br // n_in, j * bc // n_out] += M[i, j]
        assert np.array_equal(grid, plain)


def test_adjacency_bucketed_large_layer():
    A = brf(4000, 3000, 0.01, r=0.1, rng=0)
    ax = adjacency(A, bins=100)
    img = np.asarray(ax.images[0].get_array())
    assert img.shape == (100, 100)
    # pixel shade = link density of its block in % (the unit of every rate in netshape's
    # figures): never above 100, and the block-size-weighted mean is the layer density
    assert img.max() <= 100.0
    rsz = np.bincount(np.arange(4000) * 100 // 4000, minlength=100)
    csz = np.bincount(np.arange(3000) * 100 // 3000, minlength=100)
    assert np.isclose((img * np.outer(rsz, csz)).sum(), 100 * A.nnz)
    B = adjacency(np.ones((700, 300)), bins=64).images[0].get_array()
    assert np.allclose(B, 100.0)
    # BRF at small r is diagonal: the diagonal band holds far more than the corners
    assert img.diagonal().mean() > 20 * img[0, 50:].mean()


def test_degree_distribution_series():
    A = np.array([[1, 1, 0], [1, 0, 0], [1, 1, 1], [0, 0, 0]])
    ax = degree_distribution(A, side="both", log=False)
    (xin, yin), (xout, yout) = [line.get_data() for line in ax.lines]
    assert list(xin) == [0, 1, 2, 3] and np.allclose(yin, [0.25, 0.25, 0.25, 0.25])
    assert list(xout) == [1, 2, 3] and np.allclose(yout, [1 / 3] * 3)
    ax = degree_distribution(A, side="in", log=True)
    assert list(ax.lines[0].get_data()[0]) == [1, 2, 3]  # degree 0 dropped on log axes
    assert ax.get_xscale() == "log"
    with pytest.raises(ValueError, match="side='left' is not allowed"):
        degree_distribution(A, side="left")


def test_gallery_layout():
    fig = gallery(40, 30, 0.1, values=(0.0, 0.5, 1.0), rng=1)
    assert len(fig.axes) == 12
    titles = [ax.get_title() for ax in fig.axes]
    assert "BSW β=0.5" in titles and "BRF uniform r=1" in titles and titles[0].startswith("BSF")
