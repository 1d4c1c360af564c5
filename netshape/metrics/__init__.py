"""Metrics of sparse topologies: degrees, ANP, ITOP, overlap, power-law fits, CAP.

A layer is a biadjacency ``A`` of shape ``(n_in, n_out)`` (rows: inputs,
columns: outputs; a ``torch.nn.Linear`` mask is ``A.T``).
"""

from ._exploration import ITOPTracker, itop, overlap_rate, snapshot_curves
from ._neurons import DegreeStats, NeuronGroup, SideStats, active_neurons, anp, degree_stats
from ._paths import CAPResult, cap, hub_alignment
from ._powerlaw import PowerLawFit, fit_power_law

__all__ = [
    "CAPResult",
    "DegreeStats",
    "ITOPTracker",
    "NeuronGroup",
    "PowerLawFit",
    "SideStats",
    "active_neurons",
    "anp",
    "cap",
    "degree_stats",
    "fit_power_law",
    "hub_alignment",
    "itop",
    "overlap_rate",
    "snapshot_curves",
]
