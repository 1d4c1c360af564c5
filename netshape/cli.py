"""``netshape`` command line: generate | plot | info | predict | bench | analyze | train.

Each command lives in its own module under ``netshape/_cli/`` exposing
``register(subparsers)``; the module adds its parser(s) and sets
``func=callable(args) -> int``. Heavy imports happen inside ``func``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from . import __version__

#: command modules, in the order their commands appear in ``--help``
_COMMAND_MODULES = ("topology", "linkpred", "analyze", "train")

#: errors that mean "the user asked for something wrong": message, exit code 2
_USER_ERRORS = (ValueError, TypeError, FileNotFoundError, NotADirectoryError,
                IsADirectoryError, PermissionError, ImportError, KeyError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="netshape",
        description="Network science for the topologies of sparse neural networks.",
    )
    parser.add_argument("--version", action="version", version=f"netshape {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        # a command module that fails to import is a bug: let it raise, never drop the command
        importlib.import_module(f"netshape._cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"netshape {args.command}: interrupted", file=sys.stderr)
        return 130
    except _USER_ERRORS as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"netshape {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
