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
        if argv == ["train", "--compare", "fc,chts"]:  # the tutorial's run: check its quotes
            _check_tutorial_quotes(out, capsys)


TUTORIAL = README.parent / "docs" / "tutorial.md"
#: columns of the comparison table that do not depend on the machine (seconds do)
_STABLE_COLUMNS = 7


def _table_rows(text: str, methods=("fc", "chts")) -> list[list[str]]:
    return [ln.split()[:_STABLE_COLUMNS] for ln in text.splitlines()
            if ln.split() and ln.split()[0] in methods]


def _check_tutorial_quotes(train_out: str, capsys) -> None:
    """The tutorial's table, analysis output and figure names are what the code produces."""
    page = TUTORIAL.read_text()
    quoted = re.search(r"```\n(method  epochs.*?)```", page, re.S).group(1)
    assert _table_rows(train_out) == _table_rows(quoted)
    section = page.split("## 4.", 1)[1].split("## 5.", 1)[0]
    cmd = re.search(r"```bash\n(netshape analyze .*?)\n```", section).group(1)
    argv = shlex.split(cmd)[1:]
    assert main(argv) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    quoted_out = re.search(r"```\n(analysed .*?)```", section, re.S).group(1)
    assert printed == quoted_out.strip().splitlines()
    report = Path(argv[argv.index("-o") + 1])
    figures = re.findall(r"\(tutorial/([^)]+\.png)\)", section)
    assert figures and all((report / f).is_file() for f in figures), figures
    assert all((TUTORIAL.parent / "tutorial" / f).is_file() for f in figures)


def _install_commands(text: str, heading: str) -> list[str]:
    part = text.split(heading, 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", part, re.S).group(1)
    return [ln.split("#", 1)[0].strip() for ln in block.splitlines() if "pip install" in ln]


def test_tutorial_installs_as_the_readme_does():
    readme = _install_commands(README.read_text(), "## Install")
    tutorial = _install_commands(TUTORIAL.read_text(), "## 1. Install")
    assert readme and tutorial == readme


def test_readme_python_quickstart(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = _blocks("python")[0]
    namespace: dict = {}
    exec(compile(code, "README quickstart", "exec"), namespace)  # noqa: S102
    A = namespace["A"]
    assert A.shape == (784, 1568)
    assert f"{A.nnz}" in code  # the printed figure in the README is the real one
    assert (tmp_path / "brf.npz").is_file() and (tmp_path / "brf.png").is_file()
