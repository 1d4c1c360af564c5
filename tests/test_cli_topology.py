"""netshape generate / plot / info from the command line (in-process through cli.main)."""

from __future__ import annotations

import numpy as np
import pytest

from netshape.cli import main
from netshape.generators import brf, bsf, bsw, csti
from netshape.io import load_topology, save_topology


def test_readme_run_command(tmp_path, capsys):
    out, png = tmp_path / "brf.npz", tmp_path / "brf.png"
    rc = main(["generate", "brf", "--n-in", "784", "--n-out", "1568", "--density", "0.05",
               "--r", "0.25", "--rng", "0", "-o", str(out), "--plot", str(png)])
    assert rc == 0
    A = load_topology(out)
    assert (A != brf(784, 1568, 0.05, r=0.25, rng=0)).nnz == 0
    assert A.nnz == 61466
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = capsys.readouterr().out
    assert "61466 links" in text and str(out) in text


@pytest.mark.parametrize(("argv", "expected"), [
    (["bsw", "--n-in", "50", "--n-out", "40", "--density", "0.1", "--beta", "0.3"],
     lambda: bsw(50, 40, 0.1, beta=0.3, rng=7)),
    (["brf", "--n-in", "50", "--n-out", "40", "--density", "0.1", "--degrees", "uniform",
      "--r", "0.5"], lambda: brf(50, 40, 0.1, r=0.5, degrees="uniform", rng=7)),
    (["bsf", "--n-in", "50", "--n-out", "40", "--density", "0.1", "--gamma", "3",
      "--equal-partition", "--resort", "soft"],
     lambda: bsf(50, 40, 0.1, gamma=3.0, equal_partition=True, resort="soft", rng=7)),
])
def test_generate_matches_python_api(tmp_path, argv, expected):
    out = tmp_path / "a.npz"
    assert main(["generate", *argv, "--rng", "7", "-o", str(out)]) == 0
    assert (load_topology(out) != expected()).nnz == 0


def test_generate_csti_from_data(tmp_path):
    X = np.random.default_rng(0).normal(size=(40, 12))
    np.save(tmp_path / "X.npy", X)
    np.savetxt(tmp_path / "X.csv", X, delimiter=",")
    for name in ("X.npy", "X.csv"):
        out = tmp_path / f"{name}.npz"
        assert main(["generate", "csti", "--n-out", "6", "--density", "0.2",
                     "--data", str(tmp_path / name), "-o", str(out)]) == 0
        assert (load_topology(out) != csti(X, 6, 0.2, rng=0)).nnz == 0


@pytest.mark.parametrize(("argv", "fragment"), [
    (["generate", "er", "--n-in", "10", "--n-out", "10", "--density", "1.5"],
     "density=1.5 is outside the allowed range (0, 1]"),
    (["generate", "er", "--n-in", "10", "--n-out", "10", "--density", "0.1", "--r", "0.2"],
     "--r applies to brf only"),
    (["generate", "brf", "--n-out", "10", "--density", "0.1"], "brf needs --n-in"),
    (["generate", "csti", "--n-out", "10", "--density", "0.1"], "pass --data"),
    (["generate", "csti", "--n-out", "10", "--density", "0.1", "--data", "nope.npy"],
     "no such file"),
    (["generate", "brf", "--n-in", "0", "--n-out", "10", "--density", "0.1"],
     "n_in=0 must be a positive integer"),
])
def test_generate_errors(tmp_path, capsys, argv, fragment):
    rc = main([*argv, "-o", str(tmp_path / "a.npz")])
    assert rc == 2
    assert fragment in capsys.readouterr().err
    assert not (tmp_path / "a.npz").exists()


def test_info_and_plot_network_file(tmp_path, capsys):
    net = {"fc1": brf(30, 20, 0.2, r=0.2, rng=0), "fc2": bsw(20, 10, 0.3, beta=0.5, rng=1)}
    save_topology(tmp_path / "net.npz", net)
    assert main(["info", str(tmp_path / "net.npz")]) == 0
    text = capsys.readouterr().out
    assert "fc1: 30 inputs x 20 outputs, 120 links, density 0.2" in text
    assert "fc2: 20 inputs x 10 outputs, 60 links" in text
    assert "output degree: min 6  mean 6.00" in text  # brf fixed degrees: 120 / 20
    for kind in ("adjacency", "degrees"):
        png = tmp_path / f"{kind}.png"
        assert main(["plot", str(tmp_path / "net.npz"), "-o", str(png), "--kind", kind]) == 0
        assert png.stat().st_size > 1000
    assert main(["plot", str(tmp_path / "net.npz"), "-o", str(tmp_path / "x.png"), "--layer",
                 "fc9"]) == 2
    assert "--layer='fc9' is not in" in capsys.readouterr().err


def test_info_on_corrupt_file(tmp_path, capsys):
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    assert main(["info", str(tmp_path / "bad.npz")]) == 2
    assert "bad.npz" in capsys.readouterr().err
