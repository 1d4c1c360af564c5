"""Kernels of a sparse ``nn.Linear``: ``y = x Wᵀ + b`` with ``W`` stored as CSR links.

A layer of shape ``(out, in)`` keeps ``nnz`` values in row-major (CSR) order:
link ``k`` joins input ``col[k]`` to output ``row[k]``, rows ``o`` span
``rowptr[o]:rowptr[o + 1]``.

CPU (compiled with llvmlite, the ``fast`` extra)
    The batch runs in the innermost loop. Inputs and output gradients are
    used transposed, ``xᵀ`` of shape ``(in, B)`` and ``gᵀ`` of shape
    ``(out, B)``, so each link does one contiguous AXPY or dot product of
    length ``B``:

    .. math::

        y^T_{o,:} \\mathrel{+}= w_k\\, x^T_{c_k,:}, \\qquad
        \\nabla x^T_{c_k,:} \\mathrel{+}= w_k\\, g^T_{o,:}, \\qquad
        \\nabla w_k = \\langle g^T_{o,:}, x^T_{c_k,:} \\rangle.

    The loops are LLVM IR built by :mod:`netshape._llvm` (a few hundredths of
    a second per dtype, nothing cached on disk); the batch loops allow
    reassociation and fused multiply-add only, so LLVM vectorises them while NaN
    and inf propagate as in the dense product. The backward products are two
    passes over the links. The outputs are returned as transposed views, so a
    chain of sparse layers (with element-wise activations in between, which
    keep strides) never copies activations. Single-threaded: the input-gradient
    scatter has write conflicts between rows, and the kernels are memory-bound
    at the batch sizes of DST.
torch (CUDA tensors, or CPU without llvmlite)
    Gather/scatter with ``index_select`` and ``index_add_``; cost and
    temporary memory grow with ``B × nnz``.

All arithmetic is in float32 (float64 for float64 inputs); the callers cast.
"""

from __future__ import annotations

import ctypes
import functools
import os
import threading

import torch

from .. import _llvm

__all__ = ["backward", "forward", "has_compiled", "use_compiled"]

#: set NETSHAPE_SPARSE_NO_COMPILE=1 to force the pure-torch path (tests use it)
_ENV_NO_COMPILE = "NETSHAPE_SPARSE_NO_COMPILE"

#: the batch loops may be reassociated and contracted (vectorised sums, FMA); no
#: no-NaN/no-inf assumption, so NaN and inf propagate
_FAST = ("reassoc", "contract")


