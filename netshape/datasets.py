"""Offline dataset loaders for the training runner (``netshape train``).

Every loader returns plain numpy arrays: images flattened to ``float32``
vectors in ``[0, 1]`` and ``int64`` labels ``0 .. n_classes-1``. Nothing is
fetched from the network unless ``download=True`` is passed explicitly.

=================  =======  =========  ===============================================
name               inputs   classes    where the files come from
=================  =======  =========  ===============================================
``digits``         64       10         scikit-learn's bundled 8x8 digits (no files)
``fashion-mnist``  784      10         IDX ``.gz`` files; Debian ``dataset-fashion-mnist``
``mnist``          784      10         IDX ``.gz`` files in ``DATA_DIR/mnist/``
``emnist``         784      47         EMNIST *balanced* IDX files in ``DATA_DIR/emnist/``
``cifar10``        3072     10         CIFAR-10 *binary* version in ``DATA_DIR/cifar10/``
=================  =======  =========  ===============================================

``DATA_DIR`` is the ``data_dir`` argument (``--data-dir``), else the
``NETSHAPE_DATA`` environment variable. Fashion-MNIST is also found in
``/usr/share/datasets/fashion-mnist/``. CIFAR-10 is read from the binary
release (``cifar-10-batches-bin``), never from the pickled Python release.

``digits`` has no official test set: :func:`load` holds out a stratified
``test_fraction`` of each class, chosen by ``rng`` (same ``rng``, same split).

Examples
--------
>>> from netshape import datasets
>>> d = datasets.load("digits", rng=0)
>>> d.X_train.shape, d.X_test.shape, d.n_classes
((1438, 64), (359, 64), 10)
>>> float(d.X_train.max()) <= 1.0
True
"""

from __future__ import annotations

import gzip
import os
import shutil
import struct
import tarfile
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._backend import require
from ._fs import atomic_path
from ._random import as_rng
from ._validation import check_choice

__all__ = ["DATASETS", "Dataset", "load", "required_files"]

#: the names :func:`load` accepts
DATASETS = ("digits", "fashion-mnist", "mnist", "emnist", "cifar10")

#: where Debian's ``dataset-fashion-mnist`` package installs the IDX files
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

_MNIST_STYLE = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
_EMNIST = {
    "train": ("emnist-balanced-train-images-idx3-ubyte.gz",
              "emnist-balanced-train-labels-idx1-ubyte.gz"),
    "test": ("emnist-balanced-test-images-idx3-ubyte.gz",
             "emnist-balanced-test-labels-idx1-ubyte.gz"),
}
_CIFAR_DIR = "cifar-10-batches-bin"
_CIFAR = {
    "train": tuple(f"{_CIFAR_DIR}/data_batch_{i}.bin" for i in range(1, 6)),
    "test": (f"{_CIFAR_DIR}/test_batch.bin",),
}
_URLS = {
    "mnist": "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "fashion-mnist": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "emnist": "https://biometrics.nist.gov/cs_links/EMNIST/gzip.zip",
    "cifar10": "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
}


@dataclass(frozen=True)
class Dataset:
    """A train/test split of a classification dataset (numpy arrays).

    ``X_*`` are ``float32`` of shape ``(n_samples, n_features)`` in ``[0, 1]``;
    ``y_*`` are ``int64`` class labels. ``source`` says where the data came from.
    """

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    source: str

    @property
    def n_features(self) -> int:
        return int(self.X_train.shape[1])


def required_files(name: str) -> list[str]:
    """The file names (relative to the dataset's folder) that :func:`load` reads.

    >>> required_files("mnist")[0]
    'train-images-idx3-ubyte.gz'
    """
    check_choice(name, "dataset", DATASETS)
    table = {"mnist": _MNIST_STYLE, "fashion-mnist": _MNIST_STYLE,
             "emnist": _EMNIST, "cifar10": _CIFAR}.get(name)
    return [] if table is None else [f for split in ("train", "test") for f in table[split]]


