"""Credit assignment paths (CAP) through a chain of layers, and hub alignment.

A layer is a biadjacency ``A`` of shape ``(n_in, n_out)`` (a
``torch.nn.Linear`` mask is ``A.T``); in a chain, layer ``l``'s outputs are
layer ``l+1``'s inputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from .._validation import as_biadjacency, as_layers

__all__ = ["CAPResult", "cap", "hub_alignment"]


@dataclass(frozen=True)
class CAPResult:
    """Number of complete input-to-output paths of a chain.

    ``paths`` is a float (exact below :math:`2^{53}`, ``inf`` beyond float64);
    ``log10`` is always finite when a path exists and ``-inf`` when none does.
    ``hub_alignment[l]`` is :func:`hub_alignment` of layers ``l`` and ``l+1``.
    """

    paths: float
    log10: float
    hub_alignment: tuple[float, ...]


def _chain(layers: Any) -> list:
    _, keys, mats = as_layers(layers)
    for (ka, a), (kb, b) in zip(zip(keys, mats), zip(keys[1:], mats[1:])):  # noqa: B905
        if a.shape[1] != b.shape[0]:
            raise ValueError(f"layers do not chain: layer {ka!r} has shape {a.shape} (n_in, n_out) "
                             f"but layer {kb!r} has shape {b.shape}")
    return mats


def hub_alignment(A: Any, B: Any) -> float:
    """Spearman correlation between the hidden neurons' degrees on both sides.

    For consecutive layers ``A`` ``(n_in, h)`` and ``B`` ``(h, n_out)``, hidden
    neuron :math:`j` has incoming degree :math:`\\sum_u A_{uj}` and outgoing
    degree :math:`\\sum_v B_{jv}`; hubs are aligned (paper Appendix E) when
    neurons with many incoming links also have many outgoing ones (value near
    1). Returns 0.0 when either degree vector is constant (no ranking; never
    NaN).

    Examples
    --------
    >>> import numpy as np
    >>> A = np.array([[1, 1, 1], [0, 1, 1], [0, 0, 1]])
    >>> hub_alignment(A, A.T)
    1.0
    >>> hub_alignment(A, A[:, ::-1].T)
    -1.0
    """
    A, B = as_biadjacency(A, name="A"), as_biadjacency(B, name="B")
    if A.shape[1] != B.shape[0]:
        raise ValueError(f"A has shape {A.shape} and B has shape {B.shape}; A's n_out must equal "
                         "B's n_in")
    k_in = np.bincount(A.indices, minlength=A.shape[1])
    k_out = np.diff(B.indptr)
    if k_in.size < 2 or np.all(k_in == k_in[0]) or np.all(k_out == k_out[0]):
        return 0.0
    return float(stats.spearmanr(k_in, k_out).statistic)


def cap(layers: Any) -> CAPResult:
    """Count the complete input-to-output paths through a chain (credit assignment paths).

    .. math:: \\mathrm{CAP} = \\mathbf 1^\\top A_1 A_2 \\cdots A_L \\mathbf 1

    computed as a vector propagated layer by layer and rescaled when it grows
    past :math:`10^{150}` (the scale is kept in log10), so very deep or wide
    chains neither overflow nor lose the order of magnitude.

    Parameters
    ----------
    layers : sequence or ordered mapping of biadjacencies ``(n_in, n_out)``
        Consecutive layers must chain (``n_out`` of one = ``n_in`` of the next).

    Returns
    -------
    CAPResult

    Examples
    --------
    >>> import numpy as np
    >>> r = cap([np.array([[1, 1], [0, 1]]), np.array([[1], [1]])])
    >>> r.paths, round(r.log10, 4)
    (3.0, 0.4771)
    """
    mats = _chain(layers)
    v = np.ones(mats[0].shape[0], dtype=np.float64)
    log_scale = 0.0
    for A in mats:
        v = A.T.astype(np.float64) @ v
        m = float(v.max(initial=0.0))
        if m > 1e150:
            v /= m
            log_scale += math.log10(m)
    total = float(v.sum())
    if total == 0.0:
        log10 = -math.inf
        paths = 0.0
    else:
        log10 = math.log10(total) + log_scale
        paths = total * 10.0 ** log_scale if log10 < 308 else math.inf
    align = tuple(hub_alignment(a, b) for a, b in zip(mats, mats[1:]))  # noqa: B905
    return CAPResult(paths=paths, log10=log10, hub_alignment=align)
