"""The worker side of :mod:`netshape.bench`: one configuration timed in a child process.

:class:`_Worker` runs :func:`_measure` in a spawned process (started with
:data:`QUIET_POOLS`) and kills it when a call overruns; :func:`_measure` builds
the layer, warms up, and times the paths of one predictor interleaved, each call
beside its own reference product.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import statistics
import threading
import time
from typing import Any

import numpy as np

#: a configuration keeps repeating only while its timed calls fit this many seconds
_REPEAT_BUDGET_S = 8.0
#: short calls repeat until their timed calls add up to about this many seconds ...
_MIN_TIMED_S = 3.0
#: ... but at most this many times
_MAX_REPEATS = 101


def _prepare(csr, backend: str):
    """The layer as the backend's input type, and a function that waits for the device."""
    if backend == "scipy":
        return csr, lambda: None
    dense = csr.toarray()
    if backend == "numpy":
        return dense, lambda: None
    if backend.startswith("torch"):
        import torch

        if backend == "torch-cuda":
            return torch.from_numpy(dense).cuda(), torch.cuda.synchronize
        return torch.from_numpy(dense), lambda: None
    import cupy

    return cupy.asarray(dense), cupy.cuda.Device().synchronize


_GEMM_OPERANDS: dict[int, tuple] = {}


def _gemm_once(n: int) -> float:
    """Seconds of one ``n × n`` float32 product (operands kept per worker)."""
    if n not in _GEMM_OPERANDS:
        rng = np.random.default_rng(0)
        X, Y = rng.random((n, n), dtype=np.float32), rng.random((n, n), dtype=np.float32)
        _GEMM_OPERANDS[n] = (X, Y, np.empty((n, n), dtype=np.float32))
        np.matmul(X, Y, out=_GEMM_OPERANDS[n][2])  # warm-up
    X, Y, out = _GEMM_OPERANDS[n]
    t0 = time.perf_counter()
    np.matmul(X, Y, out=out)
    return time.perf_counter() - t0


