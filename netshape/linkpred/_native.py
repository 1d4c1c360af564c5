"""The node-based link predictors' loops as LLVM IR (built by :mod:`netshape._llvm`).

Each kernel is the loop written beside it in :mod:`netshape.linkpred._kernels`
(``_full_fill``, ``_gram_weights``, ``_pack_columns``, ``_row_popcounts``,
``_l3n_walks``: the definitions its tests compare against), with IEEE float32
arithmetic in the same order, so it returns the same bits as those loops and
as the numpy twins. Every kernel ends in ``lo, hi``, the part of its outer loop
it runs, and is called with numpy arrays: :func:`kernel` wraps the machine code
in a function that checks dtypes, shapes, layout and the ``lo, hi`` range, and
passes the addresses. The contents of the ``l3n`` index arrays are not
checked (an O(nnz) pass on every call): its callers build them from canonical
scipy CSR products.
"""

from __future__ import annotations

import ctypes
import functools

import numpy as np

from .. import _llvm

P, I = ctypes.c_void_p, ctypes.c_int64


def _types():
    from llvmlite import ir

    i1, i8, i64, f32 = ir.IntType(1), ir.IntType(8), ir.IntType(64), ir.FloatType()
    return ir, i1, i8, i64, f32


def _weight(b, c, d, ch3):
    """The CH node weight ``f(c, d)`` of ``_kernels._f``: 0 if ``c <= 0``, else
    ``(ch3 ? 1 : c + 1) / max(1, d - c)`` (``max`` as ``den < 1 ? 1 : den``)."""
    ir, _, _, _, f32 = _types()
    zero, one = ir.Constant(f32, 0.0), ir.Constant(f32, 1.0)
    den = b.fsub(d, c)
    den = b.select(b.fcmp_ordered("<", den, one), one, den)
    num = b.select(ch3, one, b.fadd(c, one))
    return b.select(b.fcmp_ordered("<=", c, zero), zero, b.fdiv(num, den))


#: argument types by letter: ``i`` int64, ``I`` int64*, ``F`` float32*, ``B`` uint8*
_CODES = {"fill": "FFii", "gram": "IiiFFiiiii", "pack_columns": "BiiIiI",
          "row_popcounts": "IiF", "l3n": "IIIIFIIFFi"}


def _function(module, name: str):
    """Function ``name`` of :data:`_CODES` plus ``lo, hi``: ``(builder, args, (lo, hi))``."""
    ir, _, i8, i64, f32 = _types()
    kinds = {"i": i64, "I": i64.as_pointer(), "F": f32.as_pointer(), "B": i8.as_pointer()}
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [kinds[c] for c in _CODES[name]]
                                             + [i64, i64]), name=name)
    return ir.IRBuilder(fn.append_basic_block("entry")), fn.args[:-2], fn.args[-2:]


def _outer(b, bounds, body, name: str) -> None:
    """The outer loop ``for i in range(lo, hi): body(b, i)``, then return."""
    _llvm.loop(b, *bounds, body, name)
    b.ret_void()


def _counter(b, ir, i64):
    """An int64 accumulator (promoted to a register by the optimiser)."""
    with b.goto_entry_block():
        return b.alloca(i64)


def _popcount_sum(b, ir, i64, start_u, start_v, words):
    """``Σ_w popcount(U[w] & V[w])`` (``V`` None: ``Σ_w popcount(U[w])``), int64."""
    acc = _counter(b, ir, i64)
    b.store(ir.Constant(i64, 0), acc)

    def word(b, w):
        x = _llvm.at(b, start_u, w)
        if start_v is not None:
            x = b.and_(x, _llvm.at(b, start_v, w))
        b.store(b.add(b.load(acc), b.ctpop(x)), acc)

    _llvm.loop(b, ir.Constant(i64, 0), words, word, "w")
    return b.load(acc)


