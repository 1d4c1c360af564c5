"""Committed benchmark results were produced by the code they measure (no stale figures).

benchmarks/results/fingerprints.json lists per benchmark its result files, the
source paths it measures and their content hash when the results were written
(benchmarks/_fingerprint.py). A mismatch means the code changed after the
run: re-run the named benchmark (its command is in its markdown) to refresh
both the figures and the fingerprint.
"""

from __future__ import annotations

import fnmatch
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import _fingerprint as fp  # noqa: E402

MANIFEST = fp.load_manifest()
#: smoke runs (``--quick``) write ``*_quick.*`` beside the results; git ignores them
RESULT_FILES = sorted(p.name for p in fp.RESULTS.iterdir()
                      if p.is_file() and p.name != fp.MANIFEST.name
                      and not fnmatch.fnmatch(p.name, "*_quick.*")) if fp.RESULTS.is_dir() else []


def _owned(entry: dict) -> list[str]:
    return [f for f in RESULT_FILES if any(fnmatch.fnmatch(f, pat) for pat in entry["files"])]


def test_every_committed_result_has_a_manifest_entry():
    orphans = [f for f in RESULT_FILES if not any(f in _owned(e) for e in MANIFEST.values())]
    assert not orphans, f"results without an entry in {fp.MANIFEST.name}: {orphans}"


@pytest.mark.parametrize("name", sorted(n for n, e in MANIFEST.items() if e["enforced"]))
def test_committed_result_matches_the_code_it_measures(name):
    entry = MANIFEST[name]
    if not _owned(entry):
        pytest.skip(f"no committed results for {name}")
    assert entry.get("paths"), f"{name}: no measured paths listed"
    assert entry.get("fingerprint"), (
        f"{name}: results carry no fingerprint (produced before fingerprints, or by hand); "
        f"re-run benchmarks/{name}.py")
    assert fp.fingerprint(entry["paths"]) == entry["fingerprint"], (
        f"{name}: the measured code ({', '.join(entry['paths'])}) changed since these results "
        f"were written; re-run benchmarks/{name}.py")


def test_fingerprint_follows_content(tmp_path, monkeypatch):
    monkeypatch.setattr(fp, "ROOT", tmp_path)
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n")
    (tmp_path / "b.py").write_text("y = 2\n")
    before = fp.fingerprint(["pkg", "b.py"])
    assert fp.fingerprint(["b.py", "pkg"]) == before  # order of the list does not matter
    (tmp_path / "pkg" / "a.py").write_text("x = 3\n")
    assert fp.fingerprint(["pkg", "b.py"]) != before
    changed = fp.fingerprint(["pkg", "b.py"])
    (tmp_path / "pkg" / "c.py").write_text("")  # a new module in a measured package
    assert fp.fingerprint(["pkg", "b.py"]) != changed
    assert fp.fingerprint(["gone.py"]) != fp.fingerprint(["b.py"])  # a moved module counts


def test_record_writes_the_current_fingerprint(tmp_path, monkeypatch):
    monkeypatch.setattr(fp, "ROOT", tmp_path)
    monkeypatch.setattr(fp, "MANIFEST", tmp_path / "fingerprints.json")
    (tmp_path / "m.py").write_text("z = 0\n")
    value = fp.record("demo", ["m.py"])
    assert fp.load_manifest()["demo"] == {"files": ["demo.*"], "enforced": True,
                                          "paths": ["m.py"], "fingerprint": value}
    (tmp_path / "m.py").write_text("z = 1\n")
    assert fp.record("demo") != value  # paths kept, hash refreshed
    with pytest.raises(ValueError, match="'other' lists no measured paths"):
        fp.record("other")
