"""Fill numba's on-disk cache from a second process while a training command starts.

A DST run needs numba kernels: the link predictors' (compiled on a background
thread, with bit-identical numpy twins meanwhile) and sparse execution's
products. Compiled inside the training process, the compiler and the training
loop share one interpreter lock, and on a fresh install the first update waits
seconds. ``netshape train`` therefore calls :func:`start`, which launches
``python -m netshape._cli._precompile``: that process compiles the kernels into
numba's cache (``cache=True``; ``NUMBA_CACHE_DIR`` is inherited) and exits,
and the training process then loads them from the cache when it first needs
them. Nothing here changes a result, only where the compiling happens; a child
still running when the command ends is stopped.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import subprocess
import sys

__all__ = ["start"]


def wanted(methods: list[str]) -> bool:
    """Whether a command training ``methods`` will use numba kernels worth compiling early."""
    return any(m != "fc" for m in methods) and importlib.util.find_spec("numba") is not None


_started: list[subprocess.Popen] = []  # one child per process fills the cache once


def start(methods: list[str]) -> subprocess.Popen | None:
    """Launch the compiling process for a command that trains ``methods``.

    None when no kernel is wanted, compiled kernels are disabled
    (``NETSHAPE_NO_NUMBA=1``), a child was started already, or none can be.
    """
    if (_started or not wanted(methods)
            or os.environ.get("NETSHAPE_NO_NUMBA", "") not in ("", "0")):
        return None
    try:
        child = subprocess.Popen([sys.executable, "-m", "netshape._cli._precompile"],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
    except OSError:  # no process to spare: the command compiles in-process as before
        return None
    _started.append(child)
    atexit.register(_stop, child)
    return child


def _stop(child: subprocess.Popen) -> None:
    if child.poll() is None:
        child.terminate()
        child.wait()


def main() -> int:
    """Compile (or find in the cache) every kernel a DST run can use; exit status 0."""
    from netshape.linkpred import _jit, _kernels

    if _kernels.numba_available():
        for name in _kernels.SIGNATURES:
            _jit.compiled(name, False)
    if importlib.util.find_spec("torch") is not None:
        import torch

        from netshape.torch import _sparse_kernels

        _sparse_kernels.use_numba(torch.zeros(1))  # compiles the float32 products
    return 0


if __name__ == "__main__":
    sys.exit(main())
