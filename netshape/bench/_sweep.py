"""Link-prediction runtime sweeps: the engine behind ``netshape bench`` and ``benchmarks/``.

A sweep times every ``predictor × size × density`` configuration on random (ER)
square layers, each in a fresh worker process (so that one configuration's
memory history cannot change the next one's timings); the paths of one
predictor (``ch2_l3n:dense``, ``:sparse``, ``:auto``) share that process and
are timed interleaved, a call of each per round in a fresh random order, so
that their ratios compare like with like. The worker starts with
``OPENBLAS_THREAD_TIMEOUT=4`` and ``OMP_WAIT_POLICY=PASSIVE``
(:mod:`netshape.bench._worker`) unless the environment sets them: idle
thread pools then sleep instead of spinning into the next call. The worker is killed when one
call exceeds the per-configuration timeout, so that a slow method (CH3-L3p grows as N·d³) costs
at most ``timeout`` seconds and is recorded as ``"timeout"``, never as a number;
a worker that dies (a crash, the kernel's OOM killer) is noticed at once and its
configuration recorded as ``"error: worker exited CODE (during PATH)"``.
Each configuration gets warm-up calls, then the median of ``repeats`` timed
calls; the time of one ``n × n`` float32 matrix product, measured in the same
worker right before each timed call (median), is the hardware reference
(``gemm_seconds``): on a shared machine the ratio is far steadier than either
time. Peak memory is the peak of the allocations :mod:`tracemalloc` sees during
one extra call (numpy reports its buffers to it; BLAS workspaces and the compiled
kernels' own arrays are not included).

>>> rows = run(sizes=(32,), densities=(0.1,), predictors=("ch2_l3n:dense",), repeats=1,
...            progress=False)
>>> rows[0]["status"], rows[0]["n_in"], rows[0]["seconds"] > 0
('ok', 32, True)
"""

from __future__ import annotations

import math
import os
import platform
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._fs import atomic_write_text, csv_text
from .._fs import read_csv as _read_csv
from .._validation import check_density, check_positive_int
from ._worker import _Worker

__all__ = ["COLUMNS", "DEFAULT_DENSITIES", "DEFAULT_METHODS", "DEFAULT_PREDICTORS",
           "DEFAULT_SIZES", "QUICK", "check_arguments", "read_csv", "run", "to_csv",
           "to_markdown", "write_results"]

DEFAULT_SIZES = (256, 512, 1024, 2048, 4096)
DEFAULT_DENSITIES = (0.001, 0.003, 0.01, 0.03, 0.05, 0.1, 0.3)
DEFAULT_PREDICTORS = ("ch2_l3n:dense", "ch2_l3n:sparse", "ch2_l3n:auto", "ch3_l3p")
#: former name of :data:`DEFAULT_PREDICTORS`
DEFAULT_METHODS = DEFAULT_PREDICTORS
#: the small grid of ``netshape bench --quick`` (seconds, for tests and smoke runs)
QUICK = {"sizes": (64, 128), "densities": (0.02, 0.2), "repeats": 1, "timeout": 60.0}

COLUMNS = ("method", "path", "backend", "n_in", "n_out", "density", "nnz", "status",
           "seconds", "seconds_min", "repeats", "gemm_seconds", "ratio_to_gemm",
           "peak_mb", "threads", "versions")

_BACKENDS = ("numpy", "scipy", "torch", "torch-cuda", "cupy")


def _split_spec(spec: str) -> tuple[str, str]:
    from ..linkpred import available, methods

    name, _, path = spec.partition(":")
    if name not in available():
        raise ValueError(f"predictors entry {spec!r}: unknown predictor {name!r}; "
                         f"choose from {', '.join(available())}")
    path = path or "auto"
    if path not in methods(name):
        raise ValueError(f"predictors entry {spec!r}: {name} has no path {path!r}; "
                         f"choose from {', '.join(methods(name))}")
    return name, path


def _versions() -> str:
    import scipy

    parts = [f"python={platform.python_version()}", f"numpy={np.__version__}",
             f"scipy={scipy.__version__}"]
    for mod in ("llvmlite", "torch"):
        try:
            parts.append(f"{mod}={__import__(mod).__version__}")
        except ImportError:
            pass
    return ";".join(parts)


def _threads() -> int:
    try:
        from threadpoolctl import threadpool_info

        blas = [p["num_threads"] for p in threadpool_info() if p.get("user_api") == "blas"]
        if blas:
            return int(max(blas))
    except ImportError:
        pass
    return os.cpu_count() or 1


