"""The figures of a ``netshape analyze`` report: one entry per figure.

A new plot is one entry: in :data:`LAYER_FIGURES` (drawn for every layer) or
in :data:`RUN_FIGURES` (drawn once, when the analysis has what it needs).
Every figure is written atomically; ``show()`` is never called.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._backend import require
from ..plot._layout import layer_title, save_figure

__all__ = ["LAYER_FIGURES", "RUN_FIGURES", "Figure", "write_figures"]


@dataclass(frozen=True)
class Figure:
    """One figure of the report: file name, title, when it applies, how it is drawn."""

    file: str
    title: str
    draw: Callable[[Any, Any, Any], None]  # draw(analysis, ax, netshape.plot)
    applies: Callable[[Any], bool] = lambda an: True
    size: tuple[float, float] = (5.5, 3.5)


#: (kind, draw(A, ax, plot)): drawn for each layer as ``<kind>_<layer>.png``
LAYER_FIGURES: tuple[tuple[str, Callable[[Any, Any, Any], Any]], ...] = (
    ("adjacency", lambda A, ax, plot: plot.adjacency(A, ax=ax)),
    ("degrees", lambda A, ax, plot: plot.degree_distribution(A, ax=ax, side="both")),
)


def _itop(an: Any, ax: Any, plot: Any) -> None:
    c = an.curves
    per_layer = c["itop_per_layer"]
    series = {f"layer {k}": v for k, v in per_layer.items()} if len(per_layer) > 1 else {}
    series["total"] = c["itop"]
    plot.itop_curve(series, steps=c["step"], ax=ax, xlabel="update")


def _overlap(an: Any, ax: Any, plot: Any) -> None:
    c = an.curves
    plot.overlap_curve(c["overlap"], steps=c["overlap_step"], ax=ax, xlabel="update",
                       label="re-growth overlap")


def _training(an: Any, ax: Any, plot: Any) -> None:
    plot.training_curves(an.history, ax=ax, xlabel="training step")


#: figures of the whole run, in report order
RUN_FIGURES: tuple[Figure, ...] = (
    Figure("itop.png", "ITOP over training", _itop, lambda an: bool(an.curves)),
    Figure("overlap.png", "Re-growth overlap between snapshots", _overlap,
           lambda an: bool(an.curves) and bool(an.curves["overlap"])),
    Figure("training.png", "Training run (metrics.csv): density, ITOP, ANP, test accuracy",
           _training, lambda an: bool(an.history)),
)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name)).strip("._") or "layer"


def _save(fig: Any, path: Path) -> None:
    save_figure(fig, path, dpi=110)
    require("matplotlib.pyplot").close(fig)


def write_figures(an: Any, out: Path) -> list[tuple[str, str]]:
    """Write the PNGs of every figure that applies; return (title, file name) pairs."""
    plt = require("matplotlib.pyplot")
    from .. import plot

    made = []
    for name, A in an.layers.items():
        for kind, draw in LAYER_FIGURES:
            fig, ax = plt.subplots(figsize=(4.5, 3.5), layout="constrained")
            draw(A, ax, plot)
            ax.set_title(layer_title(name, A), fontsize="small")
            fname = f"{kind}_{_safe(name)}.png"
            _save(fig, out / fname)
            made.append((f"{kind} — {name}", fname))
    for f in RUN_FIGURES:
        if f.applies(an):
            fig, ax = plt.subplots(figsize=f.size, layout="constrained")
            f.draw(an, ax, plot)
            _save(fig, out / f.file)
            made.append((f.title, f.file))
    return made
