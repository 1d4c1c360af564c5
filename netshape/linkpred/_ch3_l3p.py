"""Path-based Cannistraci-Hebb link prediction: CH3-L3p and CH2-L3p (cost ~ N d³)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .._validation import check_choice
from . import _kernels, _l3p_walk
from ._inputs import as_layer, to_family

__all__ = ["ch2_l3p", "ch3_l3p"]

#: computation routes (``method=``): scipy's convention, "auto" picks one
METHODS = ("auto", "numba", "numpy")

#: cost of one walked path over one multiply-add of the grouped products (benchmark fit)
_NUMPY_OVER_NUMBA = 50.0


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


#: rows of (input, output) pairs handled per dense product in the numpy engine
_CHUNK_ENTRIES = 1 << 22


def _paths_numpy(csr, Ab: np.ndarray, A: np.ndarray, G: np.ndarray, H: np.ndarray) -> np.ndarray:
    """Group the paths by their first link ``(u, a)``: one dense product per chunk of links.

    ``S[u, :] = Σ_{a ∈ N(u)} G[a, :] ⊙ Σ_{b ≠ u} A[b, a] H[u, b] A[b, :]``. The
    inner sum for a chunk of links ``(u, a)`` is one product ``L @ A`` with
    ``L[(u, a), b] = A[b, a] H[u, b]`` (0 at ``b = u``); a sparse 0/1 matrix then
    adds the rows of each ``u``.
    """
    import scipy.sparse as sp

    n_in, n_out = A.shape
    At = np.ascontiguousarray(A.T)
    us_all = np.repeat(np.arange(n_in), np.diff(csr.indptr))
    S = np.zeros((n_in, n_out), dtype=np.float32)
    step = max(1, _CHUNK_ENTRIES // max(n_in, n_out))
    for start in range(0, csr.nnz, step):
        stop = min(csr.nnz, start + step)
        us, as_ = us_all[start:stop], csr.indices[start:stop]
        L = At[as_] * H[us]
        L[np.arange(us.size), us] = 0.0  # b = u is not a path
        M = L @ A
        M *= G[as_]
        u0 = us[0]
        rows = sp.csr_array((np.ones(us.size, np.float32), (us - u0, np.arange(us.size))),
                            shape=(us[-1] - u0 + 1, us.size))
        S[u0:us[-1] + 1] += rows @ M
    np.copyto(S, 0.0, where=Ab)
    return S


def _route(method: str, engine: str | None) -> str:
    """``method``, or the deprecated ``engine=`` spelling of it (with a warning)."""
    if engine is None:
        return check_choice(method, "method", METHODS)
    warnings.warn("engine= is deprecated; use method= (the same values: 'auto', 'numba', "
                  "'numpy')", DeprecationWarning, stacklevel=3)
    return check_choice(engine, "engine", METHODS)


def choose_engine(n_in: int, n_out: int, nnz: int) -> str:
    """The route ``method="auto"`` takes when the compiled walk is available: ``"numba"`` or
    ``"numpy"``.

    Walking costs ~ ``nnz d_in d_out`` steps, the grouped products ~ ``nnz n_in n_out``
    multiply-adds about 50x cheaper each: the products win above ~14 % density.

    >>> choose_engine(170, 170, int(0.99 * 170 * 170)), choose_engine(1024, 1024, 52429)
    ('numpy', 'numba')
    """
    density = nnz / max(1, n_in * n_out)
    return "numpy" if _NUMPY_OVER_NUMBA * density * density >= 1.0 else "numba"


def _walk_paths(csr, G: np.ndarray, H: np.ndarray) -> np.ndarray:
    """The path walk (:mod:`netshape.linkpred._l3p_walk`), on several threads when it is big."""
    csc = csr.T.tocsr()  # rows of the transpose: inputs of each output
    S = np.zeros(csr.shape, dtype=np.float32)
    d = max(1, csr.nnz // csr.shape[0])
    args = [np.asarray(x, dtype=np.int64) for x in (csr.indptr, csr.indices, csc.indptr,
                                                     csc.indices)]
    G, H = np.ascontiguousarray(G), np.ascontiguousarray(H)
    _l3p_walk.walk(*args, G, H, S, parallel=csr.nnz * d * d >= _kernels.PARALLEL_MIN_WORK)
    return S


def _path_scores(A: Any, ch2: bool, engine: str) -> Any:
    layer = as_layer(A)
    Ab = layer.host_dense()
    A32 = Ab.astype(np.float32)
    G, H = _weights(A32, ch2)
    n_in, n_out = layer.shape
    nnz = layer.csr.nnz
    if engine == "numba":
        _l3p_walk.require()
    auto = engine == "auto"
    if auto:
        engine = choose_engine(n_in, n_out, nnz) if _l3p_walk.available() else "numpy"
    S = None
    if engine == "numba":
        try:
            S = _walk_paths(layer.csr, G, H)
        except _l3p_walk.BuildError as exc:
            if not auto:
                raise
            warnings.warn(f"{exc}; using method='numpy'", RuntimeWarning, stacklevel=3)
    if S is None:
        S = _paths_numpy(layer.csr, Ab, A32, G, H)
    return to_family(S, layer)


def ch3_l3p(A: Any, *, method: str = "auto", engine: str | None = None) -> Any:
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
    method : {"auto", "numba", "numpy"}
        The computation route (scipy's ``method="auto"`` convention; the scores
        are the same). ``"numba"``: a compiled, thread-parallel kernel that walks the paths of
        each input (the ``fast`` extra: built with llvmlite in about 0.03 s; the name
        is kept from when it was numba code). ``"numpy"``: the pure-numpy fallback,
        dense products over chunks of links (cost ~ ``nnz * n_in * n_out``
        multiply-adds, but at BLAS speed). ``"auto"`` walks when the ``fast`` extra
        is installed and the density is below about 14 %, the products otherwise.
    engine : str, optional
        Deprecated spelling of ``method`` (a :class:`DeprecationWarning`).

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
    return _path_scores(A, ch2=False, engine=_route(method, engine))


def ch2_l3p(A: Any, *, method: str = "auto", engine: str | None = None) -> Any:
    r"""CH2-L3p: :func:`ch3_l3p` with each path also weighted by
    :math:`\sqrt{(1 + d_i^*(a))(1 + d_i^*(b))}`, :math:`d_i^*(a) = |N(a) \cap N(j)|`,
    :math:`d_i^*(b) = |N(b) \cap N(u)|`.

    Same parameters, orientation ``(n_in, n_out)``, support and return types as
    :func:`ch3_l3p`.

    >>> import numpy as np
    >>> float(ch2_l3p(np.array([[1, 1, 0], [0, 1, 1], [1, 0, 0]]))[0, 2])
    2.0
    """
    return _path_scores(A, ch2=True, engine=_route(method, engine))
