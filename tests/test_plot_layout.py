"""Figures: no clipped labels, no overlapping ticks, integer update axes, rates in %, titles
that name the layer. Rendered with the Agg backend; assertions are on the Axes and the PNG."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import scipy.sparse as sp

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.image import imread  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

import netshape as ns  # noqa: E402
from netshape.analyze import _figures  # noqa: E402
from netshape.analyze._measures import Analysis  # noqa: E402
from netshape.cli import main  # noqa: E402
from netshape.plot._layout import save_figure  # noqa: E402


def _wide_layer(n_in=4096, n_out=16384, links=60_000, seed=0):
    rng = np.random.default_rng(seed)
    pos = rng.choice(n_in * n_out, links, replace=False)
    return sp.csr_array((np.ones(links, bool), (pos // n_out, pos % n_out)), shape=(n_in, n_out))


def _inside(ax, artist) -> bool:
    fig = ax.figure
    fig.canvas.draw()
    bb = artist.get_window_extent(fig.canvas.get_renderer())
    f = fig.bbox
    return bb.x0 >= f.x0 and bb.y0 >= f.y0 and bb.x1 <= f.x1 and bb.y1 <= f.y1


def _visible_ticklabels(ax, axis):
    lo, hi = sorted(axis.get_view_interval())
    return [t for t, v in zip(axis.get_ticklabels(), axis.get_ticklocs(), strict=True)
            if t.get_text() and lo <= v <= hi]


def test_adjacency_of_a_wide_layer_keeps_its_labels_inside_the_figure(tmp_path):
    ax = ns.plot.adjacency(_wide_layer())
    path = tmp_path / "adj.png"
    save_figure(ax.figure, path)
    for artist in (ax.yaxis.label, ax.xaxis.label, ax.title):
        assert _inside(ax, artist), artist.get_text()
    plt.close(ax.figure)


def test_saving_crops_to_the_content_so_a_label_outside_the_axes_is_kept(tmp_path):
    # a user's own Axes on a figure without a layout engine: the y-label hangs off the left
    # edge of the figure; the project's save path must still write all of it
    fig, ax = plt.subplots(figsize=(3, 2))
    fig.subplots_adjust(left=0.02)
    ns.plot.adjacency(_wide_layer(256, 1024, 2000), ax=ax, colorbar=False)
    fig.canvas.draw()
    assert ax.yaxis.label.get_window_extent(fig.canvas.get_renderer()).x0 < 0  # the bug
    path = tmp_path / "own.png"
    save_figure(fig, path)
    img = imread(path)
    left = img[:, :3, :3]  # the first three pixel columns, RGB
    assert np.all(left > 0.99), "ink on the left edge: a label was clipped"
    plt.close(fig)


@pytest.mark.parametrize("size", [(4.5, 3.5), (5, 4), (2.4, 2.4)])
def test_tick_labels_of_a_wide_adjacency_do_not_overlap(size):
    fig, ax = plt.subplots(figsize=size, layout="constrained")
    ns.plot.adjacency(_wide_layer(), ax=ax)
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    for axis in (ax.xaxis, ax.yaxis):
        boxes = [t.get_window_extent(r) for t in _visible_ticklabels(ax, axis)]
        assert len(boxes) >= 2
        for a, b in zip(boxes, boxes[1:]):  # noqa: B905 - neighbours
            assert not a.overlaps(b), [t.get_text() for t in _visible_ticklabels(ax, axis)]
        locs = [v for v in axis.get_ticklocs()]
        assert all(float(v).is_integer() for v in locs)  # neuron indices are whole numbers
    plt.close(fig)


@pytest.mark.parametrize("draw", [
    lambda: ns.plot.itop_curve([0.1, 0.2, 0.3], steps=[1, 2, 3]),
    lambda: ns.plot.overlap_curve([0.1, 0.5, 0.9], steps=[1, 2, 3]),
    lambda: ns.plot.training_curves({"step": [40, 80, 120], "density": [0.1, 0.1, 0.1],
                                     "itop": [0.1, 0.2, 0.25], "anp": [1.0, 0.99, 0.98]}),
])
def test_update_axes_have_integer_ticks_and_rates_are_in_percent(draw):
    ax = draw()
    loc = ax.xaxis.get_major_locator()
    assert isinstance(loc, MaxNLocator) and loc._integer
    assert all(float(v).is_integer() for v in ax.get_xticks())
    assert "%" in ax.get_ylabel()
    ys = np.concatenate([line.get_ydata() for line in ax.get_lines() if len(line.get_ydata())
                         and line.get_label() != "_nolegend_"])
    assert ys.max() > 1.5  # drawn in percent, not as a fraction
    plt.close(ax.figure)


def test_training_curves_keep_plain_values_for_non_rates():
    ax = ns.plot.training_curves({"step": [1, 2], "train_loss": [2.3, 1.1]})
    assert ax.get_ylabel() == "value"
    assert ax.get_lines()[0].get_ydata().tolist() == [2.3, 1.1]
    plt.close(ax.figure)


def test_bucketed_adjacency_colorbar_is_in_percent():
    A = _wide_layer(1024, 2048, 20_000)
    ax = ns.plot.adjacency(A, bins=64)
    cbar_ax = [a for a in ax.figure.axes if a is not ax][0]
    assert "%" in cbar_ax.get_ylabel()
    img = ax.get_images()[0].get_array()
    density = A.nnz / (A.shape[0] * A.shape[1])
    assert float(np.mean(img)) == pytest.approx(100 * density, rel=1e-9)
    plt.close(ax.figure)


def test_report_figures_name_their_layer(monkeypatch, tmp_path):
    saved = {}

    def keep(fig, path):
        saved[path.name] = [a.get_title() for a in fig.axes if a.get_title()]
        plt.close(fig)

    monkeypatch.setattr(_figures, "_save", keep)
    layers = OrderedDict([("encoder.0", ns.generators.er(20, 30, 0.2, rng=0)),
                          ("encoder.2", ns.generators.er(30, 10, 0.2, rng=1))])
    an = Analysis(source="x", layers=layers, chain=True, rows=[], summary={})
    made = _figures.write_figures(an, tmp_path)
    assert {f for _, f in made} == set(saved)
    for name in layers:
        for kind in ("adjacency", "degrees"):
            titles = saved[f"{kind}_{name}.png"]
            assert titles and f"layer {name}:" in titles[0]


def test_cli_plot_titles_name_each_layer(tmp_path, monkeypatch):
    net = tmp_path / "net.npz"
    ns.io.save_topology(net, {"fc1": ns.generators.er(20, 30, 0.2, rng=0),
                              "fc2": ns.generators.er(30, 10, 0.2, rng=1)})
    titles = []
    real = save_figure

    def spy(fig, path, **kw):
        titles.extend(a.get_title() for a in fig.axes if a.get_title())
        real(fig, path, **kw)

    monkeypatch.setattr("netshape.plot._layout.save_figure", spy)
    for kind in ("adjacency", "degrees"):
        titles.clear()
        assert main(["plot", str(net), "-o", str(tmp_path / f"{kind}.png"), "--kind", kind]) == 0
        assert [t.split(":")[0] for t in titles] == ["layer fc1", "layer fc2"]
