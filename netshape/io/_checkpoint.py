"""Read layer topologies out of checkpoints, with safe loaders only.

Formats: PyTorch (``torch.load(weights_only=True)``: ``.pt``, ``.pth``,
``.bin``, ``.ckpt`` and anything else), safetensors (``.safetensors``) and
numpy (``.npz``, ``allow_pickle=False``). No loader here can run code from the
file: a checkpoint that needs unpickling of arbitrary objects is refused.

A netshape topology file (``save_topology``, e.g. a training snapshot) is
read as it is; so is the ``masks`` entry of a ``netshape train`` checkpoint.

Layer names are the module's qualified name in the model, as
``model.named_modules()`` gives it (``0``, ``2``, ``4`` for an
``nn.Sequential``): the names of ``dst.masks``, of training snapshots and of
``netshape analyze`` reports. Wrappers around the model's state dict
(``{"model": ..., "optimizer": ...}``, ``module.``, ``_orig_mod.``) never
become part of a name. Mask conventions recognised, in this order (``X`` is the
layer's name):

1. ``X.parametrizations.weight.<i>.mask`` — netshape's own masks and
   ``torch.ao.pruning`` (both are ``torch.nn.utils.parametrize``
   parametrizations with a ``mask`` buffer); several are combined with AND.
2. ``X.weight_mask`` — ``torch.nn.utils.prune``.
3. A ``torch.ao.pruning`` sparsifier state dict saved beside the model
   (``{"state": {"X.weight": {"mask": ...}}, "groups": [...]}`` anywhere in
   the file): its ``FakeSparsity`` parametrizations do not put masks in the
   model's state dict. Its ``state`` is a ``defaultdict``, which the safe
   loader refuses: save ``dict(sd["state"])``.
4. ``X.indices`` with ``X.sparse_shape`` — a layer run by
   ``netshape.torch`` in sparse execution (sorted flat positions
   ``out_index * in + in_index`` of its links, ``[out, in]``).
5. Otherwise ``X.weight != 0`` for every 2-D ``weight``, with a warning: DST
   methods grow new links at weight 0, so a freshly grown link is missed.

Masks are shaped like ``nn.Linear.weight``, ``(out, in)``; the returned
biadjacencies are their transposes, ``(n_in, n_out)``. Masks of
``nn.MultiheadAttention``'s ``in_proj_weight`` (or ``q_proj_weight`` ...)
become three layers ``<attn>.q``, ``<attn>.k``, ``<attn>.v``, the names
``netshape.torch`` gives them.
"""

from __future__ import annotations

import os
import pickle
import re
import warnings
import zipfile
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from .._backend import array_family, require, to_numpy
from .._validation import canonical_csr

__all__ = ["MAX_CHECKPOINT_BYTES", "CheckpointError", "check_file_size", "read_checkpoint"]

#: default ``max_bytes`` of checkpoint reads (16 GiB): a larger file is refused before
#: any loader opens it, unless the caller passes a larger limit (or None)
MAX_CHECKPOINT_BYTES = 2**34

#: keys under which training scripts nest the model's state dict
_NESTED = ("state_dict", "model_state_dict", "model", "module", "net", "network", "weights")
_PARAM_MASK = re.compile(
    r"^(?:(?P<layer>.+)\.)?parametrizations\.(?P<param>(?:in_proj_|[qkv]_proj_)?weight)\.\d+\.mask$")
_SPARSE_INDEX = re.compile(r"^(?:(?P<layer>.+)\.)?indices$")
_PRUNE_MASK = re.compile(r"^(?:(?P<layer>.+)\.)?(?P<param>(?:in_proj_|[qkv]_proj_)?weight)_mask$")
_WEIGHT = re.compile(
    r"^(?:(?P<layer>.+)\.)?(weight|weight_orig|parametrizations\.weight\.original)$")


class CheckpointError(ValueError):
    """A checkpoint that is missing a layer, truncated, corrupt or unsafe to load."""


