"""`netshape analyze` on plain-PyTorch checkpoints and run directories; training plots."""

from __future__ import annotations

import csv
from collections import OrderedDict

import numpy as np
import pytest
import scipy.sparse as sp

import netshape as ns
from netshape.cli import main
from netshape.metrics import snapshot_curves

torch = pytest.importorskip("torch")


def pruned_mlp_checkpoint(path, seed=0):
    from torch.nn.utils import prune

    torch.manual_seed(seed)
    m = torch.nn.Sequential(torch.nn.Linear(20, 30), torch.nn.ReLU(), torch.nn.Linear(30, 30),
                            torch.nn.ReLU(), torch.nn.Linear(30, 4))
    for i in (0, 2, 4):
        prune.l1_unstructured(m[i], "weight", amount=0.85)
    torch.save(m.state_dict(), path)
    return [m[i].weight_mask.T.bool().numpy() for i in (0, 2, 4)]


def has_plot(name):
    try:
        getattr(ns.plot, name)
    except (ImportError, AttributeError):
        return False
    return True


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_analyze_plain_pytorch_checkpoint(tmp_path, capsys):
    masks = pruned_mlp_checkpoint(tmp_path / "mlp.pt")
    out = tmp_path / "rep"
    assert main(["analyze", str(tmp_path / "mlp.pt"), "-o", str(out)]) == 0
    report = (out / "report.md").read_text()
    assert "| 0 | 20 | 30 |" in report and "| 4 | 30 | 4 |" in report
    rows = read_csv(out / "layers.csv")
    assert [r["layer"] for r in rows] == ["0", "2", "4"]
    assert [int(r["links"]) for r in rows] == [int(m.sum()) for m in masks]
    _, rep = ns.percolate(masks)
    assert [int(r["perc_links_removed"]) for r in rows] == [
        rep.layers[i].links_removed for i in range(3)]
    assert [int(r["dead_in"]) for r in rows] == [int((m.sum(1) == 0).sum()) for m in masks]
    cap = ns.metrics.cap(masks)
    assert f"log10 = {cap.log10:.4g}" in report
    assert f"{ns.metrics.anp(masks):.4g}" in report
    fit = ns.metrics.fit_power_law(masks[0], side="in")
    assert rows[0]["power_law_in"] == fit.verdict
    if fit.verdict == "no power law":  # a random pruned layer: no exponent is reported
        assert rows[0]["alpha_in"] in ("", "n/a", "None")
    else:
        assert float(rows[0]["alpha_in"]) == pytest.approx(fit.alpha)
    text = capsys.readouterr().out
    assert "3 layer(s)" in text and "report:" in text
    if has_plot("adjacency"):
        assert (out / "adjacency_0.png").stat().st_size > 0
    # default output directory beside the checkpoint
    assert main(["analyze", str(tmp_path / "mlp.pt"), "--no-plots"]) == 0
    assert (tmp_path / "mlp_report" / "report.md").exists()


def _save_snapshots(run, snaps, monkeypatch):
    """Write snapshots with netshape.io.save_topology, or a stand-in while it is missing."""
    (run / "snapshots").mkdir(parents=True)
    try:
        from netshape.io import save_topology
    except (ImportError, AttributeError):
        save_topology = None
    for step, layers in snaps:
        path = run / "snapshots" / f"update_{step:06d}.npz"
        if save_topology is not None:
            save_topology(path, OrderedDict(layers))
        else:
            np.savez(path, **{k: v.toarray() for k, v in layers.items()})
    if save_topology is None:
        import netshape.io

        def load(path):
            with np.load(path, allow_pickle=False) as z:
                return OrderedDict((k, sp.csr_array(z[k].astype(bool))) for k in z.files)

        monkeypatch.setitem(vars(netshape.io), "load_topology", load)