def _fill(module) -> None:
    ir, _, _, i64, _ = _types()
    b, (X, deg, ch3, m), bounds = _function(module, "fill")
    is_ch3 = b.icmp_signed("!=", ch3, ir.Constant(i64, 0))

    def row(b, i):
        X_i = b.gep(X, [b.mul(i, m)], inbounds=True)

        def entry(b, j):
            x = b.gep(X_i, [j], inbounds=True)
            b.store(_weight(b, b.load(x), _llvm.at(b, deg, j), is_ch3), x)

        _llvm.loop(b, ir.Constant(i64, 0), m, entry, "j")

    _outer(b, bounds, row, "i")


def _gram(module) -> None:
    ir, _, _, i64, f32 = _types()
    b, (B, n, words, deg, out, s0, s1, by_column, ch3, block), bounds = _function(module, "gram")
    out.add_attribute("noalias")
    one, two = ir.Constant(i64, 1), ir.Constant(i64, 2)
    by_col = b.icmp_signed("!=", by_column, ir.Constant(i64, 0))
    is_ch3 = b.icmp_signed("!=", ch3, ir.Constant(i64, 0))
    n_blocks = b.sdiv(b.sub(b.add(n, block), one), block)

    def smin(b, x, y):
        return b.select(b.icmp_signed("<", x, y), x, y)

    def task(b, k):
        # long (early) and short (late) row blocks alternate, so equal chunks balance
        half = b.sdiv(k, two)
        even = b.icmp_signed("==", b.srem(k, two), ir.Constant(i64, 0))
        blk = b.select(even, half, b.sub(b.sub(n_blocks, one), half))
        u0 = b.mul(blk, block)
        u1 = smin(b, n, b.add(u0, block))

        def column(b, v):
            B_v = b.gep(B, [b.mul(v, words)], inbounds=True)
            deg_v = _llvm.at(b, deg, v)

            def pair(b, u):
                B_u = b.gep(B, [b.mul(u, words)], inbounds=True)
                c = b.sitofp(_popcount_sum(b, ir, i64, B_u, B_v, words), f32)
                deg_u = _llvm.at(b, deg, u)
                d_uv = b.select(by_col, deg_v, deg_u)
                d_vu = b.select(by_col, deg_u, deg_v)
                b.store(_weight(b, c, d_uv, is_ch3),
                        b.gep(out, [b.add(b.mul(u, s0), b.mul(v, s1))], inbounds=True))
                b.store(_weight(b, c, d_vu, is_ch3),
                        b.gep(out, [b.add(b.mul(v, s0), b.mul(u, s1))], inbounds=True))

            _llvm.loop(b, u0, smin(b, u1, b.add(v, one)), pair, "u")

        _llvm.loop(b, u0, n, column, "v")

    _outer(b, bounds, task, "k")


def _pack_columns(module) -> None:
    ir, _, _, i64, _ = _types()
    b, (Ab, n, m, Pw, words, acc), bounds = _function(module, "pack_columns")
    acc.add_attribute("noalias")  # scratch of the call
    zero = ir.Constant(i64, 0)
    sixty_four = ir.Constant(i64, 64)

    def word(b, w):
        _llvm.loop(b, zero, m, lambda b, j: b.store(zero, b.gep(acc, [j], inbounds=True)), "j0")
        first = b.mul(w, sixty_four)
        left = b.sub(n, first)
        rows = b.select(b.icmp_signed("<", left, sixty_four), left, sixty_four)

        def bit_row(b, r):
            row = b.gep(Ab, [b.mul(b.add(first, r), m)], inbounds=True)

            def column(b, j):
                a = b.gep(acc, [j], inbounds=True)
                # any nonzero byte is True (a bool array may hold other bytes than 0 and 1)
                set_ = b.icmp_unsigned("!=", _llvm.at(b, row, j), ir.Constant(ir.IntType(8), 0))
                bit = b.shl(b.zext(set_, i64), r)
                b.store(b.or_(b.load(a), bit), a)

            _llvm.loop(b, zero, m, column, "j")

        _llvm.loop(b, zero, rows, bit_row, "r")
        _llvm.loop(b, zero, m, lambda b, j: b.store(
            _llvm.at(b, acc, j), b.gep(Pw, [b.add(b.mul(j, words), w)], inbounds=True)), "j1")

    _outer(b, bounds, word, "w")


