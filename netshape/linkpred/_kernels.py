"""Elementwise kernels shared by the link predictors: compiled when llvmlite is present.

llvmlite is the optional ``fast`` extra. Every kernel here has a pure array-API
fallback written with ufuncs and ``out=`` (which numpy and CuPy both accept),
so the compiled kernels are an acceleration, never a requirement. Set the
environment variable ``NETSHAPE_NO_COMPILE=1`` (or ``_kernels.USE_COMPILED = False``)
to force the fallback; the test suite runs both.

Each kernel is LLVM IR (:mod:`netshape.linkpred._native`) built once per process,
serially, in a few hundredths of a second; its parallel variant runs that same
code on chunks of the outer loop in several threads
(:class:`~netshape.linkpred._threads.Ranged`). :func:`pick` never waits: it
returns a variant that is built already or None, scheduling the build in the
background (:mod:`netshape.linkpred._jit`); callers run a bit-identical numpy
twin meanwhile. The ``ch3_l3p`` path walk is built the same way
(:mod:`netshape.linkpred._l3p_walk`).
"""

from __future__ import annotations

import os

import numpy as np

from .. import _llvm
from . import _jit, _native
from ._threads import Ranged, threads

#: switched off by NETSHAPE_NO_COMPILE=1 or by tests that exercise the fallback
USE_COMPILED = os.environ.get("NETSHAPE_NO_COMPILE", "") in ("", "0")


#: below this much work (entries or walk steps) a kernel runs on one thread: waking a
#: thread pool costs more than it saves, and on a busy machine much more
PARALLEL_MIN_WORK = 1 << 20


#: rows per task of the bit-packed Gram kernel (their packed rows stay in L1)
_GRAM_BLOCK = 32

#: the Gram kernel runs on one thread below this many word operations. It usually
#: follows BLAS work, and OpenBLAS's idle threads spin for ~0.1 s after each call: on
#: 2 cores a parallel kernel then waits for a descheduled thread (512 x 512 took 6.5 ms
#: parallel against 1.2 ms serial right after a product, 0.5 ms parallel when idle)
GRAM_PARALLEL_MIN_WORK = 1 << 24