def check_file_size(path: str | os.PathLike, max_bytes: int | None,
                    what: str = "checkpoint") -> int:
    """The size of ``path`` in bytes; a :class:`CheckpointError` naming the file, its
    size and the limit when it exceeds ``max_bytes`` (None: no limit).

    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "ck.pt"
    >>> _ = f.write_bytes(b"x" * 11)
    >>> check_file_size(f, 11)
    11
    >>> check_file_size(f, 10)
    Traceback (most recent call last):
    ...
    netshape.io._checkpoint.CheckpointError: checkpoint '...ck.pt' is 11 bytes, more than
    max_bytes=10; refusing to load it. ...
    """
    if max_bytes is not None and (isinstance(max_bytes, bool) or not isinstance(max_bytes, int)
                                  or max_bytes <= 0):
        raise ValueError(f"max_bytes={max_bytes!r} must be a positive integer or None")
    size = Path(path).stat().st_size
    if max_bytes is not None and size > max_bytes:
        raise CheckpointError(f"{what} {str(path)!r} is {size} bytes, more than "
                              f"max_bytes={max_bytes}; refusing to load it. Pass a larger "
                              "max_bytes= (or None) if the file is trusted")
    return size


def _is_tensor(x: Any) -> bool:
    return array_family(x) in ("numpy", "torch", "cupy")


def _reason(exc: Exception) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    pick = [ln for ln in lines if "Unpickler error" in ln]
    return (pick or lines or [type(exc).__name__])[0]


def _load_torch(path: Path) -> Any:
    torch = require("torch")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{str(path)!r} contains a pickled Python object that the safe loader "
            f"(torch.load(weights_only=True)) refuses; netshape never unpickles arbitrary "
            f"objects. Save a plain state_dict instead (a torch.ao.pruning sparsifier state: "
            f"convert its 'state' defaultdict with dict()). Loader said: {_reason(exc)}"
        ) from exc
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as exc:
        raise CheckpointError(
            f"{str(path)!r} is not a readable PyTorch checkpoint (truncated or corrupt?): {exc}"
        ) from exc


def _load_safetensors(path: Path) -> dict[str, Any]:
    st = require("safetensors")
    try:
        from safetensors.numpy import load_file

        return load_file(str(path))
    except TypeError:
        # dtypes numpy lacks (bfloat16): go through torch, then to float32
        torch = require("torch")
        from safetensors.torch import load_file as load_pt

        return {k: (v.float() if v.dtype == torch.bfloat16 else v)
                for k, v in load_pt(str(path)).items()}
    except (st.SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"{str(path)!r} is not a readable safetensors file (truncated or corrupt?): {exc}"
        ) from exc


def _load_npz(path: Path) -> dict[str, Any]:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise CheckpointError(
                f"{str(path)!r} holds a pickled object array, which netshape never loads "
                "(np.load(allow_pickle=False)); save plain numeric arrays"
            ) from exc
        raise CheckpointError(f"{str(path)!r} is not a readable .npz file: {exc}") from exc
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise CheckpointError(
            f"{str(path)!r} is not a readable .npz file (truncated or corrupt?): {exc}"
        ) from exc


def _flatten(obj: Mapping, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in obj.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, key + "."))
        elif _is_tensor(v):
            out[key] = v
    return out


def _state_dict(obj: Any, path: Path) -> dict[str, Any]:
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{str(path)!r} holds a {type(obj).__name__}, not a state dict")
    # descend into {"model": state_dict, "optimizer": ..., "torch_rng": tensor} style wrappers:
    # a state dict's values are tensors, never mappings, so a nested model mapping marks a
    # wrapper even beside loose tensors (an RNG state), and layer names stay the model's own
    while True:
        nested = [k for k in _NESTED if isinstance(obj.get(k), Mapping)]
        if not nested:
            break
        obj = obj[nested[0]]
    flat = _flatten(obj)
    for prefix in ("module.", "_orig_mod."):  # DDP and torch.compile wrappers
        if flat and all(k.startswith(prefix) for k in flat):
            flat = {k[len(prefix):]: v for k, v in flat.items()}
    return flat


def _as_topology(mask: Any) -> sp.csr_array:
    if sp.issparse(mask):
        return canonical_csr(mask)
    m = np.asarray(to_numpy(mask))
    return canonical_csr(sp.csr_array(m.T != 0))


