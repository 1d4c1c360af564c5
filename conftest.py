"""Root pytest configuration: doctest collection of optional-dependency modules.

``--doctest-modules`` imports every module under ``netshape/``. Modules that need
an optional extra are left out of collection when the extra is missing, so a
core-only install still runs the rest of the suite.
"""

from __future__ import annotations

import importlib.util

collect_ignore_glob: list[str] = []

_OPTIONAL = {
    "torch": ["netshape/torch/*", "netshape/train.py", "netshape/_train_*.py"],
    "matplotlib": ["netshape/plot/*"],
}
for _module, _globs in _OPTIONAL.items():
    if importlib.util.find_spec(_module) is None:
        collect_ignore_glob.extend(_globs)
