"""Markdown report of a runtime sweep (:func:`netshape.bench.run` rows): one table per path.

The project's own performance targets are checked in ``benchmarks/linkpred_targets.py``,
which passes its table in as ``extra``.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def _ok(r: dict) -> bool:
    return r.get("status") == "ok" and not math.isnan(float(r.get("seconds", math.nan)))


def _cell(r: dict | None) -> str:
    if r is None:
        return ""
    if r["status"] != "ok":
        return r["status"].split(":")[0]
    return f"{r['seconds']:.3g} s ({r['ratio_to_gemm']:.2g}×)"


def to_markdown(rows: Sequence[dict], extra: Sequence[str] = ()) -> str:
    """The report: ``extra`` lines (e.g. a section of targets), GEMM reference, one table
    per method and path."""
    rows = list(rows)
    if not rows:
        return "# Link-prediction runtime\n\nNo configurations were run.\n"
    first = rows[0]
    lines = [
        "# Link-prediction runtime",
        "",
        f"Backend `{first['backend']}`, {first['threads']} BLAS threads, {first['versions']}. "
        "Random ER layers n × n with the exact density; median of the timed calls after a "
        "warm-up. `(k×)` is the time over one n × n float32 GEMM measured in the same run. "
        "`timeout`: one call exceeded the per-configuration timeout; `skipped`: a smaller "
        "or sparser configuration of the same method already timed out.",
        "",
        *extra,
        *([""] if extra else []),
        "## GEMM reference (one n × n float32 product, timed beside every configuration)",
        "",
        "| n | seconds |",
        "|---|---|",
    ]
    for n in sorted({r["n_in"] for r in rows}):
        g = [r["gemm_seconds"] for r in rows if r["n_in"] == n and not math.isnan(
            float(r["gemm_seconds"]))]
        lines.append(f"| {n} | {statistics.median(g):.4g} (median of {len(g)}; "
                     f"{min(g):.4g}–{max(g):.4g}) |" if g else f"| {n} | — |")
    sizes = sorted({r["n_in"] for r in rows})
    dens = sorted({r["density"] for r in rows})
    for key in dict.fromkeys((r["method"], r["path"]) for r in rows):
        lines += ["", f"## `{key[0]}` ({key[1]})", "",
                  "| n \\ density | " + " | ".join(f"{p:g}" for p in dens) + " |",
                  "|---|" + "---|" * len(dens)]
        for n in sizes:
            cells = []
            for p in dens:
                match = [r for r in rows if (r["method"], r["path"]) == key
                         and r["n_in"] == n and math.isclose(r["density"], p)]
                cells.append(_cell(match[0] if match else None))
            lines.append(f"| {n} | " + " | ".join(cells) + " |")
    mem_rows = [r for r in rows if r["method"] == "ch2_l3n" and _ok(r)
                and not math.isnan(r["peak_mb"])]
    if mem_rows:
        lines += ["", "## Peak memory of `ch2_l3n` (MB, tracemalloc, max over densities)", "",
                  "| n | " + " | ".join(sorted({r["path"] for r in mem_rows})) + " |",
                  "|---|" + "---|" * len({r["path"] for r in mem_rows})]
        for n in sizes:
            cells = []
            for path in sorted({r["path"] for r in mem_rows}):
                vals = [r["peak_mb"] for r in mem_rows if r["n_in"] == n and r["path"] == path]
                cells.append(f"{max(vals):.0f}" if vals else "")
            lines.append(f"| {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