def load(name: str, *, data_dir: str | os.PathLike | None = None, download: bool = False,
         rng=0, test_fraction: float = 0.2) -> Dataset:
    """Load a dataset by name, offline unless ``download=True``.

    Parameters
    ----------
    name : str
        One of :data:`DATASETS`.
    data_dir : path, optional
        Folder holding ``<name>/`` subfolders with the raw files; defaults to
        ``$NETSHAPE_DATA``. Fashion-MNIST also looks in
        ``/usr/share/datasets/fashion-mnist``.
    download : bool
        Fetch missing files from the canonical mirrors into ``data_dir/<name>/``
        (needs a network). Never done implicitly.
    rng, test_fraction
        Only for ``digits`` (no official test set): a stratified fraction of
        each class is held out, chosen by ``rng``.

    Returns
    -------
    Dataset

    Raises
    ------
    ValueError
        Unknown ``name`` or a malformed file.
    FileNotFoundError
        Files missing; the message lists exactly which files to put where.
    """
    check_choice(name, "dataset", DATASETS)
    if name == "digits":
        return _load_digits(rng, test_fraction)
    folder = _find_folder(name, data_dir, download)
    if name == "cifar10":
        parts = {s: [_read_cifar_bin(folder / f) for f in _CIFAR[s]] for s in ("train", "test")}
        (Xtr, ytr), (Xte, yte) = (
            (np.concatenate([p[0] for p in parts[s]]), np.concatenate([p[1] for p in parts[s]]))
            for s in ("train", "test"))
    else:
        table = _EMNIST if name == "emnist" else _MNIST_STYLE
        # EMNIST stores each image transposed relative to MNIST
        Xtr, ytr = _read_idx_pair(folder, *table["train"], transpose=name == "emnist")
        Xte, yte = _read_idx_pair(folder, *table["test"], transpose=name == "emnist")
    n_classes = int(max(ytr.max(), yte.max())) + 1
    return Dataset(name, Xtr, ytr, Xte, yte, n_classes, str(folder))


def _load_digits(rng, test_fraction: float) -> Dataset:
    if not 0.0 < float(test_fraction) < 1.0:
        raise ValueError(f"test_fraction={test_fraction!r} must lie in (0, 1)")
    sk = require("sklearn.datasets")
    bunch = sk.load_digits()
    X = (np.asarray(bunch.data, dtype=np.float32) / 16.0).astype(np.float32)
    y = np.asarray(bunch.target, dtype=np.int64)
    gen = as_rng(rng)
    test = np.zeros(len(y), dtype=bool)
    # stratified: every class keeps the same share in both splits
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        k = int(round(test_fraction * len(idx)))
        test[gen.choice(idx, size=k, replace=False)] = True
    return Dataset("digits", X[~test], y[~test], X[test], y[test], 10,
                   "scikit-learn bundled 8x8 digits")


def _candidate_folders(name: str, data_dir) -> list[Path]:
    roots = []
    if data_dir is not None:
        roots.append(Path(data_dir))
    elif os.environ.get("NETSHAPE_DATA"):
        roots.append(Path(os.environ["NETSHAPE_DATA"]))
    folders = [r / name for r in roots] + roots
    if name == "fashion-mnist":
        folders.append(DEBIAN_FASHION_MNIST)
    return folders


def _has_all(folder: Path, name: str) -> bool:
    return all(_existing(folder / f) is not None for f in required_files(name))


def _existing(path: Path) -> Path | None:
    """``path`` itself, or its uncompressed twin when ``path`` ends in ``.gz``."""
    if path.is_file():
        return path
    if path.suffix == ".gz" and path.with_suffix("").is_file():
        return path.with_suffix("")
    return None


