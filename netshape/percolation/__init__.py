"""Percolation: inactive-neuron removal over chains of layers and coupled groups.

:mod:`~netshape.percolation._percolate` holds the fixed point (:func:`percolate`),
:mod:`~netshape.percolation._pairs` infers the relations between named layers
(q/k, gate/up, v -> o, fc1 -> fc2, chaining shapes) for ``netshape.torch`` and
``netshape analyze``.

>>> import numpy as np
>>> from netshape.percolation import percolate
>>> out, rep = percolate([np.array([[1, 1]]), np.array([[1], [0]])])
>>> rep.links_removed
1
"""

from ._pairs import infer_pairs
from ._percolate import (
    ChannelSet,
    LayerPercolation,
    PercolationReport,
    build_channel_sets,
    channel_alive,
    percolate,
)

__all__ = ["ChannelSet", "LayerPercolation", "PercolationReport", "build_channel_sets",
           "channel_alive", "infer_pairs", "percolate"]
