"""Export a sparsified model as a plain one plus its masks, and bring it back.

A sparsified model carries ``parametrizations.<param>.original`` and
``...mask`` entries in its state dict, which other tools (Hugging Face
``from_pretrained`` among them) do not know. :func:`save_sparse` writes
instead

* the *plain* model: parametrizations removed, each weight ``original * mask``
  (its zeros are the missing links), ``Conv1D`` layers back in their own
  ``(in, out)`` orientation; with ``save_pretrained`` for a Hugging Face model
  (``config.json`` + ``model.safetensors``), else ``model.safetensors``;
* ``netshape_masks.safetensors``: one bool mask per slot, shaped ``(out, in)``
  (``<slot>.weight_mask``, the transpose of the biadjacency), and in its
  metadata the slots, the ``packed`` declaration, the percolation relations
  (``dst.pairs``) and the step and update counts.

:func:`load_sparse` re-applies the masks to a freshly loaded plain model and
returns a new engine that continues the schedule from the saved step. For a
bit-identical resume (random stream, historical weights, ITOP), also save and
load ``dst.state_dict()`` (:meth:`~netshape.torch.DynamicSparseTrainer.save`).

On a sparsified Hugging Face model, ``model.save_pretrained(directory)`` goes
through :func:`save_sparse` (:func:`sparsify` arranges it), so its checkpoints
load with ``from_pretrained`` and keep the trained sparse weights.

``netshape analyze DIRECTORY`` reads such a directory (the masks file and its
relations).
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
import weakref
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize

from .linear_like import Conv1DLinear, linearize_conv1d
from .masking import Mask

__all__ = ["MASKS_FILE", "load_sparse", "plain_model", "read_masks", "save_sparse"]

#: name of the masks file inside an exported directory
MASKS_FILE = "netshape_masks.safetensors"
#: masks files larger than this are refused (a mask is one byte per weight)
MAX_MASKS_BYTES = 8 * 2**30


def plain_model(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with netshape masks baked into the weights and removed.

    ``Conv1DLinear`` layers become the original ``Conv1D`` again and
    :class:`~netshape.torch.SparseLinear` layers (sparse
    execution) plain ``nn.Linear`` with zeros off the links, so the state
    dict has the model's own ``<layer>.weight`` keys. The model itself is
    not changed.
    """
    from .execution import export_dense

    plain = copy.deepcopy(model)
    for key in ("save_pretrained", "_netshape_dst"):  # the sparse route set by sparsify()
        plain.__dict__.pop(key, None)
    for mod in plain.modules():
        if not parametrize.is_parametrized(mod):
            continue
        _own_class(mod)
        for pname in list(mod.parametrizations.keys()):
            if any(isinstance(p, Mask) for p in mod.parametrizations[pname]):
                parametrize.remove_parametrizations(mod, pname, leave_parametrized=True)
    export_dense(plain)
    for name, mod in list(plain.named_modules()):
        if isinstance(mod, Conv1DLinear):
            parent, _, leaf = name.rpartition(".")
            setattr(plain.get_submodule(parent) if parent else plain, leaf, mod.to_conv1d())
    return plain


def _own_class(mod: nn.Module) -> None:
    """Give a deep-copied parametrized module its own class.

    ``copy.deepcopy`` keeps the ``Parametrized<Cls>`` class, which holds the
    parametrized properties; removing them from the copy would delete them
    from the original model's class too (its ``weight`` would vanish).
    """
    cls = type(mod)
    ns = {k: v for k, v in vars(cls).items() if k not in ("__dict__", "__weakref__")}
    mod.__class__ = type(cls.__name__, cls.__bases__, ns)


def _meta(dst) -> dict[str, Any]:
    slots = {}
    for s in dst._slots:
        qual = next(n for n, m in dst.model.named_modules() if m is s.module)
        slots[s.name] = {"param": f"{qual}.{s.param}" if qual else s.param,
                         "rows": None if s.rows is None else [s.rows.start, s.rows.stop],
                         "shape": [s.n_out, s.n_in]}
    return {"format": "netshape-masks", "version": 1, "method": dst.config["method"],
            "density": dst.density, "step": dst.step_count, "updates": dst.update_count,
            "slots": slots, "packed": getattr(dst, "packed", None), "pairs": dst.pairs}


def _check_dir(directory) -> Path:
    if not isinstance(directory, (str, os.PathLike)) or not str(directory):
        raise TypeError(f"directory={directory!r} must be a non-empty path")
    out = Path(directory)
    if out.exists() and not out.is_dir():
        raise ValueError(f"directory={str(out)!r} exists and is not a directory")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise ValueError(f"directory={str(out)!r}: parent {str(parent)!r} does not exist")
    if not os.access(out if out.exists() else parent, os.W_OK):
        raise PermissionError(f"directory={str(out)!r} is not writable")
    return out


