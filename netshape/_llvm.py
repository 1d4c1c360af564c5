"""Machine code from LLVM IR, built with llvmlite in milliseconds and called through ctypes.

netshape's compiled kernels (the link predictors' loops, the sparse layer's
products) are written as LLVM IR with :mod:`llvmlite.ir` and built here:
parsing, optimising (LLVM's default ``O3`` pipeline, which vectorises loops)
and generating code take a few hundredths of a second per kernel, so nothing is
cached on disk and a fresh install is as fast as a warm one from its first call.
llvmlite is the ``fast`` extra (it is numba's LLVM binding; netshape needs no
numba). The functions are called through :func:`ctypes.CFUNCTYPE`, which
releases the GIL: a kernel runs on several Python threads at once
(:class:`netshape.linkpred._threads.Ranged`).

Floating-point semantics are LLVM's defaults, IEEE arithmetic in program order
(no fused multiply-add, no reassociation), unless a kernel marks an instruction
with fast-math flags (:func:`fast`).
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import threading
from collections.abc import Callable, Sequence

_lock = threading.Lock()  # one module at a time through LLVM's global state
#: every module built in this process: its machine code is never freed, so a function
#: pointer handed out once stays valid whatever happens to the object that returned it
_kept: list = []


@functools.cache
def installed() -> bool:
    """Whether llvmlite can be imported (checked without importing it)."""
    return importlib.util.find_spec("llvmlite") is not None


@functools.cache
def _initialise() -> None:
    import llvmlite.binding as llvm

    initialize = getattr(llvm, "initialize", None)
    if initialize is not None:  # needed by older llvmlite; from 0.45 it raises instead
        try:
            initialize()
        except RuntimeError:
            pass
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()


def _target_machine():
    """A new target machine for the host CPU: the engine it is given to owns (and frees) it."""
    import llvmlite.binding as llvm

    _initialise()
    try:
        features = llvm.get_host_cpu_features().flatten()
    except RuntimeError:  # not reported on some platforms: generic code for the CPU name
        features = ""
    target = llvm.Target.from_triple(llvm.get_process_triple())
    # the options numba's own JIT uses: x86 needs static relocation for MCJIT
    reloc = "static" if target.name.startswith("x86") else (
        "pic" if target.name.startswith("ppc") else "default")
    return target.create_target_machine(cpu=llvm.get_host_cpu_name(), features=features,
                                        opt=3, reloc=reloc, codemodel="jitdefault")


def _optimise(llvm, module, machine) -> None:
    tuning = llvm.PipelineTuningOptions(speed_level=3)
    tuning.loop_vectorization = True
    tuning.slp_vectorization = True
    builder = llvm.create_pass_builder(machine, tuning)
    builder.getModulePassManager().run(module, builder)


class Compiled:
    """The functions of one built module, as ctypes callables; keeps the machine code alive."""

    def __init__(self, engine, functions: dict[str, Callable]) -> None:
        self._engine = engine  # owns the code the functions point to
        self.functions = functions

    def __getitem__(self, name: str) -> Callable:
        return self.functions[name]


def build(module, signatures: dict[str, Sequence], optimise: bool = True) -> Compiled:
    """Build an :class:`llvmlite.ir.Module`; ``signatures``: name -> ctypes argument types.

    Every function returns void. ``optimise``: run LLVM's ``O3`` pipeline first
    (vectorisation, loop-invariant code motion); without it the IR is compiled as
    written.
    """
    import llvmlite.binding as llvm

    with _lock:
        machine = _target_machine()
        parsed = llvm.parse_assembly(str(module))
        parsed.triple = llvm.get_process_triple()
        parsed.data_layout = str(machine.target_data)
        parsed.verify()
        if optimise:
            _optimise(llvm, parsed, machine)
        engine = llvm.create_mcjit_compiler(parsed, machine)
        engine.finalize_object()
        # CFUNCTYPE (not PYFUNCTYPE): ctypes releases the GIL for the call
        functions = {name: ctypes.CFUNCTYPE(None, *types)(engine.get_function_address(name))
                     for name, types in signatures.items()}
        compiled = Compiled(engine, functions)
        _kept.append(compiled)
    return compiled


def loop(b, start, stop, body: Callable, name: str) -> None:
    """Emit ``for i in range(start, stop): body(b, i)`` (int64) at the builder's position."""
    from llvmlite import ir

    i64 = ir.IntType(64)
    before = b.block
    head = b.append_basic_block(name + ".head")
    inner = b.append_basic_block(name + ".body")
    after = b.append_basic_block(name + ".end")
    b.branch(head)
    b.position_at_end(head)
    i = b.phi(i64, name)
    i.add_incoming(start, before)
    b.cbranch(b.icmp_signed("<", i, stop), inner, after)
    b.position_at_end(inner)
    body(b, i)
    i.add_incoming(b.add(i, ir.Constant(i64, 1)), b.block)
    b.branch(head)
    b.position_at_end(after)


def at(b, ptr, i):
    """``ptr[i]``."""
    return b.load(b.gep(ptr, [i], inbounds=True))


def fast(instruction, *flags: str):
    """Mark a floating-point instruction with fast-math ``flags`` (e.g. ``"reassoc"``)."""
    instruction.flags.extend(flags)
    return instruction