def _measure(task: dict, send) -> None:
    """Run one configuration in the worker, reporting each phase through ``send``.

    The paths of one predictor (``task["paths"]``) are timed interleaved: each
    round times every path once, each call right after its own reference
    product, so that the paths compare under the same process state and load.
    Before every call the worker sends ``("call", (phase, path))`` (phase
    ``warmup``, ``probe``, ``timed`` or ``peak``), so that the parent knows
    which path overran and how long that phase may take; the message goes out
    before the reference product, outside the timed interval.
    """
    import tracemalloc

    from ..generators import er
    from ..linkpred import _jit, predict

    _jit.MODE = "eager"  # time the compiled kernels, never their numpy twins
    name, T = task["name"], task["timeout"]
    csr = er(task["n"], task["n"], task["density"], rng=task["seed"])
    A, sync = _prepare(csr, task["backend"])
    # the path is the predictor's method= (its computation route); rng for "random"
    kwargs = {path: {"method": path, "rng": 0} for path in task["paths"]}
    gemm = _gemm_once(task["n"])  # operands and warm-up outside the timed phase
    send(("ready", gemm))
    reps: dict[str, int] = {}
    out: dict[str, Any] = {}
    for path, kw in kwargs.items():
        first = 0.0
        send(("call", ("warmup", path)))
        for _ in range(task["warmup"]):
            t0 = time.perf_counter()
            predict(A, name, **kw)
            sync()
            first = time.perf_counter() - t0
        send(("warm", (path, first)))
        if first > T:
            out[path] = "timeout"
            continue
        if first < 1.0:
            # the warm-up call may carry one-time costs (building the compiled
            # kernels): an untimed probe call sets the number of repeats instead
            send(("call", ("probe", path)))
            t0 = time.perf_counter()
            predict(A, name, **kw)
            sync()
            first = time.perf_counter() - t0
        # Short calls get more repeats (a stable median of ms-scale timings on a noisy
        # machine); long ones fewer, so a configuration stays within the budget.
        r = max(task["repeats"], min(_MAX_REPEATS, int(_MIN_TIMED_S // max(first, 1e-9))))
        reps[path] = max(1, min(r, int(_REPEAT_BUDGET_S // max(first, 1e-9))))
    times, gemms = _timed_rounds(task, A, sync, kwargs, reps, send)
    for path in reps:
        peak = float("nan")
        if task["backend"] in ("numpy", "scipy", "torch") and times[path][0] < T / 2:
            send(("call", ("peak", path)))
            tracemalloc.start()
            predict(A, name, **kwargs[path])
            peak = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
        out[path] = {"nnz": int(csr.nnz), "seconds": statistics.median(times[path]),
                     "seconds_min": min(times[path]), "repeats": reps[path], "peak_mb": peak,
                     "gemm_seconds": statistics.median(gemms[path])}
    send(("ok", out))


def _timed_rounds(task: dict, A, sync, kwargs: dict, reps: dict[str, int], send):
    """Seconds of every timed call and of the reference product before it, by path."""
    from ..linkpred import predict

    times: dict[str, list[float]] = {path: [] for path in reps}
    gemms: dict[str, list[float]] = {path: [] for path in reps}
    order_rng = np.random.default_rng(task["seed"])
    for i in range(max(reps.values(), default=0)):
        # a fresh order each round: every path follows every other one equally often,
        # so what one call leaves behind (caches, the allocator) weighs on all alike
        for path in order_rng.permutation(list(reps)):
            if i >= reps[path]:
                continue
            send(("call", ("timed", str(path))))
            # the reference product right beside each timed call: same machine load
            gemms[path].append(_gemm_once(task["n"]))
            t0 = time.perf_counter()
            predict(A, task["name"], **kwargs[path])
            sync()
            times[path].append(time.perf_counter() - t0)
    return times, gemms


def _worker(conn) -> None:  # pragma: no cover - runs in the child process
    while True:
        task = conn.recv()
        if task is None:
            return
        try:
            _measure(task, conn.send)
        except Exception as exc:  # noqa: BLE001 - reported as a row, the sweep goes on
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


#: set in the worker's environment unless the user set them: idle BLAS/OpenMP threads
#: sleep at once instead of spinning (OpenBLAS: ~0.1 s) into the next timed call; on
#: 2 cores a spinning pool held one core during the call that followed a product
QUIET_POOLS = {"OPENBLAS_THREAD_TIMEOUT": "4", "OMP_WAIT_POLICY": "PASSIVE"}


@contextlib.contextmanager
def _sigint_ignored():
    """SIGINT ignored while a worker process starts, so that the child ignores it from birth.

    Ctrl-C in a terminal reaches the whole process group: the parent turns it into
    a ``KeyboardInterrupt`` and kills the worker; a worker that took it too would
    print its own traceback. Python keeps an inherited ``SIG_IGN`` for SIGINT.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be changed in the main thread
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_DFL if previous is None else previous)


@contextlib.contextmanager
def _quiet_thread_pools():
    """:data:`QUIET_POOLS` in ``os.environ`` while a worker process starts."""
    added = [k for k in QUIET_POOLS if k not in os.environ]
    os.environ.update({k: QUIET_POOLS[k] for k in added})
    try:
        yield
    finally:
        for k in added:
            os.environ.pop(k, None)


def allowance(phase: str, timeout: float, slowest: float, gemm: float, warmup: int) -> float:
    """Seconds the parent waits for the next message once the worker starts ``phase``.

    A warm-up phase gets ``warmup`` calls of ``timeout`` each; a timed call gets
    twice the slower of the timeout and the slowest warm-up call, plus its
    reference product (four times the one measured at start-up, for load); the
    one call under :mod:`tracemalloc` (which slows Python-level allocation)
    gets ten times. Each adds 5 s of slack for process scheduling.
    """
    slow = max(timeout, slowest)
    if phase == "warmup":
        return timeout * warmup + 5.0
    if phase == "probe":
        return 2 * slow + 5.0
    if phase == "timed":
        return 2 * slow + 4 * gemm + 5.0
    return 10 * slow + 4 * gemm + 5.0  # peak


class _Worker:
    """A child process that runs configurations and is killed when a call overruns.

    ``target`` is the function the child runs with its end of the pipe (the
    measuring loop; tests pass stand-ins).
    """

    def __init__(self, target=None) -> None:
        self.proc = None
        self.conn = None
        self.target = _worker if target is None else target

    def _recv(self, wait: float) -> tuple[str, Any] | None:
        """The next message; ``("exited", code)`` if the worker died; None past ``wait`` s."""
        from multiprocessing.connection import wait as wait_any

        ready = wait_any([self.conn, self.proc.sentinel], timeout=wait)
        if not ready:
            return None
        try:
            if self.conn.poll():  # a message sent before the worker died still counts
                return self.conn.recv()
        except (EOFError, OSError):
            pass
        self.proc.join()
        return "exited", self.proc.exitcode

    def ask(self, task: dict) -> tuple[str, Any]:
        """``("ok", {path: result | "timeout"})``, ``("timeout", path)`` when a call
        overran and the worker was killed, or ``("error", message)`` (also when
        the worker process died)."""
        if self.proc is None:
            ctx = mp.get_context("spawn")  # fork after BLAS threads start can deadlock
            self.conn, child = ctx.Pipe()
            self.proc = ctx.Process(target=self.target, args=(child,), daemon=True)
            with _quiet_thread_pools(), _sigint_ignored():
                self.proc.start()
            # the parent's copy of the child's end would keep the pipe open after
            # the worker dies: closed here, a dead worker reads as EOF at once
            child.close()
        self.conn.send(task)
        T, warmup = task["timeout"], task["warmup"]
        msg = self._recv(600.0)  # building the layer is not timed
        if msg is None or msg[0] != "ready":
            return self._settle(msg, task["paths"][0])
        gemm = float(msg[1] or 0.0)
        path, slowest = task["paths"][0], 0.0
        wait = allowance("warmup", T, slowest, gemm, warmup)
        while True:
            msg = self._recv(wait)
            if msg is None or msg[0] not in ("call", "warm"):
                return self._settle(msg, path)
            if msg[0] == "warm":
                slowest = max(slowest, float(msg[1][1]))
            else:
                phase, path = msg[1]
                wait = allowance(phase, T, slowest, gemm, warmup)

    def _settle(self, msg: tuple[str, Any] | None, path: str) -> tuple[str, Any]:
        """The worker's answer; ``("timeout", path)`` (and a kill) when none came in time;
        ``("error", ...)`` when the worker died."""
        if msg is None:  # silence past the deadline: the call at ``path`` overran
            self.kill()
            return "timeout", path
        if msg[0] == "exited":
            self.kill()
            return "error", f"worker exited {msg[1]} (during {path})"
        return msg

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.join()
            self.conn.close()
        self.proc = self.conn = None

    def close(self) -> None:
        if self.proc is not None:
            try:
                self.conn.send(None)
            except OSError:  # the worker is gone already
                pass
            self.proc.join(5)
            self.kill()
