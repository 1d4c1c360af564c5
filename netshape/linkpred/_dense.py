"""Dense CH2-L3n / CH3-L3n: four matrix products in float32, row-tiled under a memory budget.

With ``C = A Aᵀ`` (input side) and ``C' = Aᵀ A`` (output side), the node
weights are ``F[u, v] = f(C[u, v], deg_in[v])`` and ``F'[j, k] = f(C'[j, k],
deg_out[k])`` (see :func:`netshape.linkpred._kernels.fill_xp`), and the scores
are ``S = F A + A F'ᵀ`` with the existing links set to 0. The diagonal of ``F``
needs no special care: ``F[u, u]`` only reaches ``S[u, j]`` through
``A[u, j] = 1``, an existing link that is zeroed at the end.

Counts are integers below 2**24, hence exact in float32.

On numpy with numba, ``C`` and ``C'`` come from a symmetric rank-k update
(BLAS ``ssyrk``, half the work of a general product) and the weights are filled
in place from the one triangle it writes; ``F A`` goes to the result buffer and
``A F'ᵀ`` is accumulated into it by ``sgemm`` with ``beta = 1``, so the whole
computation allocates the result, one square buffer per side, and a float32
copy of ``A``. Other backends (torch, CuPy, numpy without numba) run the same
products tile by tile.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from ._kernels import fill, fill_torch, fill_xp, numba_kernels

#: default working memory for the square intermediates, in bytes (1 GiB)
DEFAULT_BUDGET = 1 << 30

#: bytes per entry of a square tile: the float32 counts plus the fill temporaries
_TILE_BYTES_PER_ENTRY = 12


def tile_rows(n_side: int, budget: int) -> int:
    """Rows of an ``(rows, n_side)`` square-intermediate tile that fit ``budget`` bytes."""
    return max(1, min(n_side, int(budget) // (_TILE_BYTES_PER_ENTRY * n_side)))


def _tiled(A, S, deg_in, deg_out, ch3, budget, matmul, fill_fn):
    """``S <- F A + A F'ᵀ`` computing ``F`` and ``F'`` a block of rows at a time."""
    n_in, n_out = A.shape
    At = A.T
    step = tile_rows(n_in, budget)
    for r0 in range(0, n_in, step):
        r1 = min(n_in, r0 + step)
        CR = matmul(A[r0:r1], At)  # full blocks use syrk inside numpy (same buffer, transposed)
        fill_fn(CR, deg_in, ch3)
        matmul(CR, A, out=S[r0:r1])
        del CR
    step = tile_rows(n_out, budget)
    for c0 in range(0, n_out, step):
        c1 = min(n_out, c0 + step)
        CJ = matmul(At[c0:c1], A)
        fill_fn(CJ, deg_out, ch3)
        S[:, c0:c1] += matmul(A, CJ.T)
        del CJ


def _syrk_numpy(A, S, deg_in, deg_out, ch3, kernels) -> None:
    from scipy.linalg.blas import sgemm, ssyrk

    sym_fill = kernels[0]
    # A.T is Fortran-ordered, so BLAS reads A without a copy.
    # trans=1: C = A Aᵀ; the result is Fortran with its upper triangle set, i.e. its
    # C-ordered transpose holds the lower triangle, which sym_fill expects.
    C = ssyrk(1.0, A.T, trans=1).T
    sym_fill(C, deg_in, ch3)
    np.matmul(C, A, out=S)
    del C
    C2 = ssyrk(1.0, A.T, trans=0).T  # Aᵀ A
    sym_fill(C2, deg_out, ch3)
    # Sᵀ <- F' Aᵀ + Sᵀ, in Fortran terms on the transposed views: no temporary
    out = sgemm(1.0, C2.T, A.T, beta=1.0, c=S.T, trans_a=1, overwrite_c=1)
    if not np.shares_memory(out, S):  # pragma: no cover - BLAS wrapper copied c
        S[...] = out.T


def dense_numpy(Ab: np.ndarray, *, ch3: bool = False, budget: int = DEFAULT_BUDGET) -> np.ndarray:
    """Dense scores for a boolean numpy layer; float32 ``(n_in, n_out)``."""
    A = Ab.astype(np.float32)
    n_in, n_out = A.shape
    deg_in = A.sum(axis=1, dtype=np.float32)
    deg_out = A.sum(axis=0, dtype=np.float32)
    S = np.empty((n_in, n_out), dtype=np.float32)
    kernels = numba_kernels()
    fits = tile_rows(n_in, budget) == n_in and tile_rows(n_out, budget) == n_out
    if kernels is not None and fits and min(n_in, n_out) > 1:
        _syrk_numpy(A, S, deg_in, deg_out, ch3, kernels)
    else:
        _tiled(A, S, deg_in, deg_out, ch3, budget, np.matmul, fill)
    np.copyto(S, 0.0, where=Ab)
    return S


def dense_xp(xp: Any, Ab: Any, *, ch3: bool = False, budget: int = DEFAULT_BUDGET) -> Any:
    """Dense scores with any numpy-compatible namespace (CuPy, or numpy without numba)."""
    A = Ab.astype(xp.float32)
    deg_in = A.sum(axis=1, dtype=xp.float32)
    deg_out = A.sum(axis=0, dtype=xp.float32)
    S = xp.empty(A.shape, dtype=xp.float32)
    _tiled(A, S, deg_in, deg_out, ch3, budget, xp.matmul,
           lambda C, d, c3: fill_xp(xp, C, d, c3))
    S[Ab] = 0.0
    return S


def dense_torch(Ab: Any, *, ch3: bool = False, budget: int = DEFAULT_BUDGET) -> Any:
    """Dense scores for a boolean torch tensor, on its device; float32."""
    torch = sys.modules["torch"]
    A = Ab.to(torch.float32)
    deg_in = A.sum(dim=1)
    deg_out = A.sum(dim=0)
    S = torch.empty(A.shape, dtype=torch.float32, device=A.device)
    with torch.no_grad():
        _tiled(A, S, deg_in, deg_out, ch3, budget, torch.matmul, fill_torch)
        S.masked_fill_(Ab, 0.0)
    return S
