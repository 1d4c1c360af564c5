"""Root pytest configuration: doctest collection of optional-dependency modules.

``--doctest-modules`` imports every module under ``netshape/``. Modules that need
an optional extra are left out of collection when the extra is missing, so a
core-only install still runs the rest of the suite.
"""

from __future__ import annotations

import importlib.util

collect_ignore_glob: list[str] = []

_OPTIONAL = {
    "torch": ["netshape/torch/*", "netshape/train/*"],
    "matplotlib": ["netshape/plot/*"],
}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # blocked by an import hook, or a None in sys.modules
        return False


for _module, _globs in _OPTIONAL.items():
    if not _installed(_module):
        collect_ignore_glob.extend(_globs)
