"""Topologies on disk: ``.npz`` files (never pickle), written atomically.

File layout (format version 1), all plain numpy arrays:

* ``netshape_format`` = 1, ``orientation`` = "biadjacency (n_in, n_out): rows
  are inputs, columns outputs; torch mask = A.T", ``kind`` = "layer" or
  "network";
* ``names`` (network only): the layer names, in order;
* per layer ``L`` (``L = 0, 1, ...``): ``L.shape`` (2 ints), ``L.indptr``,
  ``L.indices`` — the canonical CSR structure of the boolean biadjacency.
"""

from __future__ import annotations

import os
import struct
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from .._fs import atomic_path
from .._validation import as_biadjacency, canonical_csr

__all__ = ["load_topology", "save_topology"]

FORMAT_VERSION = 1
#: default limit on the uncompressed size of a topology file (2 GiB)
MAX_BYTES = 2**31
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip with members, an empty zip
_NPY_MAGIC = b"\x93NUMPY"
ORIENTATION = "biadjacency (n_in, n_out): rows are inputs, columns outputs; torch mask = A.T"


def _layer_arrays(prefix: str, A: sp.csr_array) -> dict[str, np.ndarray]:
    return {f"{prefix}.shape": np.asarray(A.shape, dtype=np.int64),
            f"{prefix}.indptr": A.indptr.astype(np.int64),
            f"{prefix}.indices": A.indices.astype(np.int64)}


def _check_output_file(path: str | os.PathLike) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path={path!r} must be a file name (str or os.PathLike)")
    p = Path(path)
    if str(path) == "" or p.name in ("", ".", ".."):
        raise ValueError(f"path={str(path)!r} is not a file name")
    if p.is_dir():
        raise IsADirectoryError(f"path={str(path)!r} is a directory; give a file name")
    if not p.parent.is_dir():
        raise FileNotFoundError(f"path={str(path)!r}: the folder {str(p.parent)!r} does not "
                                "exist")
    return p


