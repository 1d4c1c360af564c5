"""Building the compiled kernels without making the first call wait.

Building a kernel with llvmlite (:mod:`netshape.linkpred._native`) takes a few
hundredths of a second per kernel, and the first one also imports llvmlite and
sets up its target machine. The link predictors do not wait for that by
default: the first request for a kernel schedules it on a background thread
(llvmlite releases the GIL while LLVM works), and until it is built the caller
runs the kernel's numpy twin (:mod:`netshape.linkpred._twins`, or BLAS counts
for the dense route), which gives **bit-identical** results — the choice
changes the time a call takes, never what it returns. Nothing is cached on
disk: every process builds its own kernels, so a fresh install is as fast as
a warm one.

``NETSHAPE_JIT=eager`` builds in the calling thread instead (a call then
always runs the compiled kernel); :func:`wait_compiled` blocks until every
scheduled kernel is ready (benchmarks time warm kernels after it).

Forking while the background thread holds LLVM's lock leaves the child unable
to build: netshape never forks, and the thread exits as soon as its queue is
empty.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

#: "background" (default) or "eager"
MODE = os.environ.get("NETSHAPE_JIT", "background").strip().lower() or "background"

_lock = threading.Lock()
_builder: Callable[[str, bool], Any] | None = None  # set by _kernels: (name, parallel) -> kernel
_done: dict[tuple[str, bool], Any] = {}
_failed: dict[tuple[str, bool], BaseException] = {}
_queue: list[tuple[str, bool]] = []
_key_locks: dict[tuple[str, bool], threading.Lock] = {}
_thread: threading.Thread | None = None


def set_builder(builder: Callable[[str, bool], Any]) -> None:
    """Register the function that builds one kernel variant."""
    global _builder
    _builder = builder


def _build(key: tuple[str, bool]) -> Any:
    kernel = _done.get(key)
    if kernel is not None:
        return kernel
    with _lock:
        key_lock = _key_locks.setdefault(key, threading.Lock())
    with key_lock:  # a caller and the thread asking at once: one compiles, one waits
        kernel = _done.get(key)
        if kernel is not None:
            return kernel
        if key in _failed:
            raise _failed[key]
        assert _builder is not None
        try:
            kernel = _builder(*key)
        except Exception as exc:
            # a kernel that cannot compile stays refused; a KeyboardInterrupt (or any
            # other BaseException) interrupted this attempt only, so it is not recorded
            _failed[key] = exc
            raise
        _done[key] = kernel
        return kernel


def _worker() -> None:
    global _thread
    while True:
        with _lock:
            if not _queue:
                _thread = None
                return
            key = _queue.pop(0)
        try:
            _build(key)
        except Exception:  # noqa: BLE001 - recorded in _failed; callers keep the twins
            pass


def schedule(*keys: tuple[str, bool]) -> None:
    """Queue kernel variants for the background thread (first keys first)."""
    global _thread
    with _lock:
        new = [k for k in keys if k not in _done and k not in _failed and k not in _queue]
        if not new:
            return
        _queue[:0] = new  # the latest request is the one a caller is waiting to use
        if _thread is None:
            _thread = threading.Thread(target=_worker, name="netshape-kernel-build",
                                       daemon=True)
            _thread.start()


def ready(name: str, parallel: bool) -> Any | None:
    """The compiled variant if it is ready now, else None (never waits)."""
    return _done.get((name, parallel))


def compiled(name: str, parallel: bool) -> Any:
    """The compiled variant, compiling it in this thread if needed (waits)."""
    return _build((name, parallel))


def pick(name: str, parallel: bool) -> Any | None:
    """The best variant ready now for a call that would like ``parallel``; None if none is.

    Schedules what is missing (serial first: the parallel variant is built from
    it). The serial and parallel variants give identical results (rows are
    independent tasks, each summed in the same order), so falling back to the
    serial one changes only the time. In eager mode the wanted variant is
    compiled here and returned.
    """
    if MODE == "eager":
        try:
            return compiled(name, parallel)
        except Exception:  # noqa: BLE001 - a kernel that cannot compile: use the twin
            return None
    par = _done.get((name, True)) if parallel else None
    ser = _done.get((name, False))
    if ser is None or (parallel and par is None):
        schedule(*([(name, False)] + ([(name, True)] if parallel else [])))
    return par if par is not None else ser


def wait_compiled() -> None:
    """Block until the background thread has compiled everything scheduled."""
    while True:
        with _lock:
            t = _thread
        if t is None:
            return
        t.join()