def _join(layer: str, leaf: str) -> str:
    return f"{layer}.{leaf}" if layer else leaf


def _masks(flat: dict[str, Any], path: Path) -> OrderedDict[str, sp.csr_array]:
    found: OrderedDict[str, list] = OrderedDict()
    for key, value in flat.items():
        s = _SPARSE_INDEX.match(key)
        if s and np.ndim(value) == 1 and _join(s.group("layer") or "", "sparse_shape") in flat:
            layer = s.group("layer") or "layer"
            found.setdefault(layer, []).append(_sparse_topology(
                value, flat[_join(s.group("layer") or "", "sparse_shape")], key, path))
            continue
        m = _PARAM_MASK.match(key) or _PRUNE_MASK.match(key)
        if not (m and np.ndim(value) == 2):
            continue
        layer, param = m.group("layer") or "", m.group("param")
        if param == "in_proj_weight":
            # nn.MultiheadAttention packs q, k, v as row blocks of one (3E, E) weight
            v = np.asarray(to_numpy(value))
            if v.shape[0] % 3:
                raise CheckpointError(f"{str(path)!r}: {key} has shape {v.shape}; a packed "
                                      "in_proj_weight needs a multiple of 3 rows")
            E = v.shape[0] // 3
            for i, tag in enumerate("qkv"):
                found.setdefault(_join(layer, tag), []).append(v[i * E:(i + 1) * E])
        elif param != "weight":
            found.setdefault(_join(layer, param[0]), []).append(value)
        else:
            found.setdefault(layer or "layer", []).append(value)
    out: OrderedDict[str, sp.csr_array] = OrderedDict()
    for layer, masks in found.items():
        A = _as_topology(masks[0])
        for extra in masks[1:]:
            B = _as_topology(extra)
            if B.shape != A.shape:
                raise CheckpointError(f"{str(path)!r}: masks of layer {layer!r} disagree in shape "
                                      f"({A.shape} vs {B.shape})")
            A = canonical_csr(A.multiply(B))
        out[layer] = A
    return out


