"""Path-based Cannistraci-Hebb link prediction: CH3-L3p and CH2-L3p (cost ~ N d³)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import check_choice
from ._inputs import as_layer, to_family
from ._kernels import numba_kernels

__all__ = ["ch2_l3p", "ch3_l3p"]

_ENGINES = ("auto", "numba", "numpy")


def _side_weight(C: np.ndarray, deg: np.ndarray, ch2: bool) -> np.ndarray:
    """In place: ``1/sqrt(max(1, deg - C))`` (CH3) or ``sqrt((1 + C)/max(1, deg - C))`` (CH2).

    ``deg - C = 1 + de*`` for the intermediate node whose degree is ``deg``; on a
    real path it is at least 1, the clamp only guards entries no path uses.
    """
    den = np.subtract(deg, C)
    np.maximum(den, 1.0, out=den)
    if ch2:
        np.add(C, 1.0, out=C)
        np.divide(C, den, out=C)
    else:
        np.divide(1.0, den, out=C)
    np.sqrt(C, out=C)
    return C


def _weights(A: np.ndarray, ch2: bool) -> tuple[np.ndarray, np.ndarray]:
    """``G[a, j]`` for output pairs and ``H[u, b]`` for input pairs, float32.

    ``G[a, j]`` weighs the intermediate output ``a`` on a path ending at ``j``
    (``di*_a = C'[a, j]``), ``H[u, b]`` the intermediate input ``b`` on a path
    starting at ``u`` (``di*_b = C[u, b]``).
    """
    deg_in = A.sum(axis=1, dtype=np.float32)
    deg_out = A.sum(axis=0, dtype=np.float32)
    G = _side_weight(A.T @ A, deg_out[:, None], ch2)   # degree of the row node a
    H = _side_weight(A @ A.T, deg_in[None, :], ch2)    # degree of the column node b
    return G, H


def _paths_numpy(Ab: np.ndarray, A: np.ndarray, G: np.ndarray, H: np.ndarray) -> np.ndarray:
    """Group the paths by their first input ``u``: one dense product per input.

    ``S[u, :] = Σ_{a ∈ N(u)} G[a, :] ⊙ (Aᵀ[a, B] diag(H[u, B]) A[B, :])`` where
    ``B`` are the inputs other than ``u`` sharing an output with ``u``.
    """
    n_in, n_out = A.shape
    S = np.zeros((n_in, n_out), dtype=np.float32)
    for u in range(n_in):
        a_idx = np.flatnonzero(Ab[u])
        if a_idx.size == 0:
            continue
        near = Ab[:, a_idx]
        b_mask = near.any(axis=1)
        b_mask[u] = False
        b_idx = np.flatnonzero(b_mask)
        if b_idx.size == 0:
            continue
        left = near[b_idx].T * H[u, b_idx]  # (|N(u)|, |B|)
        M = left @ A[b_idx]                 # (|N(u)|, n_out)
        M *= G[a_idx]
        M.sum(axis=0, out=S[u])
    np.copyto(S, 0.0, where=Ab)
    return S


def _path_scores(A: Any, ch2: bool, engine: str) -> Any:
    engine = check_choice(engine, "engine", _ENGINES)
    layer = as_layer(A)
    Ab = layer.host_dense()
    A32 = Ab.astype(np.float32)
    G, H = _weights(A32, ch2)
    kernels = numba_kernels() if engine != "numpy" else None
    if engine == "numba" and kernels is None:
        raise ImportError(
            "engine='numba' needs numba; install it with: pip install 'netshape[fast]'")
    if kernels is not None:
        csr = layer.csr
        csc = csr.T.tocsr()  # rows of the transpose: inputs of each output
        S = np.zeros(layer.shape, dtype=np.float32)
        kernels[2](csr.indptr, csr.indices, csc.indptr, csc.indices, G, H, S)
    else:
        S = _paths_numpy(Ab, A32, G, H)
    return to_family(S, layer)


def ch3_l3p(A: Any, *, engine: str = "auto") -> Any:
    r"""CH3-L3p scores: a sum over every length-3 path (paper Appendix C, Eq. 5).

    Each path :math:`u - a - b - j` (``u``, ``b`` inputs; ``a``, ``j`` outputs)
    to a missing link ``(u, j)`` adds

    .. math:: \frac{1}{\sqrt{(1 + d_e^*(a))\,(1 + d_e^*(b))}},\quad
              d_e^*(a) = d_a - 1 - |N(a) \cap N(j)|,\ d_e^*(b) = d_b - 1 - |N(b) \cap N(u)|

    (the links of each intermediate node that leave the local community).

    Parameters
    ----------
    A : scipy sparse, numpy array, torch tensor or CuPy array
        Biadjacency ``(n_in, n_out)``: rows are inputs, columns outputs
        (``nn.Linear.weight`` is ``(out, in)``: pass ``mask.T``). Any nonzero is a link.
    engine : {"auto", "numba", "numpy"}
        ``"numba"``: a compiled, thread-parallel kernel that walks the paths of
        each input (the ``fast`` extra). ``"numpy"``: the pure-numpy fallback,
        one dense product per input over its two-hop neighbourhood. ``"auto"``
        uses numba when it is installed.

    Returns
    -------
    scores
        float32 ``(n_in, n_out)``: 0 on existing links, > 0 exactly where a
        length-3 path exists. numpy for numpy/scipy input; torch or CuPy input
        is computed on the host and returned on its device.

    Notes
    -----
    Cost grows as :math:`N d^3`; use :func:`ch2_l3n` for large or dense layers.

    Examples
    --------
    >>> import numpy as np
    >>> S = ch3_l3p(np.array([[1, 1, 0], [0, 1, 1], [1, 0, 0]]))
    >>> S.round(3)
    array([[0., 0., 1.],
           [1., 0., 0.],
           [0., 1., 0.]], dtype=float32)
    """
    return _path_scores(A, ch2=False, engine=engine)


def ch2_l3p(A: Any, *, engine: str = "auto") -> Any:
    r"""CH2-L3p: :func:`ch3_l3p` with each path also weighted by
    :math:`\sqrt{(1 + d_i^*(a))(1 + d_i^*(b))}`, :math:`d_i^*(a) = |N(a) \cap N(j)|`,
    :math:`d_i^*(b) = |N(b) \cap N(u)|`.

    Same parameters, orientation ``(n_in, n_out)``, support and return types as
    :func:`ch3_l3p`.

    >>> import numpy as np
    >>> float(ch2_l3p(np.array([[1, 1, 0], [0, 1, 1], [1, 0, 0]]))[0, 2])
    2.0
    """
    return _path_scores(A, ch2=True, engine=engine)