def _row_popcounts(module) -> None:
    ir, _, _, i64, f32 = _types()
    b, (B, words, out), bounds = _function(module, "row_popcounts")

    def row(b, u):
        c = _popcount_sum(b, ir, i64, b.gep(B, [b.mul(u, words)], inbounds=True), None, words)
        b.store(b.sitofp(c, f32), b.gep(out, [u], inbounds=True))

    _outer(b, bounds, row, "u")


def _l3n(module) -> None:
    ir, _, _, i64, f32 = _types()
    b, args, bounds = _function(module, "l3n")
    indptr, indices, f_indptr, f_indices, f_data, g_indptr, g_indices, g_data, S, n_out = args
    S.add_attribute("noalias")  # the caller's fresh output
    one = ir.Constant(i64, 1)

    def span(b, ptr, i):
        return _llvm.at(b, ptr, i), _llvm.at(b, ptr, b.add(i, one))

    def row(b, u):
        S_u = b.gep(S, [b.mul(u, n_out)], inbounds=True)

        def add(b, j, w):
            s = b.gep(S_u, [j], inbounds=True)
            b.store(b.fadd(b.load(s), w), s)

        def f_term(b, p):
            v, w = _llvm.at(b, f_indices, p), _llvm.at(b, f_data, p)
            _llvm.loop(b, *span(b, indptr, v),
                       lambda b, r: add(b, _llvm.at(b, indices, r), w), "r")

        def g_term(b, p):
            k = _llvm.at(b, indices, p)
            _llvm.loop(b, *span(b, g_indptr, k),
                       lambda b, r: add(b, _llvm.at(b, g_indices, r), _llvm.at(b, g_data, r)),
                       "r")

        _llvm.loop(b, *span(b, f_indptr, u), f_term, "p")
        _llvm.loop(b, *span(b, indptr, u), g_term, "q")
        _llvm.loop(b, *span(b, indptr, u), lambda b, p: b.store(
            ir.Constant(f32, 0.0), b.gep(S_u, [_llvm.at(b, indices, p)], inbounds=True)), "z")

    _outer(b, bounds, row, "u")


_EMITTERS = {"fill": _fill, "gram": _gram, "pack_columns": _pack_columns,
             "row_popcounts": _row_popcounts, "l3n": _l3n}


def _require(name: str, x: np.ndarray, dtype, ndim: int, contiguous: bool = True) -> None:
    if not isinstance(x, np.ndarray) or x.dtype != dtype or x.ndim != ndim or not (
            x.flags.aligned and (x.flags.c_contiguous or not contiguous)):
        raise ValueError(f"{name} must be an aligned{' C-contiguous' if contiguous else ''} "
                         f"{ndim}-D {np.dtype(dtype).name} array")


def _span(lo, hi, extent: int) -> None:
    if not 0 <= lo <= hi <= extent:
        raise ValueError(f"lo, hi = {lo}, {hi}: must satisfy 0 <= lo <= hi <= {extent}")


