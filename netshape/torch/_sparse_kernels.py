"""Kernels of a sparse ``nn.Linear``: ``y = x Wᵀ + b`` with ``W`` stored as CSR links.

A layer of shape ``(out, in)`` keeps ``nnz`` values in row-major (CSR) order:
link ``k`` joins input ``col[k]`` to output ``row[k]``, rows ``o`` span
``rowptr[o]:rowptr[o + 1]``.

CPU (numba)
    The batch runs in the innermost loop. Inputs and output gradients are
    used transposed, ``xᵀ`` of shape ``(in, B)`` and ``gᵀ`` of shape
    ``(out, B)``, so each link does one contiguous AXPY or dot product of
    length ``B``:

    .. math::

        y^T_{o,:} \\mathrel{+}= w_k\\, x^T_{c_k,:}, \\qquad
        \\nabla x^T_{c_k,:} \\mathrel{+}= w_k\\, g^T_{o,:}, \\qquad
        \\nabla w_k = \\langle g^T_{o,:}, x^T_{c_k,:} \\rangle.

    The backward products are two passes over the links, each a branch-free
    loop that LLVM vectorises over the batch. The outputs are returned as transposed views, so a
    chain of sparse layers (with element-wise activations in between, which
    keep strides) never copies activations. Single-threaded (``parallel=False``):
    the input-gradient scatter has write conflicts between rows, and the
    kernels are memory-bound at the batch sizes of DST.
torch (CUDA tensors, or CPU without numba)
    Gather/scatter with ``index_select`` and ``index_add_``; cost and
    temporary memory grow with ``B × nnz``.

All arithmetic is in float32 (float64 for float64 inputs); the callers cast.
"""

from __future__ import annotations

import functools
import os

import torch

__all__ = ["backward", "forward", "has_numba", "use_numba"]

#: set NETSHAPE_SPARSE_NO_NUMBA=1 to force the pure-torch path (tests use it)
_ENV_NO_NUMBA = "NETSHAPE_SPARSE_NO_NUMBA"


@functools.cache
def _numba_kernels(np_t) -> tuple | None:
    """Compile (or load from cache) the numba kernels of one dtype; None without numba.

    Returns ``(fwd, bwd, zero)`` for ``np_t`` (numpy float32 or float64): one
    specialisation per dtype, so the dot products accumulate in the input's
    own precision (a float64 accumulator would halve the SIMD width). Each dtype
    is compiled when first used: a float32 model never waits for float64 code.
    """
    try:
        import numba as nb
    except ImportError:
        return None

    # reassociation and FMA contraction only (vectorised sums): no no-NaN/no-inf assumptions,
    # so NaN and inf propagate as in the dense product
    jit = functools.partial(nb.njit, cache=True, fastmath={"reassoc", "contract"}, nogil=True,
                            boundscheck=False)
    nb_t = nb.from_dtype(np_t)
    idx, vec, mat = nb.int64[::1], nb_t[::1], nb_t[:, ::1]
    return (jit(nb.void(idx, idx, vec, mat, mat))(_fwd_py),
            jit(nb.void(idx, idx, vec, mat, mat, mat, vec, nb.boolean, nb.boolean, nb_t))(_bwd_py),
            np_t(0))


def _fwd_py(rowptr, col, val, xt, yt):  # pragma: no cover - compiled by numba
    batch = xt.shape[1]
    for o in range(rowptr.shape[0] - 1):
        for k in range(rowptr[o], rowptr[o + 1]):
            v = val[k]
            c = col[k]
            for b in range(batch):
                yt[o, b] += v * xt[c, b]


def _bwd_py(rowptr, col, val, xt, gt, dxt, dval, want_x, want_v, zero):  # pragma: no cover
    batch = xt.shape[1]
    if want_v:
        for o in range(rowptr.shape[0] - 1):
            for k in range(rowptr[o], rowptr[o + 1]):
                c = col[k]
                s = zero
                for b in range(batch):
                    s += gt[o, b] * xt[c, b]
                dval[k] = s
    if want_x:
        for o in range(rowptr.shape[0] - 1):
            for k in range(rowptr[o], rowptr[o + 1]):
                v = val[k]
                c = col[k]
                for b in range(batch):
                    dxt[c, b] += v * gt[o, b]


def _np_dtypes() -> dict:
    import numpy as np

    return {torch.float32: np.float32, torch.float64: np.float64}


_NP = _np_dtypes()


@functools.cache
def has_numba() -> bool:
    """True when numba is installed (checked without importing it or compiling anything)."""
    import importlib.util

    return importlib.util.find_spec("numba") is not None


def use_numba(t: torch.Tensor) -> bool:
    """True when the CPU numba kernels handle tensor ``t`` (else the torch path).

    Compiles (or loads) the kernels of ``t``'s dtype on the first call for it.
    """
    return (t.device.type == "cpu" and os.environ.get(_ENV_NO_NUMBA, "") in ("", "0")
            and t.dtype in _NP and has_numba() and _numba_kernels(_NP[t.dtype]) is not None)


def forward(x2: torch.Tensor, val: torch.Tensor, rowptr: torch.Tensor, col: torch.Tensor,
            row: torch.Tensor, n_out: int) -> torch.Tensor:
    """``x2 @ Wᵀ`` for ``x2`` of shape ``(B, in)`` (float32/64, same dtype as ``val``)."""
    if use_numba(x2):
        xt = x2.t().contiguous()  # no copy when x2 is itself a transposed view
        yt = torch.zeros(n_out, x2.shape[0], dtype=x2.dtype)
        fwd = _numba_kernels(_NP[x2.dtype])[0]
        fwd(rowptr.numpy(), col.numpy(), val.numpy(), xt.numpy(), yt.numpy())
        return yt.t()
    prod = x2.index_select(1, col) * val
    return torch.zeros(x2.shape[0], n_out, dtype=x2.dtype, device=x2.device).index_add_(
        1, row, prod)


def backward(x2: torch.Tensor, g2: torch.Tensor, val: torch.Tensor, rowptr: torch.Tensor,
             col: torch.Tensor, row: torch.Tensor, want_x: bool, want_v: bool
             ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Gradients w.r.t. ``x2`` ``(B, in)`` and ``val`` ``(nnz,)`` from ``g2`` ``(B, out)``."""
    n_in = x2.shape[1]
    if use_numba(x2):
        xt = x2.t().contiguous()
        gt = g2.t().contiguous()
        dxt = torch.zeros(n_in if want_x else 0, x2.shape[0], dtype=x2.dtype)
        dval = torch.empty(val.shape[0] if want_v else 0, dtype=x2.dtype)
        _, bwd, zero = _numba_kernels(_NP[x2.dtype])
        bwd(rowptr.numpy(), col.numpy(), val.numpy(), xt.numpy(), gt.numpy(), dxt.numpy(),
            dval.numpy(), want_x, want_v, zero)
        return (dxt.t() if want_x else None), (dval if want_v else None)
    gr = g2.index_select(1, row)
    dval = (gr * x2.index_select(1, col)).sum(0) if want_v else None
    dx = None
    if want_x:
        dx = torch.zeros(x2.shape[0], n_in, dtype=x2.dtype, device=x2.device).index_add_(
            1, col, gr * val)
    return dx, dval
