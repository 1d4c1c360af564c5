"""PyTorch adapter: dynamic sparse training with the presets of :data:`PRESETS`.

>>> from netshape.torch import sparsify, PRESETS
>>> "chtss" in PRESETS, PRESETS["set"]["regrowth"]
(True, 'random')

Orientation: a mask is shaped like the weight, ``(out, in)`` for
``nn.Linear``: the transpose of netshape's ``(n_in, n_out)`` biadjacency.
"""

from .._backend import require

require("torch")  # an ImportError that names the extra: pip install 'netshape[torch]'

from ._sparse_linear import SparseLinear, sparse_linear  # noqa: E402
from .dataflow import trace_pairs  # noqa: E402
from .engine import STAT_KEYS, DynamicSparseTrainer  # noqa: E402
from .execution import EXECUTIONS, export_dense  # noqa: E402
from .export import load_sparse, save_sparse  # noqa: E402
from .groups import Slot, find_slots, percolation_pairs  # noqa: E402
from .masking import (  # noqa: E402
    Mask,
    apply_mask,
    get_mask,
    get_original,
    is_masked,
    remove_masks,
    reset_optimizer_state,
    to_biadjacency,
)
from .methods import COMPONENTS, METHODS, PRESETS, preset_table, resolve_method  # noqa: E402
from .setup import sparsify  # noqa: E402

__all__ = [
    "COMPONENTS",
    "EXECUTIONS",
    "METHODS",
    "PRESETS",
    "STAT_KEYS",
    "DynamicSparseTrainer",
    "Mask",
    "Slot",
    "SparseLinear",
    "apply_mask",
    "export_dense",
    "find_slots",
    "get_mask",
    "get_original",
    "is_masked",
    "load_sparse",
    "percolation_pairs",
    "preset_table",
    "remove_masks",
    "reset_optimizer_state",
    "resolve_method",
    "save_sparse",
    "sparse_linear",
    "sparsify",
    "to_biadjacency",
    "trace_pairs",
]
