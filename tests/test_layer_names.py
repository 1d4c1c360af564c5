"""One layer-naming scheme: the module's qualified name, as ``model.named_modules()`` gives it.

A dense (fc) run and a sparse run of one architecture must name the same layers
the same way in ``dst.masks``, the checkpoint, summary.json, the snapshots,
``netshape info``, the analysis (table, percolation report, figure files, ITOP
legend).
"""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("matplotlib")

import matplotlib  # noqa: E402

matplotlib.use("Agg")

import netshape as ns  # noqa: E402
from netshape.analyze import analyze_source, write_report  # noqa: E402
from netshape.cli import main  # noqa: E402
from netshape.train import TrainConfig, train  # noqa: E402
from netshape.train._model import build_mlp  # noqa: E402

HIDDEN = (24, 16, 16)
#: the qualified names of the runner's nn.Sequential Linear layers, classifier left out
EXPECTED = [n for n, m in build_mlp(64, HIDDEN, 10, seed=0).named_modules()
            if isinstance(m, torch.nn.Linear)][:-1]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("names")
    out = {}
    for method in ("fc", "chts"):
        cfg = TrainConfig(dataset="digits", method=method, epochs=2, hidden=HIDDEN, density=0.3,
                          steps_per_epoch=4, update_every=2, snapshot_every=1, rng=0)
        train(cfg, root / method, progress=False, threads=1)
        out[method] = root / method
    return out


def test_expected_names_are_the_sequential_indices():
    assert EXPECTED == ["0", "2", "4"]


@pytest.mark.parametrize("method", ["fc", "chts"])
def test_checkpoint_summary_and_analysis_use_module_names(runs, method):
    run = runs[method]
    ck = torch.load(run / "checkpoint.pt", weights_only=True)
    assert list(ck["masks"]) == EXPECTED
    assert list(json.loads((run / "summary.json").read_text())["layers"]) == EXPECTED
    assert list(ns.io.read_checkpoint(run / "checkpoint.pt")) == EXPECTED
    an = analyze_source(run, progress=False)
    assert list(an.layers) == EXPECTED
    assert [r["layer"] for r in an.rows] == EXPECTED
    assert all(r["perc_links_removed"] is not None for r in an.rows)  # report keyed by name


def test_fc_and_sparse_analyses_report_the_same_layers(runs):
    fc, sparse = (analyze_source(runs[m], progress=False) for m in ("fc", "chts"))
    assert list(fc.layers) == list(sparse.layers)
    assert [A.shape for A in fc.layers.values()] == [A.shape for A in sparse.layers.values()]
    assert fc.chain and sparse.chain
    assert fc.summary["density"] == 1.0 and fc.summary["anp"] == 1.0
    assert not any("stores no masks" in w for w in fc.warnings)


def test_snapshots_info_and_figures_use_the_same_names(runs, tmp_path, capsys):
    snaps = sorted((runs["chts"] / "snapshots").glob("update_*.npz"))
    assert snaps and list(ns.io.load_topology(snaps[-1])) == EXPECTED
    assert main(["info", str(snaps[-1])]) == 0
    printed = [ln.split(":")[0] for ln in capsys.readouterr().out.splitlines()
               if not ln.startswith(" ")]
    assert printed == EXPECTED
    an = analyze_source(runs["chts"], progress=False)
    assert list(an.curves["itop_per_layer"]) == EXPECTED
    write_report(an, tmp_path)
    assert sorted(p.name for p in tmp_path.glob("adjacency_*.png")) == sorted(
        f"adjacency_{n}.png" for n in EXPECTED)
    from netshape.analyze._figures import RUN_FIGURES

    itop = next(f for f in RUN_FIGURES if f.file == "itop.png")
    fig, ax = matplotlib.pyplot.subplots()
    itop.draw(an, ax, ns.plot)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    matplotlib.pyplot.close(fig)
    assert legend[:-1] == [f"layer {n}" for n in EXPECTED] and legend[-1] == "total"


def test_wrapped_state_dict_beside_loose_tensors_keeps_module_names(tmp_path):
    # a training script's {"model": sd, "optimizer": ..., "rng": tensor}: no "model." prefix
    model = build_mlp(8, [6], 3, seed=0)
    path = tmp_path / "ck.pt"
    torch.save({"model": model.state_dict(), "optimizer": {"state": {}},
                "torch_rng": torch.get_rng_state(), "epoch": 3}, path)
    with pytest.warns(UserWarning, match="stores no masks"):
        assert list(ns.io.read_checkpoint(path)) == ["0", "2"]
