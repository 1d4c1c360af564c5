"""Running a compiled kernel's outer loop in chunks on several threads.

Every compiled kernel of :mod:`netshape.linkpred` ends in ``lo, hi``: the part
of its outer loop (rows, row blocks, words) it runs. Machine code built with
llvmlite and called through ctypes runs without the GIL, so one kernel runs on
disjoint chunks of that loop in several Python threads at once.
"""

from __future__ import annotations

import os
import threading

import numpy as np


def threads() -> int:
    """Threads a parallel kernel call uses: ``NUMBA_NUM_THREADS`` if set, else the usable CPUs."""
    env = os.environ.get("NUMBA_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


#: chunks of the outer loop per thread: threads take the next chunk when done, so
#: rows of uneven cost still spread evenly
_CHUNKS_PER_THREAD = 4


class Ranged:
    """A compiled kernel run over its whole outer loop, in this thread or split over threads.

    The kernels are serial loops that release the GIL; a parallel call hands
    disjoint chunks of the outer loop (rows, row blocks) to ``n_threads`` Python
    threads. Each outer index writes its own outputs and sums in the order a serial
    run does, so every split gives bit-identical results.
    """

    def __init__(self, kernel, extent, n_threads: int) -> None:
        self.kernel, self.extent, self.n_threads = kernel, extent, n_threads

    def __call__(self, *args) -> None:
        self.run(args, 0, int(self.extent(*args)))

    def run(self, args: tuple, lo: int, hi: int) -> None:
        """The outer indices ``lo:hi`` only (the other outputs are left as they are)."""
        n = hi - lo
        n_threads = min(self.n_threads, n)
        if n_threads <= 1:
            self.kernel(*args, lo, hi)
            return
        bounds = np.linspace(lo, hi, min(n, _CHUNKS_PER_THREAD * n_threads) + 1).astype(np.int64)
        chunks = iter(range(bounds.size - 1))  # shared: next() is atomic under the GIL
        errors: list[BaseException] = []

        def work() -> None:
            try:
                for c in chunks:
                    self.kernel(*args, int(bounds[c]), int(bounds[c + 1]))
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                errors.append(exc)

        helpers = [threading.Thread(target=work, name="netshape-kernel", daemon=True)
                   for _ in range(n_threads - 1)]
        for t in helpers:
            t.start()
        work()
        for t in helpers:
            t.join()
        if errors:
            raise errors[0]
