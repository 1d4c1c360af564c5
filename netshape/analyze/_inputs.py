"""What ``netshape analyze`` reads: a checkpoint or run directory, its snapshots, its metrics.

Layout of a run directory (as ``netshape train`` writes it): ``checkpoint.pt``
(or one other checkpoint file), ``snapshots/update_NNNNNN.npz`` and
``metrics.csv``. Nothing here writes.
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from pathlib import Path

from .._fs import read_csv

__all__ = ["find_inputs", "read_history", "read_snapshots"]

_CKPT_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".safetensors", ".npz")
_SNAP = re.compile(r"^update_(\d+)\.npz$")


#: the masks file of an exported directory (netshape.torch.export.MASKS_FILE)
MASKS_FILE = "netshape_masks.safetensors"


def find_inputs(source: str | Path) -> tuple[Path | None, list[tuple[int, Path]]]:
    """``(checkpoint or None, [(update number, snapshot path), ...])`` for a file or run dir.

    A run directory holds ``checkpoint.pt`` (or exactly one ``*.pt``, ``*.pth``,
    ``*.bin``, ``*.ckpt``, ``*.safetensors``, ``*.npz`` file) and optionally
    ``snapshots/update_NNNNNN.npz``; a directory of ``update_*.npz`` files
    is a snapshot directory on its own.
    """
    src = Path(source)
    if not src.exists():
        raise FileNotFoundError(f"{str(src)!r} does not exist; pass a checkpoint file or a run "
                                "directory")
    if src.is_file():
        return src, []
    if (src / MASKS_FILE).is_file():  # a directory written by netshape.torch.export.save_sparse
        return src / MASKS_FILE, []
    snap_dir = src / "snapshots" if (src / "snapshots").is_dir() else src
    snaps = sorted((int(m.group(1)), p) for p in snap_dir.iterdir()
                   if p.is_file() and (m := _SNAP.match(p.name)))
    ckpt = None
    for name in ("checkpoint.pt", "checkpoint.safetensors", "checkpoint.npz"):
        if (src / name).is_file():
            ckpt = src / name
            break
    if ckpt is None:
        cands = sorted(p for p in src.iterdir() if p.is_file() and p.suffix in _CKPT_SUFFIXES
                       and not _SNAP.match(p.name))
        if len(cands) > 1:
            names = ", ".join(p.name for p in cands)
            raise ValueError(f"{str(src)!r} holds several checkpoints ({names}); pass one file, "
                             "or name it checkpoint.pt")
        ckpt = cands[0] if cands else None
    if ckpt is None and not snaps:
        raise FileNotFoundError(
            f"{str(src)!r} has no checkpoint (checkpoint.pt, *.pt, *.safetensors, *.npz) and no "
            "snapshots/update_*.npz; nothing to analyse"
        )
    return ckpt, snaps


def read_snapshots(snap_paths: list[tuple[int, Path]], *,
                   progress: bool = True) -> list[tuple[int, OrderedDict]]:
    """``[(update, {layer: A})]`` of the snapshot files; every one must have the first's layers."""
    from tqdm.auto import tqdm

    from ..io import load_topology

    snaps: list[tuple[int, OrderedDict]] = []
    for step, p in tqdm(snap_paths, desc="snapshots", disable=not progress or None):
        data = load_topology(p)
        snaps.append((step, OrderedDict(data) if isinstance(data, dict)
                      else OrderedDict([("layer", data)])))
    if snaps:
        names = list(snaps[0][1])
        shapes = [A.shape for A in snaps[0][1].values()]
        for step, s in snaps:
            if list(s) != names or [A.shape for A in s.values()] != shapes:
                raise ValueError(f"snapshot update_{step:06d}.npz has layers {list(s)} with "
                                 f"other names or shapes than the first snapshot ({names})")
    return snaps


_HISTORY = ("density", "itop", "anp", "test_acc")


def read_history(path: Path) -> dict[str, list[float]]:
    """Per-epoch ``step`` + density/ITOP/ANP/accuracy columns of a run's ``metrics.csv``."""
    try:
        rows = read_csv(path, lambda _, v: v)
    except OSError as exc:
        raise ValueError(f"{str(path)!r} is not a readable CSV file: {exc}") from exc
    out: dict[str, list[float]] = {}
    for key in ("step", *_HISTORY):
        try:
            vals = [float(r[key]) for r in rows]
        except (KeyError, TypeError, ValueError):
            continue  # a column that is missing or not numeric is simply not plotted
        if vals and all(math.isfinite(v) for v in vals):
            out[key] = vals
    return out if "step" in out and len(out) > 1 else {}
