"""Shared fixtures and the ``gpu`` marker policy."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
try:
    import matplotlib

    matplotlib.use("Agg")
except ImportError:  # the plot extra is optional
    pass


def _gpu_available() -> bool:
    from netshape._backend import has_cupy

    if has_cupy():
        return True
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # noqa: BLE001
        return False


def pytest_collection_modifyitems(config, items):
    if _gpu_available():
        return
    skip = pytest.mark.skip(reason="no CUDA device answers on this machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def torch():
    """torch, or a skip of this one test where torch is not installed.

    The graph core runs without torch: a test module never skips as a whole
    for want of it, only the cases that hand it torch tensors.
    """
    return pytest.importorskip("torch")


def random_biadjacency(rng: np.random.Generator, n_in: int, n_out: int, p: float) -> np.ndarray:
    """Dense 0/1 matrix with independent links of probability ``p``."""
    return (rng.random((n_in, n_out)) < p).astype(np.float64)


@pytest.fixture
def small_layers():
    """Many small random layers: square, rectangular, empty, full, single row/col, isolated."""
    rng = np.random.default_rng(12345)
    layers = [
        np.zeros((4, 5)),
        np.ones((3, 4)),
        np.ones((1, 6)),
        np.ones((6, 1)),
        (rng.random((1, 7)) < 0.5).astype(float),
        (rng.random((7, 1)) < 0.5).astype(float),
    ]
    for _ in range(40):
        n_in, n_out = rng.integers(2, 13, size=2)
        layers.append(random_biadjacency(rng, int(n_in), int(n_out), float(rng.uniform(0.05, 0.7))))
    with_isolated = random_biadjacency(rng, 10, 9, 0.4)
    with_isolated[3] = 0
    with_isolated[:, 5] = 0
    layers.append(with_isolated)
    return layers