def save_topology(path: str | os.PathLike, A: Any) -> Path:
    """Write one layer, or an ordered mapping ``name -> layer``, to an ``.npz`` file.

    The file holds only numeric and string arrays (no pickle) plus a format
    version and the orientation note; it is written to a temporary file beside
    ``path`` and renamed, so a crash never leaves a half-written file.

    Parameters
    ----------
    path : str or os.PathLike
        Target file (the name is used as given; ``.npz`` is conventional).
    A : topology or mapping of str to topology
        A biadjacency of shape ``(n_in, n_out)`` (rows inputs, columns
        outputs; a torch mask is ``A.T``) in any supported array family, or an
        ordered mapping of layer names to such layers (a network snapshot).

    Returns
    -------
    pathlib.Path
        The path written.

    Examples
    --------
    >>> import tempfile, pathlib, netshape as ns
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "A.npz"
    >>> A = ns.generators.er(6, 4, 0.5, rng=0)
    >>> _ = save_topology(p, A)
    >>> (load_topology(p) != A).nnz
    0
    """
    arrays: dict[str, np.ndarray] = {
        "netshape_format": np.asarray(FORMAT_VERSION, dtype=np.int64),
        "orientation": np.asarray(ORIENTATION),
    }
    if isinstance(A, Mapping):
        if not A:
            raise ValueError("A is an empty mapping; a network snapshot needs at least one layer")
        names = []
        for idx, (name, layer) in enumerate(A.items()):
            if not isinstance(name, str):
                raise TypeError(f"layer names must be str; got {name!r} ({type(name).__name__})")
            names.append(name)
            arrays.update(_layer_arrays(str(idx), as_biadjacency(layer, f"A[{name!r}]")))
        arrays["kind"] = np.asarray("network")
        arrays["names"] = np.asarray(names, dtype=str)
    else:
        arrays["kind"] = np.asarray("layer")
        arrays.update(_layer_arrays("0", as_biadjacency(A, "A")))
    path = _check_output_file(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    return path


def _read_layer(data, idx: int, path: Path) -> sp.csr_array:
    shape = tuple(int(v) for v in data[f"{idx}.shape"])
    indptr = data[f"{idx}.indptr"]
    indices = data[f"{idx}.indices"]
    if (len(shape) != 2 or min(shape) < 1 or indptr.ndim != 1 or indptr.size != shape[0] + 1
            or indptr[0] != 0 or indptr[-1] != indices.size or np.any(np.diff(indptr) < 0)
            or (indices.size and (indices.min() < 0 or indices.max() >= shape[1]))):
        raise ValueError(f"{str(path)!r}: layer {idx} has an inconsistent CSR structure")
    A = sp.csr_array((np.ones(indices.size, dtype=bool), indices, indptr), shape=shape)
    return canonical_csr(A)


def _check_container(path: Path, max_bytes: int | None) -> None:
    """Refuse, before anything is decompressed or allocated, files that are not a sane .npz."""
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head.startswith(_NPY_MAGIC):
        raise ValueError(f"{str(path)!r} is a single-array .npy file, not a netshape .npz "
                         "topology file (write one with netshape.io.save_topology)")
    if not head.startswith(_ZIP_MAGIC):
        raise ValueError(f"{str(path)!r} is not a netshape topology file: an .npz file is a zip "
                         "archive, and this file does not start like one")
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        total = 0
        for info in infos:
            if not info.filename.endswith(".npy"):
                raise ValueError(f"{str(path)!r} is not a netshape topology file: it holds "
                                 f"{info.filename!r}, which is not an .npy array")
            total += info.file_size
            if max_bytes is not None and total > max_bytes:
                raise ValueError(
                    f"{str(path)!r} declares more than {max_bytes} bytes of uncompressed data "
                    f"(max_bytes={max_bytes}); refusing to decompress it. Pass a larger "
                    "max_bytes= (or None) if the file is trusted")
            with zf.open(info) as member:  # the .npy header alone: a few hundred bytes
                version = np.lib.format.read_magic(member)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(member)
                else:
                    shape, _, dtype = np.lib.format.read_array_header_2_0(member)
            if dtype.hasobject:
                raise ValueError(f"{str(path)!r}: entry {info.filename!r} holds Python objects "
                                 "(pickled data), which netshape never loads")
            needed = int(np.prod(shape, dtype=object)) * dtype.itemsize
            if needed > info.file_size:
                raise ValueError(f"{str(path)!r}: entry {info.filename!r} declares shape "
                                 f"{shape} ({needed} bytes) but holds only {info.file_size} "
                                 "bytes; the file is corrupt or crafted")


def load_topology(path: str | os.PathLike, *, max_bytes: int | None = MAX_BYTES
                  ) -> sp.csr_array | dict[str, sp.csr_array]:
    """Read a file written by :func:`save_topology`.

    Returns a canonical boolean ``csr_array`` ``(n_in, n_out)`` for a
    single-layer file and an ordered ``dict[str, csr_array]`` for a network
    file. Loads with ``allow_pickle=False``; a missing file raises
    ``FileNotFoundError``; a truncated, corrupt or foreign file (a text file,
    a single ``.npy`` array, an archive with other members, duplicate layer
    names) raises a ``ValueError`` naming the file. Before anything is
    decompressed, the archive's declared sizes are checked against the
    ``.npy`` headers and against ``max_bytes`` (default 2 GiB of uncompressed
    data; ``None`` for no limit), so a decompression bomb or a header that
    declares a huge shape is refused at once.

    Examples
    --------
    >>> import tempfile, pathlib, netshape as ns
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "net.npz"
    >>> _ = save_topology(p, {"fc1": ns.generators.er(6, 4, 0.5, rng=0),
    ...                       "fc2": ns.generators.er(4, 2, 0.5, rng=1)})
    >>> {k: v.shape for k, v in load_topology(p).items()}
    {'fc1': (6, 4), 'fc2': (4, 2)}
    """
    path = Path(path)
    if max_bytes is not None and (isinstance(max_bytes, bool) or not isinstance(max_bytes, int)
                                  or max_bytes <= 0):
        raise ValueError(f"max_bytes={max_bytes!r} must be a positive integer or None")
    if not path.exists():
        raise FileNotFoundError(f"no such topology file: {str(path)!r}")
    if path.is_dir():
        raise IsADirectoryError(f"{str(path)!r} is a directory, not a topology file")
    if not path.is_file():  # a device or a pipe could block or never end
        raise ValueError(f"{str(path)!r} is not a regular file (a device, pipe or socket)")
    try:
        _check_container(path, max_bytes)
        with np.load(path, allow_pickle=False) as data:
            if "netshape_format" not in data.files:
                raise ValueError(f"{str(path)!r} is not a netshape topology file "
                                 "(no 'netshape_format' entry)")
            version = int(data["netshape_format"])
            if version != FORMAT_VERSION:
                raise ValueError(f"{str(path)!r} has topology format {version}; this netshape "
                                 f"reads format {FORMAT_VERSION}")
            kind = str(data["kind"])
            if kind == "layer":
                return _read_layer(data, 0, path)
            if kind != "network":
                raise ValueError(f"{str(path)!r} has unknown kind {kind!r}")
            names = [str(n) for n in data["names"]]
            dup = sorted({n for n in names if names.count(n) > 1})
            if dup:
                raise ValueError(f"{str(path)!r} names layers {dup} more than once; layer names "
                                 "in a network file must be unique")
            return {name: _read_layer(data, i, path) for i, name in enumerate(names)}
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, KeyError, NotImplementedError,
            struct.error, UnicodeDecodeError, TypeError, IndexError) as exc:
        if isinstance(exc, (FileNotFoundError, IsADirectoryError)):
            raise
        raise ValueError(f"{str(path)!r} is truncated or corrupt, or not a netshape topology "
                         f"file: {type(exc).__name__}: {exc}") from exc
    except ValueError as exc:
        if str(path) in str(exc):
            raise
        raise ValueError(f"{str(path)!r} is truncated or corrupt: {exc}") from exc
