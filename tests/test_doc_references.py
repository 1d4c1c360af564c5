"""Every ``netshape.…`` dotted path that the docs or docstrings mention resolves."""

from __future__ import annotations

import importlib
import pathlib
import re

import pytest

import netshape as ns

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOTTED = re.compile(r"\bnetshape(?:\.[A-Za-z_]\w*)+")
#: adapters whose optional extra may be missing; their paths are checked only when importable
OPTIONAL = {"netshape.torch": "torch", "netshape.lm": "torch", "netshape.train": "torch"}


def _sources() -> list[pathlib.Path]:
    files = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    return files + sorted((ROOT / "netshape").rglob("*.py"))


def _references() -> list[str]:
    found = set()
    for path in _sources():
        found.update(DOTTED.findall(path.read_text(encoding="utf-8")))
    return sorted(found)


def _resolve(dotted: str):
    """Import the longest module prefix, then walk attributes from ``netshape`` as a user does.

    Walking from the top finds a function that shadows a module of the same name:
    ``import netshape.linkpred.x`` may work while ``netshape.linkpred.x.y`` does not.
    """
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            importlib.import_module(".".join(parts[:cut]))
            break
        except ModuleNotFoundError as exc:
            if exc.name is not None and not exc.name.startswith("netshape"):
                raise  # a missing optional dependency, not a wrong path
    obj = ns
    for attr in parts[1:]:
        obj = getattr(obj, attr)
    return obj


def test_the_documented_names_are_the_functions():
    # the function names are public; the modules that hold them are private
    assert ns.linkpred.ch2_l3n is importlib.import_module("netshape.linkpred._ch2_l3n").ch2_l3n
    assert ns.linkpred.ch3_l3p is importlib.import_module("netshape.linkpred._ch3_l3p").ch3_l3p
    assert callable(ns.linkpred.ch2_l3n) and callable(ns.linkpred.ch3_l3p)
    assert ns.linkpred.choose_path(10, 10, 0) == "sparse"
    for name in ("ch2_l3n", "ch3_l3p"):
        with pytest.raises(ModuleNotFoundError):
            importlib.import_module(f"netshape.linkpred.{name}")


def test_the_scan_finds_the_documented_paths():
    refs = _references()
    assert "netshape.linkpred.choose_path" in refs
    assert len(refs) > 20


@pytest.mark.parametrize("dotted", _references())
def test_every_documented_path_resolves(dotted):
    extra = next((e for prefix, e in OPTIONAL.items() if dotted.startswith(prefix)), None)
    if extra is not None:
        pytest.importorskip(extra)
    try:
        _resolve(dotted)
    except (ModuleNotFoundError, AttributeError) as exc:
        pytest.fail(f"{dotted} is mentioned in the docs but does not resolve: {exc}")


def test_the_torch_function_names_are_the_functions(torch):
    import netshape.torch as nt

    # sparse_linear is the function; the module that holds it is private
    private = importlib.import_module("netshape.torch._sparse_linear")
    assert nt.sparse_linear is private.sparse_linear
    assert nt.SparseLinear.__module__ == "netshape.torch._sparse_linear"
