"""Sparse CH2-L3n / CH3-L3n: the same four products with scipy.sparse (or cupyx) matrices.

Work is proportional to the number of length-3 walks, not to ``n_in * n_out *
(n_in + n_out)``, which wins for ultra-sparse layers. The weights ``F`` only
live where ``C = A Aᵀ`` is nonzero, so ``f(0, d) = 0`` never has to be stored.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from . import _kernels, _twins

#: walk steps above which a call waits for the compiled kernel rather than run the twin
#: (the twin costs ~20-50 ns a step against ~2 ns compiled; building costs ~0.05 s)
TWIN_MAX_WORK = 1 << 21


def _weigh(C, deg_of_entry, ch3: bool, xp) -> None:
    """In place on a sparse count matrix: ``data <- f(data, deg_of_entry)``."""
    c = C.data
    den = xp.maximum(deg_of_entry - c, 1.0)
    C.data = (xp.ones_like(c) if ch3 else c + 1.0) / den


def _weights(C, deg, ch3: bool, xp) -> None:
    """In place on a sparse count matrix: ``data <- f(data, deg[column])``."""
    _weigh(C, deg[C.indices], ch3, xp)


def sparse_scores(A: Any, *, ch3: bool = False, spx: Any = sp, xp: Any = np) -> Any:
    """Scores as a float32 CSR matrix of ``spx`` with no entries on existing links.

    ``A`` is a sparse matrix of ``spx`` (scipy.sparse or cupyx.scipy.sparse)
    with only links stored; ``xp`` is the matching dense namespace.
    """
    A = spx.csr_matrix(A, dtype=xp.float32)
    A.data[:] = 1.0
    deg_in = xp.asarray(A.sum(axis=1)).ravel().astype(xp.float32)
    deg_out = xp.asarray(A.sum(axis=0)).ravel().astype(xp.float32)
    At = A.T.tocsr()
    C = (A @ At).tocsr()
    _weights(C, deg_in, ch3, xp)
    S = C @ A
    del C
    C2 = (At @ A).tocsr()
    _weights(C2, deg_out, ch3, xp)
    S = (S + A @ C2.T).tocsr()
    # zero the existing links exactly (x - x*1 == 0 in floating point) and drop them
    S = (S - S.multiply(A)).tocsr()
    S.eliminate_zeros()
    S.sort_indices()
    return S.astype(xp.float32)


def sparse_numpy(csr: sp.csr_array, *, ch3: bool = False) -> sp.csr_array:
    """Host sparse path: scipy ``csr_array`` of float32 scores."""
    return sp.csr_array(sparse_scores(csr, ch3=ch3))


def sparse_to_dense(csr: sp.csr_array, *, ch3: bool = False) -> np.ndarray:
    """Host sparse path with a dense float32 result.

    With the compiled kernels, the walks are accumulated straight into the dense
    rows of the result (one task per input row), which skips building a sparse
    result whose size, not the arithmetic, dominates scipy's cost; without them it
    densifies :func:`sparse_numpy`. Until the kernel is built (see
    :mod:`netshape.linkpred._jit`) small layers run its numpy twin, which sums
    the same terms in the same order: identical results.
    """
    if not _kernels.compiled_available():
        return sparse_numpy(csr, ch3=ch3).toarray()
    A = sp.csr_matrix(csr, dtype=np.float32)
    A.data[:] = 1.0
    deg_in = np.diff(A.indptr).astype(np.float32)
    At = A.T.tocsr()
    deg_out = np.diff(At.indptr).astype(np.float32)
    F = (A @ At).tocsr()
    _weights(F, deg_in, ch3, np)
    # G[k, j] = F'[j, k] = f(C'[k, j], deg_out[k]): C' is symmetric, so weigh its rows
    G = (At @ A).tocsr()
    rows = np.repeat(np.arange(G.shape[0]), np.diff(G.indptr))
    _weigh(G, deg_out[rows], ch3, np)
    S = np.zeros(A.shape, dtype=np.float32)
    work = F.nnz * max(1, A.nnz // A.shape[0]) + A.nnz
    args = [np.asarray(x, dtype=np.int64) for x in (A.indptr, A.indices, F.indptr, F.indices)]
    args += [F.data.astype(np.float32, copy=False)]
    args += [np.asarray(x, dtype=np.int64) for x in (G.indptr, G.indices)]
    args += [G.data.astype(np.float32, copy=False), S]
    walk = _kernels.pick("l3n", work)
    if walk is None and work > TWIN_MAX_WORK:
        walk = _kernels.compiled_for("l3n", work)  # too big for the twin: worth the build
    (_twins.l3n_walks if walk is None else walk)(*args)
    return S
