"""Edges of the core API that used to leak raw library errors (issue: every message true)."""

from __future__ import annotations

import pytest

import netshape as ns
from netshape.io import from_networkx, save_topology


@pytest.mark.parametrize("path, exc, words", [
    ("", ValueError, "path='' is not a file name"),
    (".", ValueError, "is not a file name"),
    (None, TypeError, "must be a file name"),
])
def test_save_topology_refuses_paths_that_are_not_files(path, exc, words):
    with pytest.raises(exc, match=words):
        save_topology(path, ns.generators.er(4, 3, 0.5, rng=0))


def test_save_topology_names_a_directory_or_a_missing_folder(tmp_path):
    A = ns.generators.er(4, 3, 0.5, rng=0)
    with pytest.raises(IsADirectoryError, match="is a directory"):
        save_topology(tmp_path, A)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        save_topology(tmp_path / "no" / "such" / "A.npz", A)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("G", [None, 3, "graph", [(0, 1)]])
def test_from_networkx_names_what_it_got(G):
    with pytest.raises(TypeError, match="G must be a networkx graph"):
        from_networkx(G)


@pytest.mark.parametrize("size", [1e20, 2.0**60, float(2**53 + 2)])
def test_float_sizes_beyond_exact_integers_are_refused(size):
    with pytest.raises(TypeError, match="n_in=.* must be a positive integer"):
        ns.generators.er(size, 4, 0.5, rng=0)


def test_sizes_that_cannot_fit_memory_are_refused_before_allocating():
    with pytest.raises(ValueError, match=r"n_in=4611686018427387904.*more than this machine"):
        ns.generators.er(2**62, 4, 0.5, rng=0)
    with pytest.raises(ValueError, match="more than this machine's memory"):
        ns.generators.brf(10**7, 10**7, 0.9, rng=0)


@pytest.mark.parametrize("value", [float("nan"), 7.0, 0.0, -0.1, "0.5"])
def test_constant_schedule_takes_densities_only(value):
    with pytest.raises((ValueError, TypeError), match="value="):
        ns.schedules.constant(3, value=value)


def test_removal_scores_refuse_nan_weights():
    import numpy as np

    W = np.array([[1.0, np.nan], [0.5, 2.0]])
    with pytest.raises(ValueError, match="W has NaN or infinite weights"):
        ns.sampling.removal_scores(W)
    with pytest.raises(ValueError, match="W has NaN or infinite weights"):
        ns.sampling.removal_scores_at(W, np.array([0, 1]))
    with pytest.raises(ValueError, match="allowed flat positions are 0 to 3"):
        ns.sampling.removal_scores_at(np.ones((2, 2)), np.array([0, 4]))
    with pytest.raises(TypeError, match="W must be a 2-D numeric array"):
        ns.sampling.removal_scores_at([[1.0, 2.0], [3.0]], np.array([0]))