def check_arguments(sizes: Iterable[int], densities: Iterable[float],
                    predictors: Iterable[str], *, backend: str = "numpy", repeats: int = 5,
                    warmup: int = 1, timeout: float = 30.0):
    """Validate the arguments of :func:`run` (raise a ``ValueError`` naming the bad one).

    Returns the sorted unique sizes and densities, the ``(name, path)`` pairs,
    ``repeats`` and ``warmup``; a caller can check a sweep before it creates
    anything (``netshape bench`` does, before its output folder).

    >>> check_arguments((64, 32), (0.1,), ("ch2_l3n:dense",))[:3]
    ([32, 64], [0.1], [('ch2_l3n', 'dense')])
    """
    sizes = sorted({check_positive_int(n, "sizes") for n in sizes})
    densities = sorted({check_density(p, "densities") for p in densities})
    specs = [_split_spec(m) for m in predictors]
    if backend not in _BACKENDS:
        raise ValueError(f"backend={backend!r} is not allowed; choose one of {_BACKENDS}")
    if not (isinstance(timeout, (int, float)) and math.isfinite(timeout) and timeout > 0):
        raise ValueError(f"timeout={timeout!r} must be a positive number of seconds")
    repeats = check_positive_int(repeats, "repeats")
    warmup = check_positive_int(warmup, "warmup")
    if not specs or not sizes or not densities:
        raise ValueError("sizes, densities and predictors must each have at least one entry")
    return sizes, densities, specs, repeats, warmup


def run(sizes: Iterable[int] = DEFAULT_SIZES, densities: Iterable[float] = DEFAULT_DENSITIES,
        predictors: Iterable[str] = DEFAULT_PREDICTORS, *, backend: str = "numpy",
        repeats: int = 5, warmup: int = 1, timeout: float = 30.0, rng: int = 0,
        progress: bool = True, methods: Iterable[str] | None = None,
        on_config: Callable[[list[dict]], None] | None = None) -> list[dict]:
    """Time every configuration; one row per ``predictor × size × density``.

    A row's ``method`` column names the predictor and ``path`` its computation
    route (the predictor's ``method=``).

    Parameters
    ----------
    sizes : iterable of int
        Square layer sizes ``n`` (layers are ``n × n``, ER with the exact density).
    densities : iterable of float in (0, 1]
    predictors : iterable of str
        ``"name"`` or ``"name:path"`` with a name of
        :func:`netshape.linkpred.available`; the path is the predictor's
        ``method=`` (computation route), one of
        :func:`netshape.linkpred.methods` (``dense``, ``sparse``, ``auto`` for
        the node-based predictors; ``numba``, ``numpy``, ``auto`` for the
        path-based ones).
    backend : {"numpy", "scipy", "torch", "torch-cuda", "cupy"}
        Input type handed to the predictor (the layer is built before timing).
    repeats, warmup : int
        Timed calls (median reported): at least ``repeats``, more for calls
        shorter than 1 s (up to 101, about 3 s of timed calls), fewer when
        one call exceeds 8 s / repeats; and untimed calls before them (plus one
        untimed probe for calls under 1 s, whose time sets the count).
    timeout : float
        Seconds one call may take; slower configurations are ``"timeout"`` and
        larger or denser ones of the same method are ``"skipped"``.
    rng : int
        Seed of the random layers (same seed, same layers).
    progress : bool
        Show a tqdm bar.
    methods : iterable of str, optional
        Deprecated spelling of ``predictors`` (a :class:`DeprecationWarning`).
    on_config : callable, optional
        Called after every measured configuration with the rows finished so
        far (in the order of the result), e.g. to save them as the sweep goes:
        an interrupted sweep then keeps what it measured.

    Returns
    -------
    list of dict with the keys :data:`COLUMNS`.
    """
    if methods is not None:
        import warnings

        warnings.warn("run(methods=) is deprecated; use predictors= (the same entries)",
                      DeprecationWarning, stacklevel=2)
        predictors = methods
    sizes, densities, specs, repeats, warmup = check_arguments(
        sizes, densities, predictors, backend=backend, repeats=repeats, warmup=warmup,
        timeout=timeout)
    from tqdm.auto import tqdm

    versions, threads = _versions(), _threads()
    specs = list(dict.fromkeys(specs))
    groups: dict[str, list[str]] = {}
    for name, path in specs:  # paths of one predictor are timed together, interleaved
        groups.setdefault(name, []).append(path)
    done: dict[tuple, dict] = {}
    order = [(name, path, n, p) for name, path in specs for n in sizes for p in densities]
    base = {"seed": rng, "backend": backend, "repeats": repeats, "warmup": warmup,
            "timeout": float(timeout)}
    worker = _Worker()
    bar = tqdm(total=len(specs) * len(sizes) * len(densities), disable=not progress,
               desc="bench", unit="cfg")
    try:
        for name, paths in groups.items():
            too_slow: dict[str, list[tuple[int, float]]] = {path: [] for path in paths}
            for n in sizes:
                for p in densities:
                    bar.set_postfix_str(f"{name} n={n} p={p:g}")
                    rows = {path: _empty_row(name, path, backend, n, p, threads, versions)
                            for path in paths}
                    _measure_config(worker, dict(base, name=name, n=n, density=p), rows,
                                    too_slow)
                    for path, row in rows.items():
                        done[(name, path, n, p)] = row
                    bar.update(len(paths))
                    if on_config is not None:
                        on_config([done[k] for k in order if k in done])
    except BaseException:
        worker.kill()  # interrupted mid-configuration: no waiting for the worker to finish
        raise
    finally:
        bar.close()
        worker.close()
    return [done[k] for k in order]