def _find_folder(name: str, data_dir, download: bool) -> Path:
    for folder in _candidate_folders(name, data_dir):
        if _has_all(folder, name):
            return folder
    if download:
        root = data_dir if data_dir is not None else os.environ.get("NETSHAPE_DATA")
        if root is None:
            raise ValueError("download=True needs data_dir (--data-dir) or $NETSHAPE_DATA "
                             "to say where the files go")
        target = Path(root) / name
        _download(name, target)
        return target
    where = (f"{Path(data_dir) / name}/" if data_dir is not None
             else f"{Path(os.environ['NETSHAPE_DATA']) / name}/" if os.environ.get("NETSHAPE_DATA")
             else f"DATA_DIR/{name}/ and pass --data-dir DATA_DIR (or set NETSHAPE_DATA)")
    files = ", ".join(required_files(name))
    extra = (" or install the Debian package dataset-fashion-mnist "
             f"(apt-get install dataset-fashion-mnist, files in {DEBIAN_FASHION_MNIST}/)"
             if name == "fashion-mnist" else "")
    looked = ", ".join(str(f) for f in _candidate_folders(name, data_dir)) or "nowhere"
    raise FileNotFoundError(
        f"dataset {name!r}: files not found (looked in: {looked}). Put {files} in {where}"
        f"{extra}; or pass --download on a machine that is online")


def _open(path: Path):
    real = _existing(path)
    if real is None:
        raise FileNotFoundError(f"dataset file {str(path)!r} is missing")
    return gzip.open(real, "rb") if real.suffix == ".gz" else open(real, "rb")  # noqa: SIM115


def _read_idx(path: Path) -> np.ndarray:
    """Parse an IDX file (big-endian header: magic, dims; then unsigned bytes)."""
    with _open(path) as fh:
        data = fh.read()
    if len(data) < 4:
        raise ValueError(f"{str(path)!r} is not an IDX file (too short)")
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08 or ndim not in (1, 3):
        raise ValueError(f"{str(path)!r} is not an unsigned-byte IDX file "
                         f"(header {data[:4].hex()})")
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise ValueError(f"{str(path)!r} is truncated: header says {dims}, "
                         f"found {body.size} bytes of data")
    return body.reshape(dims)


def _read_idx_pair(folder: Path, images: str, labels: str, *,
                   transpose: bool = False) -> tuple[np.ndarray, np.ndarray]:
    X = _read_idx(folder / images)
    if transpose and X.ndim == 3:
        X = X.transpose(0, 2, 1)
    y = _read_idx(folder / labels).astype(np.int64)
    if X.ndim != 3 or y.ndim != 1 or len(X) != len(y):
        raise ValueError(f"{folder}: {images} ({X.shape}) and {labels} ({y.shape}) do not match")
    return (X.reshape(len(X), -1).astype(np.float32) / np.float32(255.0)), y


def _read_cifar_bin(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 binary batch: records of 1 label byte + 3072 pixel bytes."""
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size % 3073:
        raise ValueError(f"{str(path)!r} is not a CIFAR-10 binary batch "
                         f"({raw.size} bytes is not a multiple of 3073)")
    rec = raw.reshape(-1, 3073)
    return rec[:, 1:].astype(np.float32) / np.float32(255.0), rec[:, 0].astype(np.int64)


def _fetch(url: str, target: Path) -> None:  # pragma: no cover - needs a network
    with atomic_path(target) as tmp, urllib.request.urlopen(url, timeout=60) as r, \
            open(tmp, "wb") as fh:
        shutil.copyfileobj(r, fh)


def _download(name: str, target: Path) -> None:  # pragma: no cover - needs a network
    """Fetch ``name`` from its canonical mirror into ``target`` (explicit opt-in only)."""
    target.mkdir(parents=True, exist_ok=True)
    url = _URLS[name]
    if name in ("mnist", "fashion-mnist"):
        for f in required_files(name):
            if _existing(target / f) is None:
                _fetch(url + f, target / f)
        return
    with tempfile.TemporaryDirectory(dir=target) as tmpdir:
        archive = Path(tmpdir) / Path(url).name
        _fetch(url, archive)
        if name == "emnist":
            with zipfile.ZipFile(archive) as zf:
                for f in required_files(name):
                    with zf.open(f"gzip/{f}") as src, atomic_path(target / f) as tmp, \
                            open(tmp, "wb") as dst:
                        shutil.copyfileobj(src, dst)
        else:
            with tarfile.open(archive, "r:gz") as tf:
                members = [m for m in tf.getmembers()
                           if m.name in required_files(name) and m.isfile()]
                tf.extractall(tmpdir, members=members, filter="data")
            (target / _CIFAR_DIR).mkdir(exist_ok=True)
            for f in required_files(name):
                os.replace(Path(tmpdir) / f, target / f)