def _caller(name: str, fn):
    """``fn`` (machine code) as a function of numpy arrays ending in ``lo, hi``."""
    f32, u64, i64 = np.float32, np.uint64, np.int64
    if name == "fill":
        def call(X, deg, ch3, lo, hi):
            _require("X", X, f32, 2)
            _require("deg", deg, f32, 1)
            if deg.size != X.shape[1] or not X.flags.writeable:
                raise ValueError("deg must have one entry per column of a writeable X")
            _span(lo, hi, X.shape[0])
            fn(X.ctypes.data, deg.ctypes.data, int(bool(ch3)), X.shape[1], lo, hi)
    elif name == "gram":
        def call(B, deg, out, by_column, ch3, block, lo, hi):
            _require("B", B, u64, 2)
            _require("deg", deg, f32, 1)
            _require("out", out, f32, 2, contiguous=False)
            n = B.shape[0]
            if deg.size != n or out.shape != (n, n) or any(s % 4 for s in out.strides) \
                    or not out.flags.writeable or np.may_share_memory(out, B):
                raise ValueError("out must be a writeable (n, n) float32 array apart from B, "
                                 "with deg of length n")
            if int(block) < 1:
                raise ValueError(f"block must be a positive number of rows, got {block}")
            _span(lo, hi, -(-n // int(block)))
            fn(B.ctypes.data, n, B.shape[1], deg.ctypes.data, out.ctypes.data,
               out.strides[0] // 4, out.strides[1] // 4, int(bool(by_column)), int(bool(ch3)),
               int(block), lo, hi)
    elif name == "pack_columns":
        def call(Ab, Pw, lo, hi):
            _require("Ab", Ab, np.bool_, 2)
            _require("P", Pw, u64, 2)
            n, m = Ab.shape
            if Pw.shape != (m, max(1, -(-n // 64))) or not Pw.flags.writeable:
                raise ValueError("P must be a writeable (m, ceil(n / 64)) uint64 array")
            _span(lo, hi, Pw.shape[1])
            acc = np.empty(m, dtype=u64)  # this call's scratch: calls run on several threads
            fn(Ab.ctypes.data, n, m, Pw.ctypes.data, Pw.shape[1], acc.ctypes.data, lo, hi)
    elif name == "row_popcounts":
        def call(B, out, lo, hi):
            _require("B", B, u64, 2)
            _require("out", out, f32, 1)
            if out.size != B.shape[0] or not out.flags.writeable:
                raise ValueError("out must be a writeable float32 array of one entry per row")
            _span(lo, hi, B.shape[0])
            fn(B.ctypes.data, B.shape[1], out.ctypes.data, lo, hi)
    else:
        def call(indptr, indices, f_indptr, f_indices, f_data, g_indptr, g_indices, g_data, S,
                 lo, hi):
            arrays = dict(indptr=indptr, indices=indices, f_indptr=f_indptr, f_indices=f_indices,
                          g_indptr=g_indptr, g_indices=g_indices)
            for key, x in arrays.items():
                _require(key, x, i64, 1)
            _require("f_data", f_data, f32, 1)
            _require("g_data", g_data, f32, 1)
            _require("S", S, f32, 2)
            if indptr.size != S.shape[0] + 1 or f_indptr.size != S.shape[0] + 1 \
                    or g_indptr.size != S.shape[1] + 1 or not S.flags.writeable:
                raise ValueError("the row pointers must have one entry per row of S, plus one")
            _span(lo, hi, S.shape[0])
            fn(*(x.ctypes.data for x in (indptr, indices, f_indptr, f_indices, f_data, g_indptr,
                                         g_indices, g_data, S)), S.shape[1], lo, hi)
    call.__name__ = name
    return call


@functools.cache
def kernel(name: str):
    """The serial kernel ``name`` (built on the first call, then reused): a function of
    numpy arrays ending in ``lo, hi``, like the loops of :mod:`netshape.linkpred._kernels`.

    Raises what llvmlite raises if it cannot build (the caller keeps the twins).
    """
    from llvmlite import ir

    module = ir.Module(name="netshape_" + name)
    _EMITTERS[name](module)
    compiled = _llvm.build(module, {name: [I if c == "i" else P for c in _CODES[name] + "ii"]})
    call = _caller(name, compiled[name])
    call.compiled = compiled  # keeps the machine code alive with the function
    return call
