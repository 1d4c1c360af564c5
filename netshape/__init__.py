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

from ._lazy import lazy_exports

__version__ = "0.1.0"

_SUBMODULES = (
    "generators", "linkpred", "metrics", "schedules", "sampling", "io", "plot",
    "bench", "datasets", "percolation", "analyze",
)
_EXPORTS: dict[str, str | None] = {name: None for name in _SUBMODULES}
_EXPORTS["percolate"] = "percolation"

__getattr__, __dir__, _names = lazy_exports(__name__, _EXPORTS)
__all__ = ["__version__", *_names]
