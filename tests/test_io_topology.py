"""save_topology / load_topology: round trips, networks, atomicity, corrupt files."""

from __future__ import annotations

import os

import numpy as np
import pytest
import scipy.sparse as sp

from netshape.generators import brf, er
from netshape.io import load_topology, save_topology


def test_round_trip_many_layers(tmp_path, small_layers):
    for i, M in enumerate(small_layers):
        p = tmp_path / f"l{i}.npz"
        save_topology(p, M)
        B = load_topology(p)
        assert isinstance(B, sp.csr_array) and B.dtype == bool and B.has_canonical_format
        assert np.array_equal(B.toarray(), M != 0)


def test_round_trip_input_families(tmp_path):
    A = brf(30, 20, 0.2, r=0.3, rng=0)
    torch = pytest.importorskip("torch")
    for variant in (A, sp.coo_matrix(A), A.toarray().astype(np.float32) * 3.0,
                    torch.from_numpy(A.toarray())):
        save_topology(tmp_path / "x.npz", variant)
        assert (load_topology(tmp_path / "x.npz") != A).nnz == 0


def test_network_round_trip_keeps_order(tmp_path):
    net = {"z_last": er(5, 4, 0.5, rng=0), "a_first": er(4, 3, 0.5, rng=1),
           "m": np.eye(3, 2)}
    save_topology(tmp_path / "net.npz", net)
    got = load_topology(tmp_path / "net.npz")
    assert list(got) == ["z_last", "a_first", "m"]
    for k in net:
        assert np.array_equal(got[k].toarray(), sp.csr_array(net[k]).toarray() != 0)


def test_file_contents_are_plain_and_versioned(tmp_path):
    save_topology(tmp_path / "a.npz", er(4, 4, 0.5, rng=0))
    with np.load(tmp_path / "a.npz", allow_pickle=False) as data:
        assert int(data["netshape_format"]) == 1
        assert "torch mask = A.T" in str(data["orientation"])
        assert all(data[k].dtype != object for k in data.files)


def test_write_is_atomic(tmp_path, monkeypatch):
    p = tmp_path / "keep.npz"
    save_topology(p, er(4, 4, 0.5, rng=0))
    before = p.read_bytes()

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(np, "savez_compressed", boom)
    with pytest.raises(RuntimeError):
        save_topology(p, er(4, 4, 0.5, rng=1))
    assert p.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["keep.npz"]  # no temporary left behind


def test_truncated_and_foreign_files(tmp_path):
    p = tmp_path / "a.npz"
    save_topology(p, er(50, 50, 0.2, rng=0))
    data = p.read_bytes()
    (tmp_path / "trunc.npz").write_bytes(data[: len(data) // 2])
    (tmp_path / "junk.npz").write_bytes(b"not a zip file at all")
    np.savez(tmp_path / "foreign.npz", x=np.arange(3))
    for name in ("trunc.npz", "junk.npz", "foreign.npz"):
        with pytest.raises(ValueError, match=name):
            load_topology(tmp_path / name)
    with pytest.raises(FileNotFoundError):
        load_topology(tmp_path / "missing.npz")


def test_inconsistent_structure_is_refused(tmp_path):
    p = tmp_path / "bad.npz"
    np.savez(p, netshape_format=np.asarray(1), kind=np.asarray("layer"),
             orientation=np.asarray("x"), **{"0.shape": np.asarray([2, 2]),
                                             "0.indptr": np.asarray([0, 1, 2]),
                                             "0.indices": np.asarray([0, 5])})
    with pytest.raises(ValueError, match="bad.npz"):
        load_topology(p)


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="empty mapping"):
        save_topology(tmp_path / "e.npz", {})
    with pytest.raises(TypeError, match="layer names must be str"):
        save_topology(tmp_path / "e.npz", {1: np.eye(2)})
    with pytest.raises(ValueError, match="2-D"):
        save_topology(tmp_path / "e.npz", np.ones(3))
    assert not (tmp_path / "e.npz").exists()
