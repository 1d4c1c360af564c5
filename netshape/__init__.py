"""netshape: network science for the topologies of sparse neural networks.

Each linear layer is a bipartite graph with biadjacency ``A`` of shape
``(n_in, n_out)`` (rows: inputs, columns: outputs). Subpackages are imported
lazily, so ``import netshape`` stays light and never imports torch.

>>> import netshape as ns
>>> A = ns.generators.er(8, 4, 0.25, rng=0)
>>> A.shape, A.nnz
((8, 4), 8)
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_SUBMODULES = (
    "generators", "linkpred", "metrics", "schedules", "sampling", "io", "plot",
    "bench", "datasets", "percolation",
)
_FUNCTIONS = {"percolate": "percolation"}

__all__ = ["__version__", *_SUBMODULES, *_FUNCTIONS]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _FUNCTIONS:
        mod = importlib.import_module(f"{__name__}.{_FUNCTIONS[name]}")
        return getattr(mod, name)
    raise AttributeError(f"module 'netshape' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
