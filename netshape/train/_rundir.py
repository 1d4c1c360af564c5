"""The run directory that ``netshape train`` writes, and how it is read back.

Layout of ``RUN_DIR`` (every file written atomically: temp file + rename)::

    config.json      the full TrainConfig, enough to rebuild the run
    metrics.csv      one row per finished epoch (see METRIC_COLUMNS)
    checkpoint.pt    model / optimizer / DST state after the last finished epoch,
                     plain tensors and dicts, readable by torch.load(weights_only=True)
    snapshots/       topology snapshots update_NNNNNN.npz written by the adapter
    summary.json     final (or latest) figures; "finished": true once training ends

``netshape analyze RUN_DIR`` reads ``checkpoint.pt`` and ``snapshots/``.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from .._fs import atomic_path, atomic_write_text, csv_text, read_csv
from ..io._checkpoint import MAX_CHECKPOINT_BYTES, check_file_size

__all__ = [
    "CHECKPOINT",
    "CONFIG",
    "METRICS",
    "METRIC_COLUMNS",
    "SNAPSHOTS",
    "SUMMARY",
    "load_checkpoint",
    "read_json",
    "read_metrics",
    "save_checkpoint",
    "write_json",
    "write_metrics",
]

CONFIG = "config.json"
METRICS = "metrics.csv"
CHECKPOINT = "checkpoint.pt"
SNAPSHOTS = "snapshots"
SUMMARY = "summary.json"

#: columns of metrics.csv, one row per finished epoch
METRIC_COLUMNS = (
    "epoch", "step", "lr", "train_loss", "train_acc", "test_loss", "test_acc",
    "density", "itop", "anp", "topology_updates", "topology_seconds", "epoch_seconds",
)


def _clean(value: Any) -> Any:
    """JSON has no NaN/inf: write them as null rather than invalid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def write_json(path: str | os.PathLike, data: dict) -> None:
    atomic_write_text(path, json.dumps(_clean(data), indent=2, sort_keys=False) + "\n")


def read_json(path: str | os.PathLike) -> dict:
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{str(p)!r} not found: is this a netshape run directory?") \
            from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{str(p)!r} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{str(p)!r} does not hold a JSON object")
    return data


def write_metrics(path: str | os.PathLike, rows: list[dict],
                  columns: tuple[str, ...] = METRIC_COLUMNS) -> None:
    """Rewrite the whole CSV (small: one row per epoch) so it is never half written."""
    atomic_write_text(path, csv_text(rows, columns))


def _parse(key: str, v: str) -> Any:
    if v == "":
        return None
    return int(v) if key in _INT_COLUMNS else float(v)


#: integer columns of metrics.csv files
_INT_COLUMNS = ("epoch", "step", "tokens", "topology_updates")


def read_metrics(path: str | os.PathLike,
                 columns: tuple[str, ...] = METRIC_COLUMNS) -> list[dict]:
    p = Path(path)
    if not p.is_file():
        return []
    return [{k: _parse(k, row.get(k, "")) for k in columns}
            for row in read_csv(p, lambda _, v: v)]


def save_checkpoint(path: str | os.PathLike, payload: dict) -> None:
    """``torch.save`` through a temp file + rename: Ctrl-C never leaves half a checkpoint."""
    import torch

    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | os.PathLike, *,
                    max_bytes: int | None = MAX_CHECKPOINT_BYTES) -> dict:
    """Read a checkpoint with ``torch.load(weights_only=True)`` (no arbitrary pickles).

    A file over ``max_bytes`` (default 16 GiB, the limit of
    :func:`netshape.io.read_checkpoint`; None: no limit) is refused, naming
    the file and its size, before it is opened.
    """
    import torch

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{str(p)!r} not found: the run has no finished epoch to resume")
    check_file_size(p, max_bytes)
    try:
        data = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - corrupt/truncated/unsafe files all end here
        raise ValueError(f"cannot read checkpoint {str(p)!r}: {exc}") from exc
    if not isinstance(data, dict) or "model" not in data:
        raise ValueError(f"{str(p)!r} is not a netshape training checkpoint")
    return data
