"""The torch-free docs' Python blocks run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _blocks(page: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(), re.S)


@pytest.mark.parametrize("page", ["linkpred.md"])
def test_python_blocks_run(page):
    blocks = [b for b in _blocks(page) if "import torch" not in b]
    assert blocks, f"no torch-free python block in {page}"
    for block in blocks:
        exec(compile(block, str(DOCS / page), "exec"), {})
