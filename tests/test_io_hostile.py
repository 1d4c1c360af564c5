"""load_topology on hostile and broken files: every failure is a ValueError naming the file,
refused before anything large is decompressed or allocated."""

from __future__ import annotations

import io
import os
import zipfile

import numpy as np
import pytest

import netshape as ns
from netshape.io import load_topology, save_topology


@pytest.fixture
def good(tmp_path):
    p = tmp_path / "good.npz"
    save_topology(p, {"a": ns.generators.er(30, 20, 0.2, rng=0),
                      "b": ns.generators.er(20, 10, 0.3, rng=1)})
    return p


def _expect_named_error(path, match=None, **kw):
    with pytest.raises(ValueError) as info:
        load_topology(path, **kw)
    msg = str(info.value)
    assert str(path) in msg
    if match is not None:
        assert match in msg, msg
    return msg


@pytest.mark.parametrize("seed", range(40))
def test_flipped_bytes_give_a_named_value_error_or_the_same_topology(good, tmp_path, seed):
    raw = bytearray(good.read_bytes())
    rng = np.random.default_rng(seed)
    for pos in rng.integers(0, len(raw), size=int(rng.integers(1, 6))):
        raw[pos] ^= int(rng.integers(1, 256))
    bad = tmp_path / "bad.npz"
    bad.write_bytes(bytes(raw))
    try:
        out = load_topology(bad)
    except ValueError as exc:
        assert str(bad) in str(exc)
        assert "pickled" not in str(exc) or "Python objects" in str(exc)
    else:  # a flip in a place nothing reads (zip comments, padding) may leave it readable
        ref = load_topology(good)
        assert list(out) == list(ref)


def test_text_file_npy_file_and_symlink_are_named_for_what_they_are(tmp_path):
    txt = tmp_path / "notes.npz"
    txt.write_text("hello, this is not an archive\n")
    assert "does not start like one" in _expect_named_error(txt)
    npy = tmp_path / "arr.npy"
    np.save(npy, np.arange(5))
    assert ".npy file" in _expect_named_error(npy)
    if os.path.exists("/etc/hostname") or os.path.exists("/etc/passwd"):
        link = tmp_path / "link.npz"
        link.symlink_to("/etc/passwd" if os.path.exists("/etc/passwd") else "/etc/hostname")
        msg = _expect_named_error(link)
        assert "pickled" not in msg and "zip archive" in msg


def test_devices_and_directories_are_refused_without_reading(tmp_path):
    if os.path.exists("/dev/zero"):
        with pytest.raises(ValueError, match="not a regular file"):
            load_topology("/dev/zero")
    with pytest.raises(IsADirectoryError, match=str(tmp_path)):
        load_topology(tmp_path)


def _zip_with(path, members: dict[str, bytes]):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def _npy_header_only(shape, dtype="<i8") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False,
                                               "shape": shape})
    return buf.getvalue()


def test_declared_shape_bomb_is_refused_before_allocating(tmp_path):
    p = tmp_path / "shape_bomb.npz"
    _zip_with(p, {"netshape_format.npy": _npy_header_only(()) + np.int64(1).tobytes(),
                  "0.indptr.npy": _npy_header_only((10**12,)) + b"\0" * 64})
    msg = _expect_named_error(p, "declares shape")
    assert "0.indptr.npy" in msg


def test_zip_bomb_is_refused_from_its_declared_size(tmp_path):
    p = tmp_path / "zip_bomb.npz"
    n = 4 * 2**20  # 32 MiB of int64 zeros: compresses to ~32 KiB
    _zip_with(p, {"netshape_format.npy": _npy_header_only(()) + np.int64(1).tobytes(),
                  "0.indices.npy": _npy_header_only((n,)) + bytes(8 * n)})
    assert p.stat().st_size < 2**20
    msg = _expect_named_error(p, "max_bytes=", max_bytes=2**20)
    assert "refusing to decompress" in msg
    # the same file under a large enough limit reaches the format check, not a crash
    assert "truncated or corrupt" in _expect_named_error(p, max_bytes=2**30) \
        or "no 'kind'" in _expect_named_error(p, max_bytes=2**30)


def test_object_arrays_and_foreign_members_are_refused(tmp_path):
    p = tmp_path / "objects.npz"
    _zip_with(p, {"netshape_format.npy": _npy_header_only((), "|O")})
    assert "Python objects" in _expect_named_error(p)
    q = tmp_path / "foreign.npz"
    _zip_with(q, {"readme.txt": b"hi"})
    assert "readme.txt" in _expect_named_error(q)


def test_duplicate_layer_names_are_refused_not_merged(good, tmp_path):
    with np.load(good, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["names"] = np.asarray(["a", "a"])
    p = tmp_path / "dup.npz"
    np.savez_compressed(p, **arrays)
    assert "['a'] more than once" in _expect_named_error(p)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "1"])
def test_max_bytes_is_checked(good, bad):
    with pytest.raises(ValueError, match="max_bytes="):
        load_topology(good, max_bytes=bad)


def test_good_file_still_round_trips(good):
    out = load_topology(good)
    assert list(out) == ["a", "b"] and out["a"].shape == (30, 20)
