"""Reading and writing topologies; interop with networkx and igraph; checkpoints.

Public face: :func:`save_topology`, :func:`load_topology` (``.npz``, never
pickle), :func:`to_networkx`, :func:`from_networkx`, :func:`to_igraph`,
:func:`read_checkpoint` (safe loaders only).
"""

from .._lazy import lazy_exports

# one line per private module; each module's owner keeps its own line
_EXPORTS = {
    # _topology.py: .npz files, written atomically
    "save_topology": "_topology", "load_topology": "_topology",
    # _interop.py: networkx / igraph
    "to_networkx": "_interop", "from_networkx": "_interop", "to_igraph": "_interop",
    # _checkpoint.py: torch (weights_only) / safetensors / npz checkpoints
    "read_checkpoint": "_checkpoint",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
