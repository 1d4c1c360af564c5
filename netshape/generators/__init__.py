"""Topology generators for sparse layers: ER, BSW, BRF, BSF and CSTI.

Each returns a canonical boolean :class:`scipy.sparse.csr_array` of shape
``(n_in, n_out)`` (rows inputs, columns outputs; a torch mask is ``A.T``) with
exactly ``round(density * n_in * n_out)`` links; the same ``rng`` gives the
same layer.

>>> available()
('er', 'bsw', 'brf', 'bsf', 'csti')
"""

from .brf import brf
from .bsf import bsf
from .bsw import bsw
from .csti import csti
from .er import er

__all__ = ["available", "brf", "bsf", "bsw", "csti", "er"]


def available() -> tuple[str, ...]:
    """Names of the generators: the one list the CLI and the torch adapter's ``init`` read.

    ``csti`` takes calibration data ``X`` first; the others ``(n_in, n_out, density)``.
    """
    return ("er", "bsw", "brf", "bsf", "csti")
