"""Metrics of sparse topologies: degrees, ANP, ITOP, overlap, power-law fits, CAP.

A layer is a biadjacency ``A`` of shape ``(n_in, n_out)`` (rows: inputs,
columns: outputs; a ``torch.nn.Linear`` mask is ``A.T``).
"""

from ._exploration import ITOPTracker, itop, overlap_rate
from ._neurons import DegreeStats, NeuronGroup, SideStats, active_neurons, anp, degree_stats

__all__ = [
    "DegreeStats",
    "ITOPTracker",
    "NeuronGroup",
    "SideStats",
    "active_neurons",
    "anp",
    "degree_stats",
    "itop",
    "overlap_rate",
]
