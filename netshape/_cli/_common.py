"""Helpers shared by the command modules."""

from __future__ import annotations

import argparse

from .._fs import check_writable_dir, check_writable_file

__all__ = ["add_rng", "check_writable_dir", "check_writable_file"]


def add_rng(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rng", type=int, default=0, metavar="SEED",
                        help="random seed (default 0); same seed, same result")
