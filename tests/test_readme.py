"""The README's commands and Python quickstart work as written (run in a fresh directory)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from netshape.cli import main

README = Path(__file__).resolve().parent.parent / "README.md"


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README.read_text(), flags=re.S)


def _netshape_commands() -> list[list[str]]:
    cmds = []
    for block in _blocks("bash"):
        for line in block.splitlines():
            line = line.split("#", 1)[0].strip()
            if line.startswith("netshape "):
                cmds.append(shlex.split(line)[1:])
    return cmds


def test_readme_names_the_main_job_and_the_test_command():
    run = README.read_text().split("## Run", 1)[1].split("##", 1)[0]
    assert "netshape train --compare fc,chts" in run
    assert any("python -m pytest" in b for b in _blocks("bash"))
    assert any("pip install torch==2.13.0" in b for b in _blocks("bash"))


@pytest.mark.parametrize("argv", _netshape_commands(), ids=lambda a: " ".join(a[:2]))
def test_readme_command_runs(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    if argv[0] == "predict":  # needs the layer the generate line writes
        assert main(["generate", "brf", "--n-in", "784", "--n-out", "1568", "--density", "0.05",
                     "--r", "0.25", "--rng", "0", "-o", "brf.npz"]) == 0
    assert main(argv) == 0
    out = capsys.readouterr().out
    if argv[0] == "train" and "--task" in argv:
        assert "fc" in out and "chts" in out and "val ppl" in out
        assert (tmp_path / "runs" / "lm-stdlib-compare" / "comparison.md").is_file()
    elif argv[0] == "train":
        assert "fc" in out and "chts" in out and "test acc" in out
        assert (tmp_path / "runs" / "digits-compare" / "comparison.md").is_file()


def test_readme_python_quickstart(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = _blocks("python")[0]
    namespace: dict = {}
    exec(compile(code, "README quickstart", "exec"), namespace)  # noqa: S102
    A = namespace["A"]
    assert A.shape == (784, 1568)
    assert f"{A.nnz}" in code  # the printed figure in the README is the real one
    assert (tmp_path / "brf.npz").is_file() and (tmp_path / "brf.png").is_file()
