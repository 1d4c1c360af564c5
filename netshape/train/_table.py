"""The comparison table ``netshape train --compare`` prints and writes."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

from .._fs import atomic_write_text, csv_text

__all__ = ["COLUMNS", "comparison_rows", "format_markdown", "format_text", "write_comparison"]

#: (key in a row, header, format)
COLUMNS = (
    ("method", "method", "{}"),
    ("epochs", "epochs", "{}"),
    ("density", "density", "{:.4f}"),
    ("test_acc", "test acc %", "{:.2f}"),
    ("best_test_acc", "best acc %", "{:.2f}"),
    ("anp", "ANP %", "{:.1f}"),
    ("itop", "ITOP %", "{:.1f}"),
    ("train_seconds", "train s", "{:.1f}"),
    ("topology_seconds", "topology s", "{:.1f}"),
)


def comparison_rows(summaries: Sequence[dict]) -> list[dict]:
    """One row per run summary, accuracies and rates in percent.

    >>> comparison_rows([{"method": "fc", "epochs": 2, "density": 1.0, "test_acc": 0.5,
    ...                   "best_test_acc": 0.6, "anp": 1.0, "itop": 1.0,
    ...                   "train_seconds": 3.0, "topology_seconds": 0.0}])[0]["test_acc"]
    50.0
    """
    rows = []
    for s in summaries:
        row = {}
        for key, _, _ in COLUMNS:
            v = s.get(key)
            if key in ("test_acc", "best_test_acc", "anp", "itop") and v is not None:
                v = 100.0 * float(v)
            row[key] = v
        rows.append(row)
    return rows


def _cell(v, fmt: str) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return fmt.format(v)


def format_text(rows: Sequence[dict], columns: Sequence[tuple] = COLUMNS) -> str:
    """Aligned plain-text table for the terminal (``columns``: (key, header, format))."""
    table = [[h for _, h, _ in columns]]
    table += [[_cell(r.get(k), f) for k, _, f in columns] for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                       for i, (c, w) in enumerate(zip(line, widths, strict=True)))
             for line in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_markdown(rows: Sequence[dict], columns: Sequence[tuple] = COLUMNS) -> str:
    head = "| " + " | ".join(h for _, h, _ in columns) + " |"
    sep = "|" + "|".join("---" if i == 0 else "---:" for i in range(len(columns))) + "|"
    body = ["| " + " | ".join(_cell(r.get(k), f) for k, _, f in columns) + " |" for r in rows]
    return "\n".join([head, sep, *body])


def write_comparison(directory: str | os.PathLike, rows: Sequence[dict], header: str = "",
                     columns: Sequence[tuple] = COLUMNS) -> None:
    """Write ``comparison.csv`` and ``comparison.md`` into ``directory`` (atomically)."""
    text = csv_text(rows, [k for k, _, _ in columns], cell=lambda v: "" if v is None else v)
    atomic_write_text(os.path.join(directory, "comparison.csv"), text)
    md = (header + "\n\n" if header else "") + format_markdown(rows, columns) + "\n"
    atomic_write_text(os.path.join(directory, "comparison.md"), md)
