"""The project's link-prediction performance targets, checked on a runtime sweep.

These are netshape's own acceptance criteria (not a property of the library):
``linkpred_runtime.py`` adds the table to the sweep's markdown report and
prints it. Rows are those of :func:`netshape.bench.run`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from netshape.bench._report import _ok
from netshape.linkpred import choose_path

__all__ = ["targets_markdown", "targets_text"]


def _find(rows, method, path, n, p):
    for r in rows:
        if (r["method"], r["path"], r["n_in"], r["n_out"]) == (method, path, n, n) \
                and math.isclose(r["density"], p) and _ok(r):
            return r
    return None


def _targets(rows: Sequence[dict]) -> list[str]:
    """The target table as markdown lines."""
    out = ["| target | measured | verdict |", "|---|---|---|"]

    def line(text, value, ok):
        verdict = "n/a (not in this sweep)" if ok is None else ("met" if ok else "**missed**")
        out.append(f"| {text} | {value} | {verdict} |")

    dense2048 = [r["ratio_to_gemm"] for r in rows if r["method"] == "ch2_l3n"
                 and r["path"] == "dense" and r["n_in"] == r["n_out"] == 2048 and _ok(r)]
    line("`ch2_l3n` dense on 2048², ≤ 3.6× one 2048² float32 GEMM",
         f"{min(dense2048):.2f}–{max(dense2048):.2f}× over densities" if dense2048 else "—",
         max(dense2048) <= 3.6 if dense2048 else None)

    worst, worst_at, n_pts = 0.0, "", 0
    for r in rows:
        if r["method"] != "ch2_l3n" or r["path"] != "auto" or not _ok(r):
            continue
        n, p = r["n_in"], r["density"]
        best = [x["seconds"] for x in (_find(rows, "ch2_l3n", q, n, p) for q in ("dense", "sparse"))
                if x is not None]
        if best:
            n_pts += 1
            ratio = r["seconds"] / min(best)
            if ratio > worst:
                worst, worst_at = ratio, f"n={n}, p={p:g}"
    line("`auto` within 1.2× of the fastest path at every point",
         f"worst {worst:.2f}× ({worst_at}) over {n_pts} points" if n_pts else "—",
         worst <= 1.2 if n_pts else None)

    # auto runs exactly the path choose_path names; judging that choice by the two
    # paths' own times in this run separates the rule from timing noise of a third sample
    worst_c, worst_c_at, n_c = 0.0, "", 0
    for r in rows:
        if r["method"] != "ch2_l3n" or r["path"] != "dense" or not _ok(r):
            continue
        n, p = r["n_in"], r["density"]
        sparse = _find(rows, "ch2_l3n", "sparse", n, p)
        if sparse is None:
            continue
        n_c += 1
        chosen = r if choose_path(n, n, int(r["nnz"])) == "dense" else sparse
        ratio = chosen["seconds"] / min(r["seconds"], sparse["seconds"])
        if ratio > worst_c:
            worst_c, worst_c_at = ratio, f"n={n}, p={p:g}"
    line("`auto`'s choice of path within 1.2× of the fastest path (by the dense and sparse "
         "times above)",
         f"worst {worst_c:.2f}× ({worst_c_at}) over {n_c} points" if n_c else "—",
         worst_c <= 1.2 if n_c else None)

    auto, dense = _find(rows, "ch2_l3n", "auto", 4096, 0.003), _find(rows, "ch2_l3n", "dense",
                                                                     4096, 0.003)
    sp_ = dense["seconds"] / auto["seconds"] if auto and dense else None
    line("`auto` on 4096² at 0.3 % ≥ 10× faster than dense",
         f"{sp_:.1f}×" if sp_ else "—", sp_ >= 10 if sp_ else None)

    l3p = _find(rows, "ch3_l3p", "auto", 1024, 0.05)
    line("`ch3_l3p` on 1024² at 5 %, ≤ 100× one 1024² GEMM",
         f"{l3p['ratio_to_gemm']:.1f}× ({l3p['seconds']:.3g} s)" if l3p else "—",
         l3p["ratio_to_gemm"] <= 100 if l3p else None)

    mem = [r["peak_mb"] for r in rows if r["method"] == "ch2_l3n" and r["n_in"] == 4096
           and _ok(r) and not math.isnan(r["peak_mb"])]
    line("peak memory of `ch2_l3n` on 4096² < 1 GB", f"{max(mem):.0f} MB (max over paths, "
         "densities)" if mem else "—", max(mem) < 1024 if mem else None)
    return out


def targets_text(rows: Sequence[dict]) -> list[str]:
    """The target table as plain lines for a terminal summary."""
    lines = []
    for md in _targets(rows)[2:]:
        target, value, verdict = (c.strip().replace("`", "").replace("*", "")
                                  for c in md.strip("|").split(" | "))
        lines.append(f"{target}: {value} [{verdict}]")
    return lines


def targets_markdown(rows: Sequence[dict]) -> list[str]:
    """A ``## Targets`` section for :func:`netshape.bench.to_markdown`'s ``extra``."""
    return ["## Targets", "", *_targets(rows)]