def _sparse_topology(indices: Any, shape: Any, key: str, path: Path) -> sp.csr_array:
    """Biadjacency ``(n_in, n_out)`` of a sparse-execution layer's flat link positions."""
    idx = np.asarray(to_numpy(indices)).astype(np.int64, copy=False).reshape(-1)
    dims = np.asarray(to_numpy(shape)).reshape(-1)
    if dims.size != 2 or (dims < 1).any():
        raise CheckpointError(f"{str(path)!r}: {key[:-len('indices')]}sparse_shape is "
                              f"{dims.tolist()}; expected [out, in] with positive entries")
    n_out, n_in = (int(d) for d in dims)
    if idx.size and (idx.min() < 0 or idx.max() >= n_out * n_in):
        raise CheckpointError(f"{str(path)!r}: {key} has positions outside the "
                              f"{n_out}x{n_in} layer")
    A = sp.csr_array((np.ones(idx.size, dtype=bool), (idx % n_in, idx // n_in)),
                     shape=(n_in, n_out))
    return canonical_csr(A)


def _sparsifier_masks(obj: Any, depth: int = 0) -> OrderedDict[str, sp.csr_array]:
    out: OrderedDict[str, sp.csr_array] = OrderedDict()
    if not isinstance(obj, Mapping) or depth > 3:
        return out
    state = obj.get("state")
    if isinstance(state, Mapping) and isinstance(obj.get("groups"), (list, tuple)):
        for fqn, entry in state.items():
            if isinstance(fqn, str) and fqn.endswith(".weight") and isinstance(entry, Mapping) \
                    and _is_tensor(entry.get("mask")) and np.ndim(entry["mask"]) == 2:
                out[fqn[: -len(".weight")]] = _as_topology(entry["mask"])
        return out
    for v in obj.values():
        for k, A in _sparsifier_masks(v, depth + 1).items():
            out.setdefault(k, A)
    return out


def _netshape_masks(obj: Any) -> OrderedDict[str, sp.csr_array]:
    """The ``masks`` entry of a ``netshape train`` / ``--task lm`` checkpoint, if it has one.

    Those checkpoints store every sparsifiable layer's ``(out, in)`` mask under the
    layer's module name (all ones for a dense run), so a dense run and a sparse run of
    one architecture read back as the same layers with the same names.
    """
    if not (isinstance(obj, Mapping) and str(obj.get("format", "")).startswith("netshape-")
            and isinstance(obj.get("masks"), Mapping)):
        return OrderedDict()
    return OrderedDict((str(k), _as_topology(v)) for k, v in obj["masks"].items()
                       if _is_tensor(v) and np.ndim(v) == 2)


def read_checkpoint(path: str | os.PathLike, *, max_bytes: int | None = MAX_CHECKPOINT_BYTES
                    ) -> OrderedDict[str, sp.csr_array]:
    """Layer topologies of a checkpoint: ordered mapping name -> biadjacency ``(n_in, n_out)``.

    Parameters
    ----------
    path : str or path-like
        ``.safetensors``, ``.npz`` or a PyTorch file (any other suffix). A
        training checkpoint that nests the model (``{"model": ...}``,
        ``{"state_dict": ...}``, ``{"model_state_dict": ...}``) is unwrapped;
        ``module.`` (DDP) and ``_orig_mod.`` (torch.compile) prefixes are
        dropped.
    max_bytes : int or None, default :data:`MAX_CHECKPOINT_BYTES` (16 GiB)
        A larger file is refused before any loader opens it; None: no limit.

    Returns
    -------
    OrderedDict[str, scipy.sparse.csr_array]
        In state-dict order. Each value is the layer's mask transposed
        (``nn.Linear.weight`` is ``(out, in)``), as a canonical bool csr.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    CheckpointError (a ValueError)
        Truncated, corrupt, pickled objects, larger than ``max_bytes``, or no
        2-D layer at all; the message names the file.

    Warns
    -----
    UserWarning
        When no mask is stored and the topology is read as ``weight != 0``:
        links grown at weight 0 since the last optimiser step are missed.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> np.savez(d / "ck.npz", **{"fc.weight_mask": np.array([[1, 0, 1], [0, 0, 1]]),
    ...                           "fc.weight_orig": np.ones((2, 3))})
    >>> layers = read_checkpoint(d / "ck.npz")
    >>> list(layers), layers["fc"].shape, layers["fc"].nnz
    (['fc'], (3, 2), 3)
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"checkpoint {str(p)!r} does not exist")
    if p.is_dir():
        raise IsADirectoryError(f"checkpoint {str(p)!r} is a directory; pass a file")
    if check_file_size(p, max_bytes) == 0:
        raise CheckpointError(f"{str(p)!r} is empty (0 bytes): truncated or not written yet")
    suffix = p.suffix.lower()
    if suffix == ".safetensors":
        obj = _load_safetensors(p)
    elif suffix == ".npz":
        obj = _load_npz(p)
        if "netshape_format" in obj:  # a topology file from save_topology: already (n_in, n_out)
            from ._topology import load_topology

            topo = load_topology(p)
            return OrderedDict(topo) if isinstance(topo, Mapping) else OrderedDict(layer=topo)
    else:
        obj = _load_torch(p)
    saved = _netshape_masks(obj)
    if saved:
        return saved
    flat = _state_dict(obj, p)
    layers = _masks(flat, p)
    for k, A in _sparsifier_masks(obj).items():
        layers.setdefault(k, A)
    if layers:
        return layers
    weights = OrderedDict()
    for key, value in flat.items():
        m = _WEIGHT.match(key)
        if m and np.ndim(value) == 2:
            weights[m.group("layer") or "layer"] = _as_topology(value)
    if not weights:
        raise CheckpointError(
            f"{str(p)!r} holds no 2-D layer weight or mask (keys like 'fc.weight', "
            f"'fc.weight_mask', 'fc.parametrizations.weight.0.mask'); found "
            f"{sorted(flat)[:8]}{' ...' if len(flat) > 8 else ''}"
        )
    warnings.warn(
        f"{str(p)!r} stores no masks; reading each layer as weight != 0. Links regrown at "
        "weight 0 (as DST methods do) and not yet updated by the optimiser are missed, so "
        "the topology can look sparser than it is",
        UserWarning, stacklevel=2,
    )
    return weights
