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
    _gemm_once(task["n"])  # operands and warm-up outside the timed phase
    send(("ready", None))
    reps: dict[str, int] = {}
    out: dict[str, Any] = {}
    for path, kw in kwargs.items():
        first = 0.0
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
            # the warm-up call may carry one-time costs (loading numba's cached
            # kernels): an untimed probe call sets the number of repeats instead
            t0 = time.perf_counter()
            predict(A, name, **kw)
            sync()
            first = time.perf_counter() - t0
        # Short calls get more repeats (a stable median of ms-scale timings on a noisy
        # machine); long ones fewer, so a configuration stays within the budget.
        r = max(task["repeats"], min(_MAX_REPEATS, int(_MIN_TIMED_S // max(first, 1e-9))))
        reps[path] = max(1, min(r, int(_REPEAT_BUDGET_S // max(first, 1e-9))))
    times: dict[str, list[float]] = {path: [] for path in reps}
    gemms: dict[str, list[float]] = {path: [] for path in reps}
    order_rng = np.random.default_rng(task["seed"])
    for i in range(max(reps.values(), default=0)):
        # a fresh order each round: every path follows every other one equally often,
        # so what one call leaves behind (caches, the allocator) weighs on all alike
        for path in order_rng.permutation(list(reps)):
            if i >= reps[path]:
                continue
            # the reference product right beside each timed call: same machine load
            gemms[path].append(_gemm_once(task["n"]))
            t0 = time.perf_counter()
            predict(A, name, **kwargs[path])
            sync()
            times[path].append(time.perf_counter() - t0)
    for path in reps:
        peak = float("nan")
        if task["backend"] in ("numpy", "scipy", "torch") and times[path][0] < T / 2:
            tracemalloc.start()
            predict(A, name, **kwargs[path])
            peak = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
        out[path] = {"nnz": int(csr.nnz), "seconds": statistics.median(times[path]),
                     "seconds_min": min(times[path]), "repeats": reps[path], "peak_mb": peak,
                     "gemm_seconds": statistics.median(gemms[path])}
    send(("ok", out))


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


class _Worker:
    """A child process that runs configurations and is killed when a call overruns."""

    def __init__(self) -> None:
        self.proc = None
        self.conn = None

    def _recv(self, wait: float) -> tuple[str, Any] | None:
        return self.conn.recv() if self.conn.poll(wait) else None

    def ask(self, task: dict) -> tuple[str, Any]:
        """``("ok", {path: result | "timeout"})``, ``("timeout", path)`` when a call
        overran and the worker was killed, or ``("error", message)``."""
        if self.proc is None:
            ctx = mp.get_context("spawn")  # fork after BLAS/numba threads start can deadlock
            self.conn, child = ctx.Pipe()
            self.proc = ctx.Process(target=_worker, args=(child,), daemon=True)
            with _quiet_thread_pools(), _sigint_ignored():
                self.proc.start()
        self.conn.send(task)
        T = task["timeout"]
        msg = self._recv(600.0)  # building the layer is not timed
        if msg is None or msg[0] != "ready":
            return self._settle(msg, task["paths"][0])
        slowest = 0.0
        for path in task["paths"]:
            # the timed phase: warm-up calls, each allowed the timeout (+ slack)
            msg = self._recv(T * task["warmup"] + 5.0)
            if msg is None or msg[0] != "warm":
                return self._settle(msg, path)
            slowest = max(slowest, msg[1][1])
        budget = len(task["paths"]) * (_REPEAT_BUDGET_S + 2 * max(T, slowest)) + 60.0
        return self._settle(self._recv(budget), task["paths"][-1])

    def _settle(self, msg: tuple[str, Any] | None, path: str) -> tuple[str, Any]:
        """The worker's answer, or ``("timeout", path)`` (and a kill) when none came."""
        if msg is None:  # silence past the deadline: the call at ``path`` overran
            self.kill()
            return "timeout", path
        return msg

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.join()
        self.proc = self.conn = None

    def close(self) -> None:
        if self.proc is not None:
            self.conn.send(None)
            self.proc.join(5)
            self.kill()
