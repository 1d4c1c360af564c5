"""What every netshape figure shares: new Axes, tick locators, the % unit, the save path.

One place so that every plot looks the same: rates (density, ITOP, ANP,
overlap, accuracy) are shown in %, counts (updates, steps, neurons) on integer
ticks, and saved figures are cropped to their content so no label is clipped.
"""

from __future__ import annotations

import os
from typing import Any

from .._backend import require

__all__ = ["integer_ticks", "layer_title", "new_axes", "save_figure", "thin_ticks"]


def new_axes(figsize: tuple[float, float]) -> Any:
    """A fresh Axes on a constrained-layout figure (labels are kept inside the figure)."""
    plt = require("matplotlib.pyplot")
    _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def integer_ticks(axis: Any, nbins: int | str = "auto") -> None:
    """Ticks only at whole numbers (update counts, steps, neuron indices)."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(nbins=nbins, integer=True))


def _compact(value: float, _pos: Any = None) -> str:
    """``15000 -> '15k'``, ``2000000 -> '2M'``: short labels for neuron indices."""
    v = int(round(value))
    for unit, scale in (("M", 1_000_000), ("k", 1000)):
        if abs(v) >= scale and v % (scale // 10) == 0:
            return f"{v / scale:g}{unit}"
    return str(v)


def thin_ticks(ax: Any) -> None:
    """Few integer ticks with compact labels (``15k``) on both axes: they never touch,
    even on a narrow panel of a 16384-neuron layer."""
    from matplotlib.ticker import FuncFormatter

    integer_ticks(ax.xaxis, nbins=4)
    integer_ticks(ax.yaxis, nbins=6)
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(FuncFormatter(_compact))


def save_figure(fig: Any, path: str | os.PathLike, *, dpi: int = 120) -> None:
    """Write ``fig`` atomically, cropped to its content (``bbox_inches="tight"``).

    The format follows the suffix of ``path`` (png, svg, pdf, ...); the figure is
    not closed.
    """
    from .._fs import atomic_path

    with atomic_path(path) as tmp:  # the temporary file keeps the suffix matplotlib reads
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight")


def layer_title(name: str, A: Any) -> str:
    """``layer NAME: n_in×n_out, links (density %)``: a per-layer figure names its layer.

    >>> import scipy.sparse as sp
    >>> layer_title("0", sp.csr_array((4, 5), dtype=bool))
    'layer 0: 4×5, 0 links (0.00%)'
    """
    n_in, n_out = A.shape
    return f"layer {name}: {n_in}×{n_out}, {A.nnz} links ({A.nnz / (n_in * n_out):.2%})"
