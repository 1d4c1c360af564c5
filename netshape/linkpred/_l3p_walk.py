"""The CH-L3p path walk as machine code built with llvmlite, ready in milliseconds.

Like the other compiled kernels of :mod:`netshape.linkpred`
(:mod:`netshape.linkpred._native`), the walk is LLVM IR built by
:mod:`netshape._llvm`. Unlike them it has no fast numpy twin to run while it is
built (materialising its terms costs about 15x the walk), so it is built in the
calling thread on first use: about 0.03 s, plus about 0.06 s to import llvmlite.
The kernel is the loop of the definition,
for the input rows ``lo:hi``::

    for u in range(lo, hi):
        for p in range(indptr[u], indptr[u + 1]):          # first link u - a
            a = indices[p]
            for q in range(t_indptr[a], t_indptr[a + 1]):  # second link a - b
                b = t_indices[q]
                if b != u:
                    h = H[u, b]
                    for r in range(indptr[b], indptr[b + 1]):  # third link b - j
                        j = indices[r]
                        S[u, j] += G[a, j] * h
        S[u, indices[indptr[u]:indptr[u + 1]]] = 0       # existing links score 0

with IEEE float32 products and sums in exactly this order (no fused
multiply-add, no reassociation), so a plain Python loop over ``np.float32``
values gives the same bits. The call releases the GIL: rows run on several
threads (:class:`~netshape.linkpred._threads.Ranged`) with the same result.
"""

from __future__ import annotations

import ctypes
import threading

import numpy as np

from .. import _llvm
from . import _kernels
from ._threads import Ranged, threads

_lock = threading.Lock()
_built: list = []  # [the built module] once built
_failed: list[BaseException] = []  # the error of a build that failed: not tried again


class BuildError(ImportError):
    """llvmlite is installed but could not build the walk on this platform."""


def available() -> bool:
    """Whether the compiled walk can be used: llvmlite installed, compiled kernels not
    disabled, and no earlier build in this process failed."""
    return _kernels.USE_COMPILED and _llvm.installed() and not _failed


def require() -> None:
    """Raise the ImportError that says why the compiled walk cannot be used, if it cannot."""
    if _failed:
        raise BuildError(f"llvmlite could not build the CH-L3p walk: {_failed[0]}")
    if not available():
        raise ImportError("method='numba' needs llvmlite, which builds the walk; "
                          "install it with: pip install 'netshape[fast]'")


def _emit(module) -> None:
    """The walk as LLVM IR: ``l3p_walk(indptr, indices, t_indptr, t_indices, G, H, S,
    n_in, n_out, lo, hi)``, every array a pointer to C-contiguous data."""
    from llvmlite import ir

    i64, f32 = ir.IntType(64), ir.FloatType()
    p64, pf = i64.as_pointer(), f32.as_pointer()
    signature = ir.FunctionType(ir.VoidType(), [p64, p64, p64, p64, pf, pf, pf, i64, i64, i64,
                                                i64])
    fn = ir.Function(module, signature, name="l3p_walk")
    indptr, indices, t_indptr, t_indices, G, H, S, n_in, n_out, lo, hi = fn.args
    S.add_attribute("noalias")  # the caller's fresh output: no other argument points into it
    one = ir.Constant(i64, 1)

    def row(b, u):
        S_u = b.gep(S, [b.mul(u, n_out)], inbounds=True)
        H_u = b.gep(H, [b.mul(u, n_in)], inbounds=True)
        p0, p1 = _llvm.at(b, indptr, u), _llvm.at(b, indptr, b.add(u, one))

        def first_link(b, p):
            a = _llvm.at(b, indices, p)
            G_a = b.gep(G, [b.mul(a, n_out)], inbounds=True)

            def second_link(b, q):
                v = _llvm.at(b, t_indices, q)
                walk, skip = b.append_basic_block("walk"), b.append_basic_block("skip")
                b.cbranch(b.icmp_signed("!=", v, u), walk, skip)
                b.position_at_end(walk)
                h = _llvm.at(b, H_u, v)

                def third_link(b, r):
                    j = _llvm.at(b, indices, r)
                    s = b.gep(S_u, [j], inbounds=True)
                    b.store(b.fadd(b.load(s), b.fmul(_llvm.at(b, G_a, j), h)), s)

                _llvm.loop(b, _llvm.at(b, indptr, v), _llvm.at(b, indptr, b.add(v, one)),
                           third_link, "r")
                b.branch(skip)
                b.position_at_end(skip)

            _llvm.loop(b, _llvm.at(b, t_indptr, a), _llvm.at(b, t_indptr, b.add(a, one)),
                       second_link, "q")

        _llvm.loop(b, p0, p1, first_link, "p")

        def zero(b, p):
            b.store(ir.Constant(f32, 0.0), b.gep(S_u, [_llvm.at(b, indices, p)], inbounds=True))

        _llvm.loop(b, p0, p1, zero, "z")

    builder = ir.IRBuilder(fn.append_basic_block("entry"))
    _llvm.loop(builder, lo, hi, row, "u")
    builder.ret_void()