def _emit(module, ir, ft) -> None:
    """``forward``, ``grad_values`` and ``grad_inputs`` for one float type ``ft``."""
    i64 = ir.IntType(64)
    p64, pf = i64.as_pointer(), ft.as_pointer()
    zero, one = ir.Constant(i64, 0), ir.Constant(i64, 1)

    def function(name, n_arrays, written):
        fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [p64, p64] + [pf] * n_arrays
                                                 + [i64, i64]), name=name)
        for k in written:
            fn.args[k].add_attribute("noalias")  # a fresh output the caller allocated
        return fn, ir.IRBuilder(fn.append_basic_block("entry"))

    def links(b, rowptr, n_out, body):
        # for o in range(n_out): for k in range(rowptr[o], rowptr[o + 1]): body(b, o, k)
        _llvm.loop(b, zero, n_out, lambda b, o: _llvm.loop(
            b, _llvm.at(b, rowptr, o), _llvm.at(b, rowptr, b.add(o, one)),
            lambda b, k: body(b, o, k), "k"), "o")

    def axpy(b, dst, src, v, batch):  # dst[:] += v * src[:]
        def step(b, i):
            d = b.gep(dst, [i], inbounds=True)
            prod = _llvm.fast(b.fmul(v, _llvm.at(b, src, i)), *_FAST)
            b.store(_llvm.fast(b.fadd(b.load(d), prod), *_FAST), d)

        _llvm.loop(b, zero, batch, step, "b")

    # forward(rowptr, col, val, xt, yt, n_out, batch): yt[o] += val[k] xt[col[k]]
    fn, b = function("forward", 3, written=[4])
    rowptr, col, val, xt, yt, n_out, batch = fn.args
    links(b, rowptr, n_out, lambda b, o, k: axpy(
        b, b.gep(yt, [b.mul(o, batch)], inbounds=True),
        b.gep(xt, [b.mul(_llvm.at(b, col, k), batch)], inbounds=True), _llvm.at(b, val, k),
        batch))
    b.ret_void()

    # grad_values(rowptr, col, xt, gt, dval, n_out, batch): dval[k] = <gt[o], xt[col[k]]>
    fn, b = function("grad_values", 3, written=[4])
    rowptr, col, xt, gt, dval, n_out, batch = fn.args
    with b.goto_entry_block():
        acc = b.alloca(ft)

    def dot(b, o, k):
        g = b.gep(gt, [b.mul(o, batch)], inbounds=True)
        x = b.gep(xt, [b.mul(_llvm.at(b, col, k), batch)], inbounds=True)
        b.store(ir.Constant(ft, 0.0), acc)

        def step(b, i):
            prod = _llvm.fast(b.fmul(_llvm.at(b, g, i), _llvm.at(b, x, i)), *_FAST)
            b.store(_llvm.fast(b.fadd(b.load(acc), prod), *_FAST), acc)

        _llvm.loop(b, zero, batch, step, "b")
        b.store(b.load(acc), b.gep(dval, [k], inbounds=True))

    links(b, rowptr, n_out, dot)
    b.ret_void()

    # grad_inputs(rowptr, col, val, gt, dxt, n_out, batch): dxt[col[k]] += val[k] gt[o]
    fn, b = function("grad_inputs", 3, written=[4])
    rowptr, col, val, gt, dxt, n_out, batch = fn.args
    links(b, rowptr, n_out, lambda b, o, k: axpy(
        b, b.gep(dxt, [b.mul(_llvm.at(b, col, k), batch)], inbounds=True),
        b.gep(gt, [b.mul(o, batch)], inbounds=True), _llvm.at(b, val, k), batch))
    b.ret_void()


_built: dict = {}
_build_lock = threading.Lock()


def _compiled(dtype: torch.dtype):
    """The kernels of one dtype (float32 or float64), built once on first use.

    One build per dtype, so the dot products accumulate in the input's own
    precision (a float64 accumulator would halve the SIMD width), and a float32
    model never waits for float64 code.
    """
    kernels = _built.get(dtype)
    if kernels is None:
        with _build_lock:  # two threads' first calls: one builds, the other waits
            kernels = _built.get(dtype)
            if kernels is None:
                kernels = _built[dtype] = _build(dtype)
    return kernels


def _build(dtype: torch.dtype):
    from llvmlite import ir

    module = ir.Module(name=f"netshape_sparse_linear_{str(dtype).split('.')[-1]}")
    _emit(module, ir, ir.FloatType() if dtype == torch.float32 else ir.DoubleType())
    P, I = ctypes.c_void_p, ctypes.c_int64
    signature = (P, P, P, P, P, I, I)
    return _llvm.build(module, dict.fromkeys(("forward", "grad_values", "grad_inputs"),
                                             signature))


_DTYPES = (torch.float32, torch.float64)


@functools.cache
def has_compiled() -> bool:
    """True when llvmlite is installed (checked without importing it or building anything)."""
    return _llvm.installed()


def use_compiled(t: torch.Tensor) -> bool:
    """True when the compiled CPU kernels handle tensor ``t`` (else the torch path)."""
    return (t.device.type == "cpu" and os.environ.get(_ENV_NO_COMPILE, "") in ("", "0")
            and t.dtype in _DTYPES and has_compiled())


