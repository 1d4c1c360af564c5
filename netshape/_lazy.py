"""Lazy re-exports for packages whose members live in private modules."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str,
                 mapping: dict[str, str | None]) -> tuple[Callable, Callable, list[str]]:
    """Return ``(__getattr__, __dir__, __all__)`` re-exporting ``name -> .module``
    (or ``..package.module``, relative to the package's parent).

    A value of None exports the submodule ``package.name`` itself.
    """

    def __getattr__(name: str) -> Any:
        if name in mapping:
            if mapping[name] is None:
                return importlib.import_module(f"{package}.{name}")
            module = mapping[name]  # ``.name`` of the package, or ``..other.name`` above it
            mod = importlib.import_module(module if module.startswith("..") else f".{module}",
                                          package)
            return getattr(mod, name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(mapping)

    return __getattr__, __dir__, sorted(mapping)