def _build():
    from llvmlite import ir

    module = ir.Module(name="netshape_l3p_walk")
    _emit(module)
    P, I = ctypes.c_void_p, ctypes.c_int64
    # the walk as written: LLVM's optimiser would not speed up its indirect loads
    return _llvm.build(module, {"l3p_walk": (P, P, P, P, P, P, P, I, I, I, I)},
                       optimise=False)


def kernel():
    """The compiled walk (built in this thread on the first call, then reused).

    Raises :class:`BuildError` if llvmlite cannot build it (then :func:`available`
    turns False, so ``method="auto"`` takes the numpy route from then on).
    """
    if not _built:
        with _lock:
            require()
            if not _built:
                try:
                    _built.append(_build())
                except Exception as exc:
                    _failed.append(exc)
                    raise BuildError(f"llvmlite could not build the CH-L3p walk: {exc}") \
                        from exc
    return _built[0]["l3p_walk"]


def _check(indptr, indices, t_indptr, t_indices, G, H, S) -> tuple[int, int]:
    """Refuse arrays the machine code would read or write out of bounds: ``(n_in, n_out)``."""
    n_in, n_out = S.shape
    for name, x in (("indptr", indptr), ("indices", indices), ("t_indptr", t_indptr),
                    ("t_indices", t_indices)):
        if x.dtype != np.int64 or x.ndim != 1 or not (x.flags.c_contiguous and x.flags.aligned):
            raise ValueError(f"{name} must be a contiguous, aligned 1-D int64 array")
    for name, x, shape in (("G", G, (n_out, n_out)), ("H", H, (n_in, n_in)),
                           ("S", S, (n_in, n_out))):
        if x.dtype != np.float32 or x.shape != shape or not (x.flags.c_contiguous
                                                               and x.flags.aligned):
            raise ValueError(f"{name} must be a C-contiguous, aligned float32 array of shape "
                             f"{shape}")
    if not S.flags.writeable:
        raise ValueError("S must be writeable")
    # the kernel reads every other argument while it writes S (declared noalias)
    for name, x in (("indptr", indptr), ("indices", indices), ("t_indptr", t_indptr),
                    ("t_indices", t_indices), ("G", G), ("H", H)):
        if np.may_share_memory(S, x):
            raise ValueError(f"S must not share memory with {name}")
    for name, ptr, idx, size, bound in (("indptr", indptr, indices, n_in, n_out),
                                        ("t_indptr", t_indptr, t_indices, n_out, n_in)):
        # compared, not differenced: a difference of extreme values wraps around
        if ptr.size != size + 1 or ptr[0] != 0 or np.any(ptr[1:] < ptr[:-1]):
            raise ValueError(f"{name} must be a CSR row pointer of {size} rows")
        nnz = int(ptr[-1])
        if idx.size < nnz or (nnz and not 0 <= idx[:nnz].min() <= idx[:nnz].max() < bound):
            raise ValueError(f"the indices of {name} must lie in [0, {bound})")
    return n_in, n_out


def raw_args(indptr, indices, t_indptr, t_indices, G, H, S) -> tuple:
    """The kernel's arguments before ``lo, hi``: array addresses and ``n_in, n_out`` (checked)."""
    n_in, n_out = _check(indptr, indices, t_indptr, t_indices, G, H, S)
    return (*(x.ctypes.data for x in (indptr, indices, t_indptr, t_indices, G, H, S)),
            n_in, n_out)


def walk(indptr, indices, t_indptr, t_indices, G, H, S, parallel: bool) -> None:
    """``S[u, j] += G[a, j] H[u, b]`` over every path ``u - a - b - j``; then 0 on the links.

    ``indptr, indices``: the layer's CSR (inputs x outputs), ``t_*`` that of its
    transpose; ``S`` zeroed by the caller. ``parallel``: rows on
    :func:`~netshape.linkpred._threads.threads` threads, bit-identical to one thread.
    """
    args = raw_args(indptr, indices, t_indptr, t_indices, G, H, S)
    Ranged(kernel(), lambda *a: a[7], threads() if parallel else 1)(*args)