def test_analyze_run_dir_with_snapshots(tmp_path, monkeypatch):
    run = tmp_path / "run"
    run.mkdir()
    masks = pruned_mlp_checkpoint(run / "checkpoint.pt")
    rng = np.random.default_rng(0)
    snaps = [(10 * (i + 1), {"0": sp.csr_array(rng.random((20, 30)) < 0.15),
                             "2": sp.csr_array(rng.random((30, 30)) < 0.15),
                             "4": sp.csr_array(rng.random((30, 4)) < 0.15)}) for i in range(4)]
    _save_snapshots(run, snaps, monkeypatch)
    (run / "metrics.csv").write_text("epoch,step,density,itop,anp,test_acc,note\n"
                                     "1,10,0.5,0.5,1.0,0.6,x\n2,20,0.3,0.6,0.9,0.8,y\n")
    assert main(["analyze", str(run)]) == 0
    out = run / "report"
    curves = read_csv(out / "curves.csv")
    assert [int(r["step"]) for r in curves] == [10, 20, 30, 40]
    expect = snapshot_curves(snaps)
    assert [float(r["itop"]) for r in curves] == pytest.approx(expect["itop"])
    assert curves[0]["regrowth_overlap"] == "" and curves[2]["regrowth_overlap"] != ""
    assert (out / "itop.png").stat().st_size > 0 and (out / "overlap.png").stat().st_size > 0
    assert "ITOP at the last snapshot" in (out / "report.md").read_text()
    assert (out / "training.png").stat().st_size > 0  # from metrics.csv
    assert "training.png" in (out / "report.md").read_text()
    assert [int(r["links"]) for r in read_csv(out / "layers.csv")] == [int(m.sum()) for m in masks]


def test_read_history_keeps_numeric_columns(tmp_path):
    from netshape.analyze import read_history

    (tmp_path / "m.csv").write_text("step,density,itop,test_acc\n1,0.5,0.5,\n2,0.4,nan,0.9\n")
    assert read_history(tmp_path / "m.csv") == {"step": [1.0, 2.0], "density": [0.5, 0.4]}
    (tmp_path / "bad.csv").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ValueError, match=r"bad\.csv"):
        read_history(tmp_path / "bad.csv")


def test_snapshot_curves_by_hand():
    S = [np.array([[1, 1, 0, 0]]), np.array([[1, 0, 1, 0]]), np.array([[1, 1, 0, 1]])]
    snaps = [(i, {"a": sp.csr_array(s.astype(bool))}) for i, s in enumerate(S)]
    c = snapshot_curves(snaps)
    assert c["itop"] == [0.5, 0.75, 1.0]
    assert c["density"] == [0.5, 0.5, 0.75]
    # removed 0->1: {1}; grown 1->2: {1, 3}; overlap 1/2
    assert c["overlap"] == [0.5] and c["overlap_step"] == [2]


def test_analyze_unrelated_layers_note(tmp_path):
    sd = {"a.weight_mask": torch.ones(4, 6), "b.weight_mask": torch.eye(4, 6),
          "c.weight_mask": torch.ones(3, 3)}
    torch.save(sd, tmp_path / "blk.pt")
    assert main(["analyze", str(tmp_path / "blk.pt"), "-o", str(tmp_path / "r"),
                 "--no-plots"]) == 0
    rep = (tmp_path / "r" / "report.md").read_text()
    assert "no relation between the layers" in rep and "| b | 6 | 4 | 4 |" in rep


