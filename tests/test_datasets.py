"""netshape.datasets: offline loaders, IDX / CIFAR binary parsing, clear errors."""

from __future__ import annotations

import gzip
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

from netshape import datasets


def _idx_bytes(arr: np.ndarray) -> bytes:
    arr = np.asarray(arr, dtype=np.uint8)
    header = struct.pack(">HBB", 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.tobytes()


def _write_mnist_style(folder: Path, names: dict, rng, n_train=7, n_test=5, gz=True):
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        img = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        lab = rng.integers(0, 10, size=n, dtype=np.uint8)
        for fname, arr in zip(names[split], (img, lab), strict=True):
            data = _idx_bytes(arr)
            if gz:
                (folder / fname).write_bytes(gzip.compress(data))
            else:
                (folder / fname.removesuffix(".gz")).write_bytes(data)
        out[split] = (img, lab)
    return out


def test_digits_shapes_range_and_stratified_split():
    d = datasets.load("digits", rng=3)
    assert d.X_train.dtype == np.float32 and d.y_train.dtype == np.int64
    assert len(d.y_train) + len(d.y_test) == 1797
    assert d.X_train.shape[1] == d.n_features == 64 and d.n_classes == 10
    assert 0.0 <= d.X_train.min() and d.X_train.max() <= 1.0
    # every class keeps (almost exactly) a 20 % share in the test split
    all_y = np.concatenate([d.y_train, d.y_test])
    for c in range(10):
        total = int((all_y == c).sum())
        assert int((d.y_test == c).sum()) == round(0.2 * total)


def test_digits_split_is_deterministic_and_depends_on_rng():
    a, b, c = (datasets.load("digits", rng=s) for s in (0, 0, 1))
    np.testing.assert_array_equal(a.X_test, b.X_test)
    np.testing.assert_array_equal(a.y_train, b.y_train)
    assert not np.array_equal(a.X_test, c.X_test)
    # train and test are disjoint and together are the whole set (rows are multisets)
    sk = pytest.importorskip("sklearn.datasets").load_digits()
    whole = np.sort((sk.data / 16.0).astype(np.float32).view(np.void(64 * 4)).ravel())
    mine = np.concatenate([a.X_train, a.X_test])
    np.testing.assert_array_equal(np.sort(mine.view(np.void(64 * 4)).ravel()), whole)


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_idx_from_data_dir(tmp_path, gz):
    rng = np.random.default_rng(0)
    raw = _write_mnist_style(tmp_path / "mnist", datasets._MNIST_STYLE, rng, gz=gz)
    d = datasets.load("mnist", data_dir=tmp_path)
    img, lab = raw["train"]
    assert d.X_train.shape == (7, 784) and d.X_test.shape == (5, 784)
    np.testing.assert_allclose(d.X_train, img.reshape(7, -1) / 255.0, rtol=0, atol=1e-7)
    np.testing.assert_array_equal(d.y_train, lab)
    np.testing.assert_array_equal(d.y_test, raw["test"][1])
    assert d.source == str(tmp_path / "mnist")


def test_data_dir_from_environment(tmp_path, monkeypatch):
    _write_mnist_style(tmp_path / "mnist", datasets._MNIST_STYLE, np.random.default_rng(1))
    monkeypatch.setenv("NETSHAPE_DATA", str(tmp_path))
    assert datasets.load("mnist").X_train.shape == (7, 784)


def test_emnist_images_are_transposed(tmp_path):
    raw = _write_mnist_style(tmp_path / "emnist", datasets._EMNIST, np.random.default_rng(2))
    d = datasets.load("emnist", data_dir=tmp_path)
    img = raw["train"][0]
    np.testing.assert_allclose(d.X_train[3], img[3].T.ravel() / 255.0, atol=1e-7)


def test_cifar10_binary_batches(tmp_path):
    rng = np.random.default_rng(4)
    folder = tmp_path / "cifar10" / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    recs = {}
    for f in datasets.required_files("cifar10"):
        rec = rng.integers(0, 256, size=(3, 3073), dtype=np.uint8)
        rec[:, 0] %= 10
        (tmp_path / "cifar10" / f).write_bytes(rec.tobytes())
        recs[f] = rec
    d = datasets.load("cifar10", data_dir=tmp_path)
    assert d.X_train.shape == (15, 3072) and d.X_test.shape == (3, 3072)
    first = recs["cifar-10-batches-bin/data_batch_1.bin"]
    np.testing.assert_allclose(d.X_train[:3], first[:, 1:] / 255.0, atol=1e-7)
    np.testing.assert_array_equal(d.y_test, recs["cifar-10-batches-bin/test_batch.bin"][:, 0])


@pytest.mark.parametrize("name", ["mnist", "emnist", "cifar10"])
def test_missing_files_message_names_files_and_folder(tmp_path, name, monkeypatch):
    monkeypatch.delenv("NETSHAPE_DATA", raising=False)
    with pytest.raises(FileNotFoundError) as err:
        datasets.load(name, data_dir=tmp_path)
    msg = str(err.value)
    assert str(tmp_path / name) in msg
    for f in datasets.required_files(name):
        assert f in msg


def test_missing_without_data_dir_says_how_to_pass_one(monkeypatch):
    monkeypatch.delenv("NETSHAPE_DATA", raising=False)
    with pytest.raises(FileNotFoundError, match="--data-dir"):
        datasets.load("mnist")


def test_download_needs_a_destination(monkeypatch):
    monkeypatch.delenv("NETSHAPE_DATA", raising=False)
    with pytest.raises(ValueError, match="data_dir"):
        datasets.load("mnist", download=True)


def test_unknown_dataset():
    with pytest.raises(ValueError, match="dataset='imagenet'"):
        datasets.load("imagenet")


def test_truncated_and_malformed_idx(tmp_path):
    rng = np.random.default_rng(5)
    _write_mnist_style(tmp_path / "mnist", datasets._MNIST_STYLE, rng, gz=False)
    f = tmp_path / "mnist" / "train-images-idx3-ubyte"
    f.write_bytes(f.read_bytes()[:-10])
    with pytest.raises(ValueError, match="truncated"):
        datasets.load("mnist", data_dir=tmp_path)
    f.write_bytes(b"\x12\x34\x56\x78" + b"\0" * 20)
    with pytest.raises(ValueError, match="not an unsigned-byte IDX"):
        datasets.load("mnist", data_dir=tmp_path)


def test_bad_cifar_batch_size(tmp_path):
    folder = tmp_path / "cifar10" / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    for f in datasets.required_files("cifar10"):
        (tmp_path / "cifar10" / f).write_bytes(b"\0" * 3074)
    with pytest.raises(ValueError, match="3073"):
        datasets.load("cifar10", data_dir=tmp_path)


def test_digits_bad_test_fraction():
    with pytest.raises(ValueError, match="test_fraction"):
        datasets.load("digits", test_fraction=1.5)


def test_module_import_does_not_import_torch():
    import subprocess

    code = "import netshape.datasets, sys; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.skipif(not datasets.DEBIAN_FASHION_MNIST.is_dir(),
                    reason="Debian package dataset-fashion-mnist is not installed")
def test_fashion_mnist_from_debian_package(monkeypatch):
    monkeypatch.delenv("NETSHAPE_DATA", raising=False)
    d = datasets.load("fashion-mnist")
    assert d.X_train.shape == (60000, 784) and d.X_test.shape == (10000, 784)
    assert d.n_classes == 10
    np.testing.assert_array_equal(np.bincount(d.y_test), np.full(10, 1000))
