"""docs/training-loop.md: the example runs and the preset table matches PRESETS."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from netshape.torch import preset_table  # noqa: E402

DOC = Path(__file__).resolve().parents[2] / "docs" / "training-loop.md"


def test_preset_table_in_docs_is_current():
    assert preset_table() in DOC.read_text()


def test_twenty_line_example_runs():
    block = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S).group(1)
    assert len(block.strip().splitlines()) <= 22
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block, str(DOC), "exec"), {})
    lines = out.getvalue().splitlines()
    assert [ln.split()[0] for ln in lines] == ["20"]  # one update, at the end of epoch 1
    assert "'0': 10035" in lines[0] and "'2': 3277" in lines[0]