def _measure_config(worker: _Worker, task: dict, rows: dict[str, dict],
                    too_slow: dict[str, list[tuple[int, float]]]) -> None:
    """Fill ``rows`` (by path) for one ``size × density`` of one predictor.

    Paths past an earlier timeout at a smaller-or-equal configuration are
    ``"skipped"``; a path that overruns is recorded as ``"timeout"`` (and
    added to ``too_slow``) and the others are timed again in a fresh worker.
    """
    n, p = task["n"], task["density"]
    active = []
    for path in rows:
        if any(n >= n0 and p >= p0 for n0, p0 in too_slow[path]):
            rows[path]["status"] = "skipped"
        else:
            active.append(path)
    while active:
        status, result = worker.ask(dict(task, paths=active))
        # a fresh process per configuration: glibc's malloc adapts its
        # thresholds to earlier frees, which moved a 1.4 ms call by 0.45 ms
        worker.close()
        if status == "timeout":  # that path overran: the others go again
            result = {result: "timeout"}
        elif status != "ok":  # an exception in the worker, or the worker died
            result = dict.fromkeys(active, f"error: {result}")
        for path, res in result.items():
            row = rows[path]
            if isinstance(res, dict):
                row.update(res)
                row["ratio_to_gemm"] = row["seconds"] / row["gemm_seconds"]
            else:
                row["status"] = res
                if res == "timeout":
                    too_slow[path].append((n, p))
            active.remove(path)


def _empty_row(name: str, path: str, backend: str, n: int, p: float, threads: int,
               versions: str) -> dict:
    return {"method": name, "path": path, "backend": backend, "n_in": n, "n_out": n,
            "density": p, "nnz": round(p * n * n), "status": "ok", "seconds": float("nan"),
            "seconds_min": float("nan"), "repeats": 0, "gemm_seconds": float("nan"),
            "ratio_to_gemm": float("nan"), "peak_mb": float("nan"), "threads": threads,
            "versions": versions}


def to_csv(rows: Sequence[dict]) -> str:
    """Tidy CSV text, one row per configuration, columns :data:`COLUMNS`."""
    return csv_text(rows, COLUMNS)


#: columns of :data:`COLUMNS` that hold text / integers (the others are floats)
_TEXT = {"method", "path", "backend", "status", "versions"}
_INTS = {"n_in", "n_out", "nnz", "repeats", "threads"}


def _parse(key: str, v: str) -> Any:
    if key in _TEXT:
        return v
    if key in _INTS:
        return int(v) if v else 0
    return float(v) if v else float("nan")


def read_csv(path: str | os.PathLike) -> list[dict]:
    """Rows of a CSV written by :func:`to_csv`, with numbers parsed back."""
    return _read_csv(path, _parse)


def write_results(rows: Sequence[dict], outdir: str | os.PathLike,
                  stem: str = "linkpred_runtime", plot: bool = True,
                  extra: Sequence[str] = ()) -> dict[str, Path]:
    """Write ``stem.csv``, ``stem.md`` (``extra`` markdown lines after its introduction)
    and (with matplotlib) ``stem.png``, atomically."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    paths = {"csv": outdir / f"{stem}.csv", "md": outdir / f"{stem}.md"}
    atomic_write_text(paths["csv"], to_csv(rows))
    atomic_write_text(paths["md"], to_markdown(rows, extra))
    if plot:
        from .._fs import atomic_path
        from ..plot import runtime

        axes = runtime(rows)
        fig = np.ravel(axes)[0].figure
        paths["png"] = outdir / f"{stem}.png"
        with atomic_path(paths["png"]) as tmp:
            fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
        import matplotlib.pyplot as plt

        plt.close(fig)
    return paths


def to_markdown(rows: Sequence[dict], extra: Sequence[str] = ()) -> str:
    """Markdown report: ``extra`` lines (a caller's section), then seconds per configuration."""
    from ._report import to_markdown as _md

    return _md(rows, extra)