def test_analyze_transformer_checkpoint_uses_inferred_pairs(tmp_path, capsys):
    sparsify = pytest.importorskip("netshape.torch").sparsify
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.TransformerEncoderLayer(16, 2, 32, batch_first=True),
                                torch.nn.Linear(16, 4))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sparsify(model, opt, method="set", density=0.2, total_steps=10, update_every=5, rng=0)
    torch.save({"model": model.state_dict()}, tmp_path / "tel.pt")
    layers = ns.io.read_checkpoint(tmp_path / "tel.pt")
    assert set(layers) == {"0.self_attn.q", "0.self_attn.k", "0.self_attn.v",
                           "0.self_attn.out_proj", "0.linear1", "0.linear2"}
    assert main(["analyze", str(tmp_path / "tel.pt"), "-o", str(tmp_path / "r"),
                 "--no-plots"]) == 0
    rep = (tmp_path / "r" / "report.md").read_text()
    assert "couple 0.self_attn.q, 0.self_attn.k" in rep
    assert "chain 0.linear1, 0.linear2" in rep
    pairs = [("couple", "0.self_attn.q", "0.self_attn.k"),
             ("chain", "0.self_attn.v", "0.self_attn.out_proj"),
             ("chain", "0.linear1", "0.linear2")]
    _, expect = ns.percolate(layers, pairs=pairs)
    rows = {r["layer"]: r for r in read_csv(tmp_path / "r" / "layers.csv")}
    assert {k: int(r["perc_links_removed"]) for k, r in rows.items()} == {
        k: v.links_removed for k, v in expect.layers.items()}
    assert f"ANP {ns.metrics.anp(layers, pairs=pairs):.4g}" in capsys.readouterr().out


def test_analyze_bad_inputs_write_nothing(tmp_path, capsys):
    out = tmp_path / "rep"
    assert main(["analyze", str(tmp_path / "missing.pt"), "-o", str(out)]) == 2
    assert "missing.pt" in capsys.readouterr().err and not out.exists()
    pruned_mlp_checkpoint(tmp_path / "ok.pt")
    data = (tmp_path / "ok.pt").read_bytes()
    (tmp_path / "trunc.pt").write_bytes(data[:200])
    assert main(["analyze", str(tmp_path / "trunc.pt"), "-o", str(out)]) == 2
    assert "trunc.pt" in capsys.readouterr().err and not out.exists()

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"x": Evil()}, tmp_path / "evil.pt")
    assert main(["analyze", str(tmp_path / "evil.pt"), "-o", str(out)]) == 2
    captured = capsys.readouterr()
    assert "pickled" in captured.err and "pwned" not in captured.out and not out.exists()
    run = tmp_path / "run"
    run.mkdir()
    (run / "a.pt").write_bytes(data)
    (run / "b.pt").write_bytes(data)
    assert main(["analyze", str(run), "-o", str(out)]) == 2
    assert "several checkpoints" in capsys.readouterr().err and not out.exists()
    empty = tmp_path / "empty_run"
    empty.mkdir()
    assert main(["analyze", str(empty), "-o", str(out)]) == 2
    assert "nothing to analyse" in capsys.readouterr().err


# ---------------------------------------------------------------- training plots
def test_training_plots():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    assert ns.plot.itop_curve({"a": [0.1, 0.2], "b": [0.1, 0.3]}, steps=[5, 10], ax=ax) is ax
    assert [tuple(l.get_xdata()) for l in ax.lines] == [(5, 10), (5, 10)]
    assert ax.lines[1].get_ydata()[1] == pytest.approx(30.0)
    ax2 = ns.plot.overlap_curve([0.0, 1.0], threshold=0.9)
    assert any(l.get_ydata()[0] == pytest.approx(90.0) for l in ax2.lines[1:])
    ax3 = ns.plot.training_curves({"step": [1, 2], "density": [0.5, 0.2], "anp": [1, 0.9]},
                                  keys=["anp"])
    assert len(ax3.lines) == 1
    with pytest.raises(ValueError, match="NaN"):
        ns.plot.itop_curve([0.1, float("nan")])
    with pytest.raises(ValueError, match="steps has 1"):
        ns.plot.itop_curve([0.1, 0.2], steps=[1])
    with pytest.raises(ValueError, match="not in history"):
        ns.plot.training_curves({"a": [1]}, keys=["b"])
    with pytest.raises(TypeError, match="sequence"):
        ns.plot.overlap_curve(3.0)
    plt.close("all")