def _values(val: torch.Tensor, x2: torch.Tensor, rowptr: torch.Tensor, n_out: int
            ) -> torch.Tensor:
    """``val`` contiguous, checked against the input and the row pointer the kernels read."""
    if val.dtype != x2.dtype or val.dim() != 1 or rowptr.shape != (n_out + 1,) \
            or val.device != x2.device:
        raise ValueError(f"val must be 1-D {x2.dtype} on {x2.device} and rowptr of length "
                         f"{n_out + 1}, got {val.dtype} {tuple(val.shape)} on {val.device} and "
                         f"{tuple(rowptr.shape)}")
    return val.contiguous()


def _index(name: str, t: torch.Tensor) -> int:
    if t.dtype != torch.int64 or t.dim() != 1 or not t.is_contiguous() or t.device.type != "cpu":
        raise ValueError(f"{name} must be a contiguous 1-D int64 CPU tensor, got {t.dtype} "
                         f"of shape {tuple(t.shape)} on {t.device}")
    return t.data_ptr()


def forward(x2: torch.Tensor, val: torch.Tensor, rowptr: torch.Tensor, col: torch.Tensor,
            row: torch.Tensor, n_out: int) -> torch.Tensor:
    """``x2 @ Wᵀ`` for ``x2`` of shape ``(B, in)`` (float32/64, same dtype as ``val``)."""
    if use_compiled(x2):
        xt = x2.t().contiguous()  # no copy when x2 is itself a transposed view
        vals = _values(val, x2, rowptr, n_out)  # kept alive through the call
        yt = torch.zeros(n_out, x2.shape[0], dtype=x2.dtype)
        if x2.shape[0] and val.shape[0]:
            _compiled(x2.dtype)["forward"](
                _index("rowptr", rowptr), _index("col", col), vals.data_ptr(), xt.data_ptr(),
                yt.data_ptr(), n_out, x2.shape[0])
        return yt.t()
    prod = x2.index_select(1, col) * val
    return torch.zeros(x2.shape[0], n_out, dtype=x2.dtype, device=x2.device).index_add_(
        1, row, prod)


def backward(x2: torch.Tensor, g2: torch.Tensor, val: torch.Tensor, rowptr: torch.Tensor,
             col: torch.Tensor, row: torch.Tensor, want_x: bool, want_v: bool
             ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Gradients w.r.t. ``x2`` ``(B, in)`` and ``val`` ``(nnz,)`` from ``g2`` ``(B, out)``."""
    n_in = x2.shape[1]
    if use_compiled(x2):
        xt = x2.t().contiguous()
        gt = g2.t().contiguous()
        vals = _values(val, x2, rowptr, g2.shape[1])
        batch = x2.shape[0]
        if g2.dtype != x2.dtype or g2.shape[0] != batch or g2.device != x2.device:
            raise ValueError(f"the output gradient must be {x2.dtype} of batch {batch} on "
                             f"{x2.device}, got {g2.dtype} {tuple(g2.shape)} on {g2.device}")
        kernels = _compiled(x2.dtype)
        dx = dval = None
        if want_v:
            dval = torch.zeros(val.shape[0], dtype=x2.dtype)
            if batch:
                kernels["grad_values"](_index("rowptr", rowptr), _index("col", col),
                                       xt.data_ptr(), gt.data_ptr(), dval.data_ptr(),
                                       rowptr.shape[0] - 1, batch)
        if want_x:
            dxt = torch.zeros(n_in, batch, dtype=x2.dtype)
            if batch:
                kernels["grad_inputs"](_index("rowptr", rowptr), _index("col", col),
                                       vals.data_ptr(), gt.data_ptr(),
                                       dxt.data_ptr(), rowptr.shape[0] - 1, batch)
            dx = dxt.t()
        return dx, dval
    gr = g2.index_select(1, row)
    dval = (gr * x2.index_select(1, col)).sum(0) if want_v else None
    dx = None
    if want_x:
        dx = torch.zeros(x2.shape[0], n_in, dtype=x2.dtype, device=x2.device).index_add_(
            1, col, gr * val)
    return dx, dval
