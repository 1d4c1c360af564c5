"""Dense CH2-L3n / CH3-L3n: four matrix products in float32, row-tiled under a memory budget.

With ``C = A Aᵀ`` (input side) and ``C' = Aᵀ A`` (output side), the node
weights are ``F[u, v] = f(C[u, v], deg_in[v])`` and ``F'[j, k] = f(C'[j, k],
deg_out[k])`` (see :func:`netshape.linkpred._kernels.fill_xp`), and the scores
are ``S = F A + A F'ᵀ`` with the existing links set to 0. The diagonal of ``F``
needs no special care: ``F[u, u]`` only reaches ``S[u, j]`` through
``A[u, j] = 1``, an existing link that is zeroed at the end.

Counts are integers below 2**24, hence exact in float32.

``C`` and ``C'`` are products of a matrix with its own transpose, which numpy
hands to BLAS as a symmetric rank-k update (``ssyrk``, half the work of a
general product); the weights are filled in place (compiled kernel, or ufuncs with
``out=``); ``F A`` is written straight into the result and ``A F'ᵀ`` is
accumulated into it a block of rows at a time. The whole computation holds the
result, one square buffer at a time and a float32 copy of ``A``. (scipy's own
``ssyrk`` was slower here: scipy ships a second OpenBLAS whose thread pool
fights numpy's.) torch and CuPy run the same tiled products on their device.

With the compiled kernels (llvmlite, the ``fast`` extra) and when everything
fits the budget, the numpy path takes a shorter road, :func:`_bitgram_numpy`.
``A`` is binary, so ``C`` and ``C'`` are Gram matrices of bit vectors: with the rows packed 64 to a
word, ``C[u, v] = popcount(a_u & a_v)`` summed over ``n_out / 64`` words, each
pair counted once for both triangles, and the weights written as the counts
come out. That costs about 0.1-0.25 of one float32 product where OpenBLAS's
``ssyrk`` takes 0.6-0.9, and stays exact. Both halves then go through one
BLAS product, ``S = [F | A] @ [A ; F'ᵀ]`` — ``F'ᵀ`` needs no transpose because
``C'`` is symmetric: ``F'ᵀ[k, j] = f(C'[k, j], deg_out[k])``.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from . import _kernels as _k
from ._kernels import fill, fill_torch, fill_xp, pack_rows

#: default working memory for the square intermediates, in bytes (1 GiB)
DEFAULT_BUDGET = 1 << 30

#: fewest rows of A per product when accumulating A F'ᵀ into the result
_ACC_ROWS = 512

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
        FT = CJ.T
        # accumulate A F'ᵀ in as few products as the budget allows (one when it fits):
        # a product per 512 rows cost 25 % more than one product on 2048²
        rows = max(_ACC_ROWS, int(budget) // (4 * (c1 - c0)))
        for r0 in range(0, n_in, rows):
            S[r0:r0 + rows, c0:c1] += matmul(A[r0:r0 + rows], FT)
        del CJ, FT


def bitgram_bytes(n_in: int, n_out: int) -> int:
    """Working bytes of :func:`_bitgram_numpy`: ``[F | A]`` and ``[A ; F'ᵀ]`` in float32."""
    return 4 * (n_in * n_in + n_out * n_out + 2 * n_in * n_out)


def _counts_compiled(Ab: np.ndarray):
    """The compiled kernels of the bit-packed counts if all are ready now, else None."""
    n_in, n_out = Ab.shape
    words_in, words_out = -(-n_out // 64), -(-n_in // 64)
    gram_big = max(n_in * n_in * words_in, n_out * n_out * words_out) // 2
    picked = (_k.pick("pack_columns", n_in * n_out), _k.pick("row_popcounts", 0),
              _k.pick("gram", gram_big, _k.GRAM_PARALLEL_MIN_WORK))
    return None if any(p is None for p in picked) else picked


def _bitgram_numpy(Ab: np.ndarray, ch3: bool) -> np.ndarray:
    """``S = [F | A] @ [A ; F'ᵀ]`` with ``F`` and ``F'ᵀ`` from exact common-neighbour counts.

    The counts come from the popcount kernels once they are compiled, from two
    float32 BLAS products before (exact integers either way, weighed by the same
    float32 formula), so the final product sees identical operands.
    """
    n_in, n_out = Ab.shape
    X = np.empty((n_in, n_in + n_out), dtype=np.float32)
    Y = np.empty((n_in + n_out, n_out), dtype=np.float32)
    np.copyto(X[:, n_in:], Ab)
    np.copyto(Y[:n_in], Ab)
    kernels = _counts_compiled(Ab)
    if kernels is not None:
        pack_cols, popcounts, gram = kernels
        rows = pack_rows(Ab)
        cols = _k.pack_columns(Ab, pack_cols)
        for B, out, by_column in ((rows, X[:, :n_in], True), (cols, Y[n_in:], False)):
            g = _k.pick("gram", _k.gram_work(B), _k.GRAM_PARALLEL_MIN_WORK)
            _k.gram_weights(B, _k.row_popcounts(B, popcounts), out, by_column, ch3,
                            gram if g is None else g)
    else:
        A = Y[:n_in]  # the float32 copy of A, already in place
        deg_in = A.sum(axis=1, dtype=np.float32)
        deg_out = A.sum(axis=0, dtype=np.float32)
        X[:, :n_in] = fill_xp(np, np.matmul(A, A.T), deg_in, ch3)
        # F'ᵀ[k, j] = f(C'[k, j], deg_out[k]) = (fill by column of the symmetric C')ᵀ
        Y[n_in:] = fill_xp(np, np.matmul(A.T, A), deg_out, ch3).T
    return np.matmul(X, Y)


def bitgram_ready(n_in: int, n_out: int, budget: int) -> bool:
    """Whether :func:`dense_numpy` takes the bit-packed route (compiled kernels, within budget)."""
    return _k.compiled_available() and bitgram_bytes(n_in, n_out) <= budget


def dense_numpy(Ab: np.ndarray, *, ch3: bool = False, budget: int = DEFAULT_BUDGET) -> np.ndarray:
    """Dense scores for a boolean numpy layer; float32 ``(n_in, n_out)``."""
    if bitgram_ready(*Ab.shape, budget):
        S = _bitgram_numpy(np.ascontiguousarray(Ab, dtype=bool), ch3)
        np.copyto(S, 0.0, where=Ab)
        return S
    A = Ab.astype(np.float32)
    n_in, n_out = A.shape
    deg_in = A.sum(axis=1, dtype=np.float32)
    deg_out = A.sum(axis=0, dtype=np.float32)
    S = np.empty((n_in, n_out), dtype=np.float32)
    _tiled(A, S, deg_in, deg_out, ch3, budget, np.matmul, fill)
    np.copyto(S, 0.0, where=Ab)
    return S


def dense_xp(xp: Any, Ab: Any, *, ch3: bool = False, budget: int = DEFAULT_BUDGET) -> Any:
    """Dense scores with any numpy-compatible namespace (CuPy, or numpy without kernels)."""
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
