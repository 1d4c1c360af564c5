"""Topology plots: adjacency image, degree distribution, a Figure-5-style gallery.

Every function takes ``ax=None`` (a new figure when None), returns the Axes
(``gallery`` returns the Figure) and never calls ``show()``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._backend import require
from .._validation import as_biadjacency, check_choice, check_positive_int
from ._layout import new_axes, thin_ticks

__all__ = ["adjacency", "degree_distribution", "gallery"]


def _axes(ax):
    return ax if ax is not None else new_axes((5, 4))


def bucket_counts(A, bins: int) -> tuple[np.ndarray, int, int]:
    """Link counts on a grid of at most ``bins x bins`` buckets; returns ``(grid, rows, cols)``.

    Bucket ``(a, b)`` covers inputs ``[a*rows/bins_r, (a+1)*rows/bins_r)`` and the
    same for outputs; the cost is ``O(links)``, whatever the layer's size.

    >>> import scipy.sparse as sp
    >>> grid, _, _ = bucket_counts(sp.csr_array(np.eye(4, dtype=bool)), 2)
    >>> grid.tolist()
    [[2, 0], [0, 2]]
    """
    n_in, n_out = A.shape
    br, bc = min(bins, n_in), min(bins, n_out)
    rows = np.repeat(np.arange(n_in, dtype=np.int64), np.diff(A.indptr))
    a = rows * br // n_in
    b = A.indices.astype(np.int64) * bc // n_out
    grid = np.bincount(a * bc + b, minlength=br * bc).reshape(br, bc)
    return grid, br, bc


def adjacency(A: Any, ax=None, *, bins: int = 512, cmap: str = "Greys", title: str | None = None,
              colorbar: bool | None = None):
    """Image of a biadjacency: inputs on the vertical axis, outputs on the horizontal one.

    Layers with at most ``bins`` neurons on both sides are drawn exactly (one
    pixel per cell, black = link). Larger layers are bucketed: each pixel is
    a block of cells and its shade is the block's link density (one marker per
    link is too slow past ~1e6 links; this costs ``O(links)``).

    Parameters
    ----------
    A : topology
        Biadjacency ``(n_in, n_out)``: rows inputs, columns outputs (a torch
        mask is ``A.T``); any supported array family.
    ax : matplotlib Axes, optional
    bins : int
        Largest image side in pixels before bucketing.
    cmap : str
        Matplotlib colormap.
    title : str, optional
        Defaults to the shape and the link count.
    colorbar : bool, optional
        Show the density colorbar; default: only for bucketed images.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import netshape as ns
    >>> ax = adjacency(ns.generators.brf(64, 128, 0.1, r=0.25, rng=0))
    >>> ax.get_xlabel(), ax.get_ylabel()
    ('output neuron', 'input neuron')
    """
    A = as_biadjacency(A, "A")
    bins = check_positive_int(bins, "bins")
    ax = _axes(ax)
    n_in, n_out = A.shape
    exact = n_in <= bins and n_out <= bins
    if exact:
        img = A.toarray().astype(float)
        vmax = 1.0
    else:
        grid, br, bc = bucket_counts(A, bins)
        # blocks differ by at most one row/column: divide by each block's true size
        rsz = np.bincount(np.arange(n_in) * br // n_in, minlength=br)
        csz = np.bincount(np.arange(n_out) * bc // n_out, minlength=bc)
        img = 100 * grid / np.outer(rsz, csz)  # link density of each block, in %
        vmax = max(float(img.max()), 1e-12)
    im = ax.imshow(img, cmap=cmap, vmin=0.0, vmax=vmax, aspect="auto", interpolation="nearest",
                   extent=(-0.5, n_out - 0.5, n_in - 0.5, -0.5))
    ax.set_xlabel("output neuron")
    ax.set_ylabel("input neuron")
    thin_ticks(ax)
    if title is None:
        title = f"{n_in}×{n_out}, {A.nnz} links ({A.nnz / (n_in * n_out):.2%})"
    ax.set_title(title, fontsize=9)
    if colorbar if colorbar is not None else not exact:
        ax.figure.colorbar(im, ax=ax, label="link density per pixel (%)")
    return ax


def _degree_hist(deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    counts = np.bincount(deg)
    k = np.flatnonzero(counts)
    return k, counts[k] / deg.size


def degree_distribution(A: Any, ax=None, *, side: str = "out", log: bool = True):
    """Degree distribution ``P(k)`` of the inputs, the outputs or both.

    ``side="out"`` plots the output neurons' degrees (the column sums of
    ``A``, their number of incoming links), ``"in"`` the input neurons'
    degrees (row sums), ``"both"`` both series. With ``log=True`` both axes are
    logarithmic and degree 0 is left out (it has no place on a log axis).

    Parameters
    ----------
    A : topology
        Biadjacency ``(n_in, n_out)``: rows inputs, columns outputs (a torch
        mask is ``A.T``).
    ax : matplotlib Axes, optional
    side : {"out", "in", "both"}
    log : bool

    Returns
    -------
    ax : matplotlib.axes.Axes
        The axes drawn on, with a legend naming each series.

    Examples
    --------
    >>> from netshape import generators as gen
    >>> ax = degree_distribution(gen.bsf(500, 500, 0.02, rng=0), side="both")
    >>> [t.get_text() for t in ax.get_legend().get_texts()]
    ['input neurons', 'output neurons']
    """
    A = as_biadjacency(A, "A")
    check_choice(side, "side", ("out", "in", "both"))
    ax = _axes(ax)
    series = []
    if side in ("in", "both"):
        series.append(("input neurons", np.diff(A.indptr), "o"))
    if side in ("out", "both"):
        series.append(("output neurons", np.bincount(A.indices, minlength=A.shape[1]), "s"))
    for label, deg, marker in series:
        k, p = _degree_hist(deg)
        if log:
            keep = k > 0
            k, p = k[keep], p[keep]
        ax.plot(k, p, marker=marker, linestyle="none", markersize=4, label=label)
    if log:
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.set_xlabel("degree k")
    ax.set_ylabel("P(k)")
    ax.legend(fontsize=8)
    return ax


def gallery(n_in: int = 128, n_out: int = 128, density: float = 0.05, *,
            values: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0), gamma: float = 2.76,
            bins: int = 512, rng=0):
    """Adjacency gallery like the paper's Figure 5; returns the Figure.

    Row 1: BSF (``gamma``) and its degree distribution. Row 2: BSW for
    ``beta`` in ``values``. Rows 3–4: BRF with fixed and uniform output
    degrees for ``r`` in ``values``. Every panel uses the same sizes, density
    and ``rng``.

    Examples
    --------
    >>> fig = gallery(32, 32, 0.1, values=(0.0, 1.0))
    >>> len(fig.axes)
    8
    """
    from ..generators import brf, bsf, bsw

    plt = require("matplotlib.pyplot")
    values = [float(v) for v in values]
    cols = max(2, len(values))
    fig, axes = plt.subplots(4, cols, figsize=(2.4 * cols, 9.6), squeeze=False)
    A = bsf(n_in, n_out, density, gamma=gamma, rng=rng)
    adjacency(A, axes[0, 0], bins=bins, title=f"BSF γ={gamma}", colorbar=False)
    degree_distribution(A, axes[0, 1], side="both")
    for ax in axes[0, 2:]:
        ax.axis("off")
    rows = [("BSW β", lambda v: bsw(n_in, n_out, density, beta=v, rng=rng)),
            ("BRF fixed r", lambda v: brf(n_in, n_out, density, r=v, rng=rng)),
            ("BRF uniform r", lambda v: brf(n_in, n_out, density, r=v, degrees="uniform",
                                            rng=rng))]
    for row, (label, make) in enumerate(rows, start=1):
        for col, v in enumerate(values):
            adjacency(make(v), axes[row, col], bins=bins, title=f"{label}={v:g}", colorbar=False)
        for ax in axes[row, len(values):]:
            ax.axis("off")
    for ax in axes[1:].ravel():
        ax.set_xlabel("")
        ax.set_ylabel("")
    fig.suptitle(f"{n_in}×{n_out} layers at density {density:g}")
    fig.tight_layout()
    return fig
