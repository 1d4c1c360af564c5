"""Fingerprints of the code a benchmark measures, stored beside its committed results.

``benchmarks/results/fingerprints.json`` lists, per benchmark, the result files
it writes, the source paths it measures and a content hash of those paths
when the results were written. ``tests/test_benchmark_results.py`` recomputes
the hash: when the measured code has changed since, the committed figures are
stale and the test names the benchmark to re-run. A content hash needs no git
(an installed tree or a tarball checks the same way).

Entries with ``"enforced": false`` (training outcomes: long runs whose figures
do not follow every refactor of the training code) record the fingerprint of
the code they ran from without failing the test.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from netshape._fs import atomic_write_text

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
MANIFEST = RESULTS / "fingerprints.json"


def _files(path: str) -> list[Path]:
    p = ROOT / path
    if p.is_dir():
        return sorted(f for f in p.rglob("*.py") if "__pycache__" not in f.parts)
    return [p]


def fingerprint(paths: list[str]) -> str:
    """sha256 over the measured source files (paths relative to the repository root).

    A directory stands for every ``.py`` file under it; a missing path hashes as
    missing, so moving a measured module changes the fingerprint.
    """
    h = hashlib.sha256()
    for path in sorted(paths):
        for f in _files(path):
            rel = f.relative_to(ROOT).as_posix()
            h.update(rel.encode() + b"\0")
            h.update(f.read_bytes() if f.is_file() else b"<missing>")
            h.update(b"\0")
    return h.hexdigest()


def load_manifest() -> dict:
    return json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {}


def record(name: str, paths: list[str] | None = None) -> str:
    """Store the current fingerprint of benchmark ``name`` (after writing its results).

    ``paths`` default to the ones already listed for ``name`` in the manifest.
    Returns the fingerprint (the benchmarks print it in their markdown).
    """
    manifest = load_manifest()
    entry = manifest.setdefault(name, {"files": [f"{name}.*"], "enforced": True})
    if paths is not None:
        entry["paths"] = sorted(paths)
    if not entry.get("paths"):
        raise ValueError(f"benchmark {name!r} lists no measured paths in {MANIFEST}")
    entry["fingerprint"] = fingerprint(entry["paths"])
    atomic_write_text(MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return entry["fingerprint"]
