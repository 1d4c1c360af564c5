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
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from .._fs import atomic_path
from .._validation import as_biadjacency, canonical_csr

__all__ = ["load_topology", "save_topology"]

FORMAT_VERSION = 1
ORIENTATION = "biadjacency (n_in, n_out): rows are inputs, columns outputs; torch mask = A.T"


def _layer_arrays(prefix: str, A: sp.csr_array) -> dict[str, np.ndarray]:
    return {f"{prefix}.shape": np.asarray(A.shape, dtype=np.int64),
            f"{prefix}.indptr": A.indptr.astype(np.int64),
            f"{prefix}.indices": A.indices.astype(np.int64)}


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
    path = Path(path)
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


def load_topology(path: str | os.PathLike) -> sp.csr_array | dict[str, sp.csr_array]:
    """Read a file written by :func:`save_topology`.

    Returns a canonical boolean ``csr_array`` ``(n_in, n_out)`` for a
    single-layer file and an ordered ``dict[str, csr_array]`` for a network
    file. Loads with ``allow_pickle=False``; a missing file raises
    ``FileNotFoundError``; a truncated, corrupt or foreign file raises a
    ``ValueError`` naming the file.

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
    if not path.exists():
        raise FileNotFoundError(f"no such topology file: {str(path)!r}")
    try:
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
            return {name: _read_layer(data, i, path) for i, name in enumerate(names)}
    except (zipfile.BadZipFile, EOFError, OSError, KeyError) as exc:
        raise ValueError(f"{str(path)!r} is truncated or corrupt, or not a netshape topology "
                         f"file: {exc}") from exc
    except ValueError as exc:
        if str(path) in str(exc):
            raise
        raise ValueError(f"{str(path)!r} is truncated or corrupt: {exc}") from exc