def save_sparse(model: nn.Module, directory, dst=None, **save_pretrained_kwargs) -> Path:
    """Write the plain model and its masks to ``directory`` (see the module docstring).

    Parameters
    ----------
    model : nn.Module
        A model sparsified by :func:`netshape.torch.sparsify`.
    directory : path
        Created if missing; files are written to a temporary directory beside
        it first and moved in only when all are complete.
    dst : DynamicSparseTrainer, optional
        The engine (for slot names, relations and step counts); by default the
        one :func:`sparsify` attached to ``model``.
    **save_pretrained_kwargs
        Passed to a Hugging Face ``save_pretrained`` (except ``state_dict``: the
        plain model's own is written). Under ``torch.distributed`` rank 0 writes.

    Returns
    -------
    Path
        ``directory``.

    Examples
    --------
    >>> import tempfile, torch
    >>> from netshape.torch import sparsify
    >>> from netshape.torch.export import save_sparse, load_sparse
    >>> net = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    >>> dst = sparsify(net, torch.optim.SGD(net.parameters(), lr=0.1), "set", density=0.5,
    ...                total_steps=10)
    >>> d = save_sparse(net, tempfile.mkdtemp() + "/out")
    >>> sorted(p.name for p in d.iterdir())
    ['model.safetensors', 'netshape_masks.safetensors']
    >>> fresh = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    >>> dst2 = load_sparse(fresh, torch.optim.SGD(fresh.parameters(), lr=0.1), d)
    >>> bool((dst2.masks["0"] == dst.masks["0"]).all())
    True
    """
    from safetensors.torch import save_file, save_model

    from ._checks import check_model
    from .engine import DynamicSparseTrainer

    check_model(model)
    if dst is not None and not isinstance(dst, DynamicSparseTrainer):
        raise TypeError(f"dst must be the DynamicSparseTrainer sparsify() returned, got "
                        f"{type(dst).__name__}")
    ref = model.__dict__.get("_netshape_dst")
    mine = ref() if ref is not None else None
    if dst is not None and mine is not None and dst is not mine:
        raise ValueError("dst is not the engine that sparsify() attached to model; its masks "
                         "would not match the weights written")
    if dst is None:
        dst = mine
    if dst is None:
        raise ValueError("save_sparse needs dst= (the engine sparsify() returned)")
    out = _check_dir(directory)
    # a caller's state_dict (HF Trainer passes one) holds the parametrization keys: not written
    save_pretrained_kwargs.pop("state_dict", None)
    from . import distributed as ddp

    if ddp.rank() != 0:  # one writer under torch.distributed
        return out
    meta = _meta(dst)
    masks = OrderedDict((f"{n}.weight_mask", m.detach().to("cpu", torch.bool).contiguous())
                        for n, m in dst.masks.items())
    plain = plain_model(model)
    parent = out.parent if str(out.parent) else Path(".")
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f".{out.name}."))
    try:
        if callable(getattr(type(plain), "save_pretrained", None)):
            type(plain).save_pretrained(plain, str(tmp), **save_pretrained_kwargs)
        else:
            save_model(plain, str(tmp / "model.safetensors"))
        save_file(masks, str(tmp / MASKS_FILE), metadata={"netshape": json.dumps(meta)})
        _swap_in(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


#: weight files of an earlier export that a new one replaces (as ``save_pretrained`` cleans
#: stale shards): a stale ``model.safetensors`` beside new shards would be loaded first
_WEIGHT_FILES = ("model.safetensors", "model-*-of-*.safetensors", "model.safetensors.index.json",
                 "pytorch_model.bin", "pytorch_model-*-of-*.bin", "pytorch_model.bin.index.json",
                 MASKS_FILE)
#: other files an export writes: a directory holding only these is replaced as a whole
_EXPORT_FILES = ("config.json", "generation_config.json")


def _swap_in(tmp: Path, out: Path) -> None:
    """Make ``out`` hold the files of ``tmp``, removing the weight files of an earlier export.

    A missing ``out``, or one holding only an earlier export, is replaced by
    renaming directories (a crash leaves the old or the new export, never a
    mix). A directory with other files too (a training checkpoint) gets the
    new files moved in one by one and stale weight files removed.
    """
    from fnmatch import fnmatch

    new = {f.name for f in tmp.iterdir()}
    if not out.exists():
        os.replace(tmp, out)
        return
    present = list(out.iterdir())
    ours = _WEIGHT_FILES + _EXPORT_FILES
    if all(f.is_file() and any(fnmatch(f.name, pat) for pat in ours) for f in present):
        old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old."))
        os.replace(out, old / "export")
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
        return
    for name in sorted(new - {MASKS_FILE}) + [MASKS_FILE]:  # the masks last: they mark it done
        os.replace(tmp / name, out / name)
    for f in present:
        if f.name not in new and f.is_file() and any(fnmatch(f.name, p) for p in _WEIGHT_FILES):
            f.unlink()


def _pairs_from_json(pairs) -> list[tuple] | None:
    if pairs is None:
        return None
    return [tuple(r) for r in pairs]


def read_masks(directory) -> tuple[OrderedDict[str, torch.Tensor], dict[str, Any]]:
    """``(masks, metadata)`` of an exported directory (or its masks file); safe loader."""
    from safetensors import safe_open

    if not isinstance(directory, (str, os.PathLike)) or not str(directory):
        raise TypeError(f"directory={directory!r} must be a non-empty path")
    p = Path(directory)
    path = p / MASKS_FILE if p.is_dir() else p
    if not path.is_file():
        raise FileNotFoundError(f"directory={str(directory)!r}: {str(path)!r} does not exist; "
                                "export with save_sparse()")
    if path.stat().st_size > MAX_MASKS_BYTES:
        raise ValueError(f"{str(path)!r} is larger than {MAX_MASKS_BYTES} bytes; refusing to load")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {}).get("netshape", "null"))
            masks = OrderedDict((k[: -len(".weight_mask")], f.get_tensor(k)) for k in f.keys())
    except Exception as exc:  # noqa: BLE001 - any parse failure is a bad file
        raise ValueError(f"{str(path)!r} is not a readable netshape masks file: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("format") != "netshape-masks" or \
            any(k not in meta for k in ("method", "density", "step", "updates", "pairs")):
        raise ValueError(f"{str(path)!r} has no netshape metadata; not written by save_sparse()")
    meta["pairs"] = _pairs_from_json(meta.get("pairs"))
    return masks, meta


@torch.no_grad()
def load_sparse(model: nn.Module, optimizer: torch.optim.Optimizer, directory, **sparsify_kwargs):
    """Re-apply the masks of ``directory`` to ``model`` and return a DST engine.

    ``model`` holds the plain weights (e.g. ``AutoModelForCausalLM.from_pretrained(directory)``
    or ``load_state_dict`` of ``model.safetensors``). ``sparsify_kwargs`` go to
    :func:`~netshape.torch.sparsify` (``total_steps``, ``update_every``, ...);
    ``method``, ``density``, ``packed`` and ``pairs`` default to the saved ones,
    and the engine continues from the saved step and update counts.
    """
    from . import execution as _execution
    from ._checks import check_model
    from .groups import find_slots
    from .setup import sparsify

    check_model(model)
    masks, meta = read_masks(directory)
    kw = {"method": meta["method"], "density": meta["density"], "packed": meta.get("packed"),
          "pairs": meta["pairs"], **sparsify_kwargs}
    kw.setdefault("total_steps", max(1, int(meta["step"])))
    # the masks and weights are written in masked mode, then the layers converted
    requested = kw.pop("execution", "auto")
    linearize_conv1d(model, optimizer)
    _execution.check(find_slots(model, kw.get("include"), kw.get("exclude"), kw.get("packed")),
                     requested)
    # sparsify() zeroes weights off its initial masks: keep the loaded values
    saved = {id(p): p.detach().clone() for p in model.parameters()}
    dst = sparsify(model, optimizer, execution="masked", **kw)
    current = dst.masks
    if set(masks) != set(current):
        raise ValueError(f"{directory!s}: saved layers {sorted(masks)} do not match the model's "
                         f"sparsified layers {sorted(current)}")
    for n, m in masks.items():
        if tuple(m.shape) != tuple(current[n].shape):
            raise ValueError(f"{directory!s}: mask of {n!r} has shape {tuple(m.shape)}, the "
                             f"layer {tuple(current[n].shape)}")
    dst._adopt_topology(masks, saved, meta["step"], meta["updates"], requested)
    return dst


def guard_save_pretrained(model: nn.Module, dst) -> None:
    """Remember ``dst`` on ``model``; route a ``save_pretrained`` through :func:`save_sparse`.

    Called by ``sparsify``. The engine is held by a weak reference (copies of
    the model do not copy it).
    """
    model.__dict__["_netshape_dst"] = weakref.ref(dst)
    if not callable(getattr(model, "save_pretrained", None)):
        return

    def save_pretrained(save_directory, *args, **kwargs):
        if args:
            raise TypeError("save_pretrained on a sparsified model takes the directory and "
                            "keyword arguments only (see netshape.torch.export.save_sparse)")
        return save_sparse(model, save_directory, None, **kwargs)

    save_pretrained.__doc__ = ("Sparsified by netshape: writes the plain model (weights carry "
                               "the zeros) and netshape_masks.safetensors; see "
                               "netshape.torch.export.save_sparse.")
    model.__dict__["save_pretrained"] = save_pretrained
