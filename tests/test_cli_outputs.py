"""Every command checks every output path (format, writable folder) and every argument
before it writes anything; every command and option has its --help text."""

from __future__ import annotations

import argparse

import pytest

import netshape as ns
from netshape.cli import build_parser, main

GEN = ["generate", "er", "--n-in", "20", "--n-out", "20", "--density", "0.1"]


@pytest.fixture
def work(tmp_path):
    """A folder holding one topology file and a plain file that blocks sub-paths."""
    ns.io.save_topology(tmp_path / "A.npz", ns.generators.er(20, 20, 0.1, rng=0))
    (tmp_path / "blocker").write_text("x")
    return tmp_path


def _files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("argv, words", [
    # a suffix that is not the format written
    (GEN + ["-o", "{d}/out.png"], ["--output", "out.png", ".npz"]),
    (["predict", "{d}/A.npz", "-o", "{d}/s.csv"], ["--output", "s.csv", ".npz"]),
    (["plot", "{d}/A.npz", "-o", "{d}/A2.npz"], ["--output", "A2.npz", ".png"]),
    # the second output is refused: the first one must not be written either
    (GEN + ["-o", "{d}/ok.npz", "--plot", "{d}/ok.txt"], ["--plot", "ok.txt", ".png"]),
    (GEN + ["-o", "{d}/ok.npz", "--plot", "{d}/blocker/ok.png"],
     ["--plot", "not a writable directory"]),
    # an output under a plain file, for every command
    (GEN + ["-o", "{d}/blocker/a.npz"], ["--output", "not a writable directory"]),
    (["predict", "{d}/A.npz", "-o", "{d}/blocker/s.npz"], ["--output", "not a writable"]),
    (["plot", "{d}/A.npz", "-o", "{d}/blocker/a.png"], ["--output", "not a writable"]),
    (["bench", "--quick", "-o", "{d}/blocker/b"], ["--output", "not a writable"]),
    (["analyze", "{d}/A.npz", "-o", "{d}/blocker/r"], ["--output", "not a writable"]),
    (["train", "--method", "fc", "--epochs", "1", "-q", "-o", "{d}/blocker/run"],
     ["--output", "not a writable"]),
    # an output that is a folder where a file is written
    (GEN + ["-o", "{d}"], ["--output", "is a directory"]),
])
def test_bad_output_is_refused_before_anything_is_written(work, capsys, argv, words):
    before = _files(work)
    assert main([a.format(d=work) for a in argv]) == 2
    err = capsys.readouterr().err
    for w in words:
        assert w in err, err
    assert _files(work) == before


@pytest.mark.parametrize("flag, value, words", [
    ("--sizes", "0", "sizes"),
    ("--densities", "1.5", "densities"),
    ("--predictors", "foo", "unknown predictor"),
    ("--repeats", "0", "repeats"),
    ("--timeout", "-1", "timeout"),
])
def test_bench_checks_arguments_before_creating_its_folder(tmp_path, capsys, flag, value,
                                                           words):
    out = tmp_path / "new" / "bench"
    assert main(["bench", "--quick", flag, value, "-o", str(out), "--no-progress"]) == 2
    assert words in capsys.readouterr().err
    assert not (tmp_path / "new").exists()


def test_outputs_go_into_new_folders_once_checked(work, capsys):
    out, png = work / "x" / "y" / "a.npz", work / "z" / "a.png"
    assert main(GEN + ["-o", str(out), "--plot", str(png)]) == 0
    assert ns.io.load_topology(out).shape == (20, 20)
    assert png.read_bytes()[:4] == b"\x89PNG"
    scores = work / "s" / "scores.npz"
    assert main(["predict", str(out), "-o", str(scores)]) == 0 and scores.exists()


def _subparsers(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices
    raise AssertionError("no subcommands")


def _walk(parser, prefix=""):
    """``(command path, parser, one-line help in the parent's listing)`` of every (sub)command."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            listed = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                path = f"{prefix} {name}".strip()
                yield path, sub, listed.get(name)
                yield from _walk(sub, path)


def test_every_command_and_option_has_help():
    commands = {path: (sub, listed) for path, sub, listed in _walk(build_parser())}
    assert {"generate", "plot", "info", "predict", "bench", "analyze", "train"} <= set(commands)
    missing = []
    for name, (sub, listed) in commands.items():
        if not (sub.description or "").strip():
            missing.append(f"{name}: no description")
        if not (listed or "").strip():
            missing.append(f"{name}: no help line in `netshape --help`")
        for action in sub._actions:
            if action.help == argparse.SUPPRESS:  # deliberately hidden (deprecated spellings)
                continue
            if isinstance(action, argparse._SubParsersAction):
                continue  # its commands are checked one by one
            if not (action.help or "").strip():
                flag = "/".join(action.option_strings) or action.dest
                missing.append(f"{name} {flag}: no help")
        # the text must render (a stray % in a help string breaks --help with a TypeError)
        sub.format_help()
    assert not missing, missing


@pytest.mark.parametrize("command", ["generate", "plot", "info", "predict", "bench", "analyze",
                                     "train"])
def test_help_prints_and_exits_zero(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: netshape " + command)
    assert len(out.splitlines()) > 3
