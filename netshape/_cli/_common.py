"""Helpers shared by the command modules."""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path


def add_rng(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rng", type=int, default=0, metavar="SEED",
                        help="random seed (default 0); same seed, same result")


def check_writable_dir(path: str | os.PathLike, name: str = "--output") -> Path:
    """Create ``path`` if needed and check files can be written there; raise otherwise."""
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=p, prefix=".netshape-probe-"):
            pass
    except OSError as exc:
        raise PermissionError(f"{name}={str(path)!r} is not a writable directory: {exc}") from exc
    return p


def check_writable_file(path: str | os.PathLike, name: str = "--output") -> Path:
    """Check the parent directory of ``path`` exists (created if needed) and is writable."""
    p = Path(path)
    check_writable_dir(p.parent if str(p.parent) else ".", name)
    return p
