"""netshape train fills numba's cache from a second process (netshape._cli._precompile)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from netshape._cli import _precompile

needs_numba = pytest.mark.skipif(importlib.util.find_spec("numba") is None,
                                 reason="numba (the fast extra) is not installed")


@needs_numba
def test_only_dst_methods_want_kernels():
    assert not _precompile.wanted(["fc"])
    assert _precompile.wanted(["fc", "chts"]) and _precompile.wanted(["set"])


@needs_numba
def test_the_child_fills_a_fresh_cache(tmp_path):
    # every kernel a DST run can compile is in the cache once the child has exited
    env = {"NUMBA_CACHE_DIR": str(tmp_path), "PYTHONPATH": ":".join(sys.path)}
    subprocess.run([sys.executable, "-m", "netshape._cli._precompile"], env=env, check=True)
    cached = {p.name for p in tmp_path.rglob("*.nbi")}
    wanted = ["_full_fill_ranged", "_gram_weights_ranged", "_pack_columns_ranged",
              "_row_popcounts_ranged", "_l3n_walks_ranged"]
    if importlib.util.find_spec("torch") is not None:
        wanted += ["_fwd_py", "_bwd_py"]
    for kernel in wanted:
        assert any(f".{kernel}-" in name for name in cached), (kernel, sorted(cached))


@needs_numba
def test_start_launches_one_child_per_process(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(_precompile, "_started", [])
    assert _precompile.start(["fc"]) is None
    child = _precompile.start(["fc", "chts"])
    assert child is not None and child.wait() == 0
    assert _precompile.start(["chts"]) is None  # the cache is filled once
    monkeypatch.setattr(_precompile, "_started", [])
    monkeypatch.setenv("NETSHAPE_NO_NUMBA", "1")
    assert _precompile.start(["chts"]) is None


def test_the_train_command_starts_it(tmp_path, capsys, monkeypatch):
    pytest.importorskip("torch")
    from netshape.cli import main

    asked = []
    monkeypatch.setattr(_precompile, "start", lambda methods: asked.append(methods))
    quick = ["--epochs", "1", "--steps-per-epoch", "2", "--hidden", "24,16", "--density", "0.3",
             "-q"]
    assert main(["train", "--compare", "fc,set", *quick, "-o", str(tmp_path / "c")]) == 0
    assert main(["train", "--method", "set", *quick, "-o", str(tmp_path / "s")]) == 0
    assert asked == [["fc", "set"], ["set"]]
