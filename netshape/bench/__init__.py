"""Link-prediction runtime sweeps: the engine behind ``netshape bench`` and ``benchmarks/``.

:mod:`~netshape.bench._sweep` runs the grid and writes the results,
:mod:`~netshape.bench._worker` times one configuration in a child process,
:mod:`~netshape.bench._report` renders the markdown tables. The project's
own performance targets live in ``benchmarks/linkpred_runtime.py``, not here.

>>> from netshape.bench import COLUMNS
>>> COLUMNS[:3]
('method', 'path', 'backend')
"""

from ._sweep import (
    COLUMNS,
    DEFAULT_DENSITIES,
    DEFAULT_METHODS,
    DEFAULT_PREDICTORS,
    DEFAULT_SIZES,
    QUICK,
    check_arguments,
    read_csv,
    run,
    to_csv,
    to_markdown,
    write_results,
)

__all__ = ["COLUMNS", "DEFAULT_DENSITIES", "DEFAULT_METHODS", "DEFAULT_PREDICTORS",
           "DEFAULT_SIZES", "QUICK", "check_arguments", "read_csv", "run", "to_csv",
           "to_markdown", "write_results"]
