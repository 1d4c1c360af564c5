"""Figure 2-style link-prediction runtime plot from :func:`netshape.bench.run` rows."""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Sequence
from typing import Any

from .._backend import require

__all__ = ["runtime"]


def _rows(results: Any) -> list[dict]:
    if isinstance(results, (str, os.PathLike)):
        from .._fs import read_csv  # plain parsing: the plot does not import the bench

        return read_csv(results)
    rows = list(results)
    if not rows or not isinstance(rows[0], dict):
        raise ValueError("results must be a non-empty list of benchmark rows (dicts) "
                         "or the path of a CSV written by netshape bench")
    return rows


def _pick(values: Sequence[float], wanted: float | None, preferred: float) -> float:
    values = sorted(set(values))
    target = preferred if wanted is None else wanted
    if wanted is not None and not any(math.isclose(v, wanted) for v in values):
        raise ValueError(f"{wanted!r} is not in the results; available: {values}")
    return min(values, key=lambda v: abs(math.log(v / target)))


def _panel(ax, rows, x_key, fixed_key, fixed, xlabel, title):
    groups = dict.fromkeys((r["method"], r["path"]) for r in rows)
    for key in groups:
        sel = sorted((r for r in rows if (r["method"], r["path"]) == key
                      and math.isclose(r[fixed_key], fixed)), key=lambda r: r[x_key])
        ok = [r for r in sel if r["status"] == "ok"]
        if not sel:
            continue
        label = key[0] if key[1] == "auto" and key[0].endswith("l3p") else f"{key[0]} ({key[1]})"
        (line,) = ax.plot([r[x_key] for r in ok], [r["seconds"] for r in ok], "o-", label=label)
        slow = [r for r in sel if r["status"] in ("timeout", "skipped")]
        if slow and ok:
            top = max(r["seconds"] for r in ok)
            ax.plot([r[x_key] for r in slow], [top * 1.5] * len(slow), "^", mfc="none",
                    color=line.get_color())
    ref_at: dict = {}
    for r in rows:
        if math.isclose(r[fixed_key], fixed) and not math.isnan(float(r["gemm_seconds"])):
            ref_at.setdefault(r[x_key], []).append(r["gemm_seconds"])
    ref = sorted((x, statistics.median(g)) for x, g in ref_at.items())
    ax.plot([x for x, _ in ref], [g for _, g in ref], "k--", lw=1, label="one n×n GEMM")
    ax.set_xscale("log")
    ax.set_yscale("log")
    xs = sorted({r[x_key] for r in rows if math.isclose(r[fixed_key], fixed)})
    ax.set_xticks(xs, [f"{x:g}" for x in xs])
    ax.minorticks_off()
    ax.set_xlabel(xlabel)
    ax.set_ylabel("seconds per prediction")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)


def runtime(results: Any, ax: Any = None, *, size: int | None = None,
            density: float | None = None) -> Any:
    """Runtime against density at a fixed size (a) and against size at a fixed density (b).

    Parameters
    ----------
    results : list of dict or path
        Rows of :func:`netshape.bench.run` or the CSV written by ``netshape bench``.
    ax : None, a matplotlib Axes, or a pair of Axes
        None makes a new figure with both panels; one Axes draws panel (a)
        only; a pair draws (a) and (b). ``show()`` is never called.
    size : int, optional
        Layer size of panel (a); default the size closest to 1024 (as in the paper).
    density : float, optional
        Density of panel (b); default the density closest to 5 %.

    Returns
    -------
    The Axes drawn on (an array of two when ``ax`` is None or a pair).
    Timed-out configurations show as hollow triangles above the curves;
    the dashed line is one n × n float32 matrix product.

    Examples
    --------
    >>> rows = [{"method": "ch2_l3n", "path": "dense", "n_in": n, "n_out": n, "density": p,
    ...          "status": "ok", "seconds": 1e-9 * n**3, "gemm_seconds": 3e-10 * n**3}
    ...         for n in (256, 1024) for p in (0.01, 0.05)]
    >>> axes = runtime(rows)
    >>> [a.get_xscale() for a in axes]
    ['log', 'log']
    """
    plt = require("matplotlib.pyplot")
    import numpy as np

    rows = _rows(results)
    n = _pick([r["n_in"] for r in rows], size, 1024)
    p = _pick([r["density"] for r in rows], density, 0.05)
    if ax is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    else:
        axes = np.ravel(np.asarray(ax, dtype=object))
    _panel(axes[0], [r for r in rows if r["n_in"] == n], "density", "n_in", n,
           "density", f"(a) {n} × {n}")
    if len(axes) > 1:
        _panel(axes[1], rows, "n_in", "density", p, "n (layer is n × n)", f"(b) density {p:g}")
    axes[0].legend(fontsize=8)
    return axes[0] if len(axes) == 1 else axes