def pack_rows(Ab: np.ndarray) -> np.ndarray:
    """Rows of a boolean matrix as bits in uint64 words, zero-padded: ``(n, ceil(m/64))``.

    Bit ``r`` of word ``w`` in row ``u`` is ``Ab[u, 64 w + r]``, so
    ``popcount(P[u] & P[v])`` summed over words is ``|N(u) ∩ N(v)|``.
    """
    n, m = Ab.shape
    words = max(1, -(-m // 64))
    P = np.zeros((n, 8 * words), dtype=np.uint8)
    P[:, : -(-m // 8)] = np.packbits(Ab, axis=1, bitorder="little")
    return P.view(np.uint64)


#: length of each kernel's outer loop, from the arguments a caller passes
_EXTENTS = {
    "fill": lambda X, *_: X.shape[0],
    "gram": lambda B, deg, out, by_column, ch3, block: -(-B.shape[0] // block),
    "pack_columns": lambda Ab, P: P.shape[1],
    "row_popcounts": lambda B, out: B.shape[0],
    "l3n": lambda indptr, *_: indptr.size - 1,
}


def build(name: str, parallel: bool):
    """Build one kernel with llvmlite (:mod:`netshape.linkpred._native`); ``parallel``: its
    threaded run.

    Both variants run the same serial machine code (the parallel one splits the
    outer loop over threads, see :class:`~netshape.linkpred._threads.Ranged`), so
    the parallel variant costs no build of its own.
    """
    if parallel:
        return Ranged(_jit.compiled(name, False).kernel, _EXTENTS[name], threads())
    return Ranged(_native.kernel(name), _EXTENTS[name], 1)


_jit.set_builder(build)


def compiled_available() -> bool:
    """Whether the compiled kernels can be used (llvmlite installed, not disabled); no import."""
    return USE_COMPILED and _llvm.installed()


def pick(name: str, work: int, threshold: int = PARALLEL_MIN_WORK):
    """The compiled kernel for ``work`` if it is ready now (never waits), else None.

    Thread-parallel at or above ``threshold`` work, serial below; a serial
    variant stands in for a parallel one still compiling (same results).
    """
    if not compiled_available():
        return None
    parallel = work >= threshold
    kernel = _jit.pick(name, parallel)
    if kernel is not None and parallel:
        kernel = _jit.compiled(name, True)  # no wait: it only wraps the serial code
    return kernel


def compiled_for(name: str, work: int, threshold: int = PARALLEL_MIN_WORK):
    """The compiled kernel for ``work``, compiling the serial variant here if none is ready.

    For calls big enough that waiting for the compiler beats running a twin.
    """
    kernel = pick(name, work, threshold)
    if kernel is None:
        _jit.compiled(name, False)
        kernel = _jit.compiled(name, work >= threshold)
    return kernel


class _Pair:
    """``pair[0]`` the thread-parallel variant, ``pair[1]`` the serial one (compiled on access)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __getitem__(self, i: int):
        return _jit.compiled(self.name, i == 0)


class _Kernels:
    """The compiled kernels, each variant compiled (or loaded) in this thread on first use."""

    _gram = _Pair("gram")
    _fill = _Pair("fill")
    _l3n = _Pair("l3n")
    _pack_columns = _Pair("pack_columns")

    @staticmethod
    def _pick(pair, work, threshold=PARALLEL_MIN_WORK):
        return pair[0] if work >= threshold else pair[1]

    def full_fill(self, X, deg, ch3):
        self._pick(self._fill, X.size)(X, deg, ch3)

    def l3n_walks(self, work, *args):
        self._pick(self._l3n, work)(*args)

    def pack_columns(self, Ab: np.ndarray) -> np.ndarray:
        """Columns of a boolean matrix as bit-packed rows: ``pack_rows(Ab.T)``, faster."""
        return pack_columns(Ab, self._pick(self._pack_columns, Ab.size))

    def row_popcounts(self, B: np.ndarray) -> np.ndarray:
        """Set bits per row of a bit-packed matrix (the degrees), as float32."""
        return row_popcounts(B, _jit.compiled("row_popcounts", False))

    def gram_weights(self, B, deg, out, by_column, ch3):
        """``out <- f(B Bᵀ, deg)`` from bit-packed rows ``B`` (see :func:`pack_rows`)."""
        gram_weights(B, deg, out, by_column, ch3,
                     self._pick(self._gram, gram_work(B), GRAM_PARALLEL_MIN_WORK))


def pack_columns(Ab: np.ndarray, kernel) -> np.ndarray:
    """``pack_rows(Ab.T)`` through a compiled ``pack_columns`` variant."""
    n, m = Ab.shape
    P = np.empty((m, max(1, -(-n // 64))), dtype=np.uint64)  # every word is written
    kernel(np.ascontiguousarray(Ab, dtype=bool), P)
    return P


def row_popcounts(B: np.ndarray, kernel) -> np.ndarray:
    """Set bits per row of a bit-packed matrix, float32, through the compiled kernel."""
    out = np.empty(B.shape[0], dtype=np.float32)
    kernel(B, out)
    return out


def gram_work(B: np.ndarray) -> int:
    """Word operations of the Gram kernel on bit-packed rows ``B``."""
    return B.shape[0] * B.shape[0] * B.shape[1] // 2


def gram_weights(B, deg, out, by_column, ch3, kernel) -> None:
    """``out <- f(B Bᵀ, deg)`` through a compiled ``gram`` variant."""
    kernel(B, np.ascontiguousarray(deg, dtype=np.float32), out, bool(by_column), bool(ch3),
           _GRAM_BLOCK)


def compiled_kernels() -> _Kernels | None:
    """The compiled kernels (compiled here when first used), or None without llvmlite."""
    if not compiled_available():
        return None
    return _Kernels()


def fill_xp(xp, C, deg, ch3: bool):
    """In place: ``C[i, j] <- f(C[i, j], deg[j])`` with the CH node weight ``f``.

    ``f(c, d) = (1 + c) / max(1, d - c)`` for ``c > 0`` (``1 / max(1, d - c)``
    for CH3), and 0 where ``c = 0``. ``C`` holds exact integer counts in float32;
    ``xp`` is numpy or CuPy. One temporary of the size of ``C``.
    """
    T = xp.minimum(C, 1.0)  # [C > 0]: counts are non-negative integers
    if ch3:
        xp.subtract(deg[None, :], C, out=C)
        xp.maximum(C, 1.0, out=C)
        xp.divide(T, C, out=C)
        return C
    xp.add(C, T, out=C)  # numerator N = C + [C > 0]
    # denominator deg - C = deg + [C > 0] - N, computed without keeping C
    xp.add(T, deg[None, :], out=T)
    xp.subtract(T, C, out=T)
    xp.maximum(T, 1.0, out=T)
    xp.divide(C, T, out=C)
    return C


#: entries per block of the numpy fill (its temporary: 256 KiB of float32)
_FILL_BLOCK_ENTRIES = 1 << 16


def fill(C: np.ndarray, deg: np.ndarray, ch3: bool) -> np.ndarray:
    """Numpy ``fill_xp`` through the compiled kernel when it is built (identical results)."""
    kernel = pick("fill", C.size) if C.flags.c_contiguous and C.dtype == np.float32 else None
    if kernel is not None:
        kernel(C, np.ascontiguousarray(deg, dtype=np.float32), bool(ch3))
        return C
    # blocks of rows keep fill_xp's temporary small, as the in-place kernel needs none
    step = max(1, _FILL_BLOCK_ENTRIES // max(1, C.shape[1]))
    for r0 in range(0, C.shape[0], step):
        fill_xp(np, C[r0:r0 + step], deg, ch3)
    return C


def fill_torch(C, deg, ch3: bool):
    """Torch twin of :func:`fill_xp` (in place on ``C``, same device)."""
    mask = C > 0
    den = deg.unsqueeze(0) - C
    den.clamp_(min=1.0)
    if ch3:
        C.copy_(mask)
    else:
        C.add_(1.0).mul_(mask)
    C.div_(den)
    return C
