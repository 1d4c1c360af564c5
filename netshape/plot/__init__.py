"""Plots. Every function takes ``ax=None``, returns the Axes and never calls ``show()``.

Needs the ``plot`` extra (matplotlib).
"""

from .._lazy import lazy_exports

# one line per private module; each module's owner keeps its own line
_EXPORTS = {
    # _topology.py: adjacency (bucketed), degree distribution, generator gallery
    "adjacency": "_topology", "degree_distribution": "_topology", "gallery": "_topology",
    # _runtime.py: link-prediction runtime (Figure 2 style)
    "runtime": "_runtime",
    # _training.py: ITOP / overlap / density curves over training
    "itop_curve": "_training", "overlap_curve": "_training", "training_curves": "_training",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
