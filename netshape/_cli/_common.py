"""Helpers shared by the command modules."""

from __future__ import annotations

import argparse
from pathlib import Path

from .._fs import check_writable_dir, check_writable_file

__all__ = ["IMAGE_SUFFIXES", "add_rng", "check_output_dir", "check_output_file",
           "check_writable_dir", "check_writable_file", "make_parent"]

#: image formats the commands' ``savefig`` writes (matplotlib picks the format from the suffix)
IMAGE_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg")


def add_rng(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rng", type=int, default=0, metavar="SEED",
                        help="random seed (default 0); same seed, same result")


def check_output_file(path: str, name: str, suffixes: tuple[str, ...]) -> Path:
    """An output file's path, checked (suffix, writable directory) without writing anything."""
    return check_writable_file(path, name, suffixes=suffixes, create=False)


def check_output_dir(path: str, name: str) -> Path:
    """An output directory's path, checked without creating it."""
    return check_writable_dir(path, name, create=False)


def make_parent(path: Path) -> Path:
    """Create the directory ``path`` goes into (once every check has passed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
