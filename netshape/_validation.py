"""The one input normaliser every public function calls.

Orientation: a layer topology is a biadjacency ``A`` of shape ``(n_in, n_out)``
— rows are the layer's input neurons, columns its outputs (``nn.Linear.weight``
is ``(out, in)``, so a torch mask is ``A.T``).

Every function that takes a topology accepts a scipy sparse array/matrix, a
numpy array, a torch tensor (any device) or a CuPy array; **any nonzero entry
is a link** (``strict=True`` rejects values other than 0/1 instead). Errors
name the argument, the offending value and what is allowed.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp

from ._backend import array_family, to_numpy

__all__ = [
    "as_biadjacency",
    "as_data_matrix",
    "as_layers",
    "canonical_csr",
    "check_biadjacency_shape",
    "check_choice",
    "DENSITY_RANGE",
    "check_density",
    "check_positive_int",
    "check_range",
    "check_real",
    "check_unit_interval",
    "link_count",
    "memory_bytes",
    "parse_sizes",
]


def check_positive_int(value: Any, name: str) -> int:
    """Return ``value`` as int if it is a positive integer, else raise.

    >>> check_positive_int(3, "n_in")
    3
    >>> check_positive_int(2.5, "n_in")
    Traceback (most recent call last):
    ...
    TypeError: n_in=2.5 must be a positive integer
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if (isinstance(value, (float, np.floating)) and float(value).is_integer()
                and 0 < value <= 2**53):
            # 4096.0 is a common slip from arithmetic; accept exact integers only (1e20 is
            # not one: floats above 2**53 no longer count every integer)
            return int(value)
        raise TypeError(f"{name}={value!r} must be a positive integer")
    if int(value) <= 0:
        raise ValueError(f"{name}={value!r} must be a positive integer (>= 1)")
    return int(value)


def check_real(value: Any, name: str) -> float:
    """Return ``value`` as a finite float, else raise naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}={value!r} must be a real number")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name}={value!r} must be finite")
    return v


def check_range(value: Any, name: str, lo: float = -math.inf, hi: float = math.inf, *,
                lo_open: bool = False, hi_open: bool = False) -> float:
    """Return ``value`` as a float if it is a real number in the range, else raise.

    The range is ``[lo, hi]``, each end open with ``lo_open`` / ``hi_open``;
    NaN is never in range, and an infinite end is reached only when closed.
    The message names the argument, its value and the range.

    >>> check_range(0.5, "zeta", 0, 1, hi_open=True)
    0.5
    >>> check_range(0, "k", 0, math.inf, lo_open=True, hi_open=True)
    Traceback (most recent call last):
    ...
    ValueError: k=0 is outside the allowed range (0, inf)
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}={value!r} must be a real number")
    x = float(value)
    if not ((x > lo if lo_open else x >= lo) and (x < hi if hi_open else x <= hi)):
        raise ValueError(f"{name}={value!r} is outside the allowed range "
                         f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}")
    return x


def check_unit_interval(value: Any, name: str) -> float:
    """Check ``value`` lies in the closed interval [0, 1] (``r``, ``beta``, ...)."""
    return check_range(value, name, 0.0, 1.0)


#: the one range of a layer's density, everywhere (generators, schedules, sparsify, runners, CLI)
DENSITY_RANGE = "(0, 1]"


def check_density(value: Any, name: str = "density") -> float:
    """Check ``value`` is a layer density: a real number in (0, 1].

    The density of a layer is the fraction of its ``n_in * n_out`` possible
    links that are present. 0 is a layer without links, which no generator,
    schedule or training run can use; 1 is the complete bipartite layer (an
    unsparsified ``nn.Linear``). Every public function and command-line option
    that takes a density checks it here, so they all accept the same values.

    >>> check_density(1)
    1.0
    >>> check_density(0.0, "densities")
    Traceback (most recent call last):
    ...
    ValueError: densities=0.0 is outside the allowed range (0, 1]
    """
    return check_range(value, name, 0.0, 1.0, lo_open=True)


def check_choice(value: Any, name: str, choices: Iterable[Any]) -> Any:
    """Check ``value`` is one of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name}={value!r} is not allowed; choose one of {allowed}")
    return value


def link_count(density: float, n_in: int, n_out: int, *, name: str = "density") -> int:
    """Exact number of links for a density: ``round(density * n_in * n_out)``.

    Rounds half up (not to even) so the count is a plain function of the
    product. A positive density that rounds to zero links raises rather than
    silently producing an empty layer.

    >>> link_count(0.05, 100, 100)
    500
    """
    density = check_density(density, name)
    total = int(n_in) * int(n_out)
    m = int(math.floor(density * total + 0.5))
    m = min(m, total)
    if m == 0:
        raise ValueError(
            f"{name}={density!r} gives 0 links on a {n_in}x{n_out} layer; "
            f"the smallest usable density is {0.5 / total:.3g}"
        )
    # a CSR layer costs about 16 bytes a link plus 8 a row; refuse what cannot fit
    need, cap = 16 * m + 8 * (int(n_in) + int(n_out) + 1), memory_bytes()
    if need > cap:
        raise ValueError(
            f"n_in={n_in}, n_out={n_out} and {name}={density!r} ask for {m} links "
            f"(about {need / 2**30:.3g} GiB), more than this machine's memory "
            f"({cap / 2**30:.3g} GiB)")
    return m


def parse_sizes(text: str, name: str = "hidden") -> tuple[int, ...]:
    """Layer sizes from ``'1568,1568,1568'`` or ``'256x3'``; raise naming ``name`` otherwise.

    >>> parse_sizes("256x3"), parse_sizes("512,256")
    ((256, 256, 256), (512, 256))
    """
    try:
        if "x" in text:
            size, count = text.lower().split("x")
            sizes = (int(size),) * int(count)
        else:
            sizes = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) <= 0:
        raise ValueError(f"{name}={text!r} must be positive sizes like '1568,1568,1568' "
                         "or '256x3'")
    return sizes


def memory_bytes() -> int:
    """Physical memory of this machine in bytes (2**40 where the OS does not say)."""
    import os

    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 2**40


def canonical_csr(A: sp.spmatrix | sp.sparray) -> sp.csr_array:
    """Boolean ``csr_array``: sorted indices, no duplicates, no explicit zeros."""
    A = sp.csr_array(A)
    A.sum_duplicates()
    A.eliminate_zeros()
    idx_dtype = np.int32 if max(A.nnz, *A.shape) < 2**31 else np.int64
    out = sp.csr_array(
        (np.ones(A.nnz, dtype=bool), A.indices.astype(idx_dtype), A.indptr.astype(idx_dtype)),
        shape=A.shape,
    )
    out.has_sorted_indices = True
    return out


def check_biadjacency_shape(shape: tuple[int, ...], name: str = "A") -> tuple[int, int]:
    """Check ``shape`` is a 2-D ``(n_in, n_out)`` with both sides non-empty; return it."""
    shape = tuple(int(x) for x in shape)
    if len(shape) != 2:
        raise ValueError(f"{name} must be 2-D (n_in, n_out); got {len(shape)}-D shape {shape}")
    if shape[0] == 0 or shape[1] == 0:
        raise ValueError(f"{name} has an empty dimension, shape {shape}; both sides need neurons")
    return shape[0], shape[1]


def unsupported_topology(A: Any, name: str) -> TypeError:
    """The error for a topology of a type no function accepts."""
    return TypeError(
        f"{name} of type {type(A).__name__} is not a supported topology; pass a scipy "
        "sparse array/matrix, a numpy array, a torch tensor or a CuPy array"
    )


def complex_topology(name: str, dtype: Any) -> TypeError:
    """The error for a topology with complex values (host or device)."""
    return TypeError(f"{name} must be real, got dtype {dtype}")


def nonfinite_topology(name: str, bad: Any = None) -> ValueError:
    """The error for a topology holding NaN or inf (``bad``: the value, when at hand)."""
    what = "a non-finite value" if bad is None else f"a non-finite value ({bad})"
    return ValueError(f"{name} contains {what}; only finite values allowed")


def _check_values(values: np.ndarray, name: str, strict: bool) -> None:
    if values.dtype == bool:
        return
    if not (np.issubdtype(values.dtype, np.number)):
        raise TypeError(f"{name} must hold numbers or booleans, got dtype {values.dtype}")
    if np.issubdtype(values.dtype, np.complexfloating):
        raise complex_topology(name, values.dtype)
    if np.issubdtype(values.dtype, np.floating) and not np.all(np.isfinite(values)):
        raise nonfinite_topology(name, values[~np.isfinite(values)][0])
    if strict and not np.all((values == 0) | (values == 1)):
        bad = values[(values != 0) & (values != 1)][0]
        raise ValueError(f"{name} must be binary (0/1); found the value {bad}")


def as_biadjacency(A: Any, name: str = "A", *, strict: bool = False) -> sp.csr_array:
    """Normalise any supported input to a canonical boolean ``csr_array`` on the host.

    Parameters
    ----------
    A : scipy sparse array/matrix, numpy array, torch tensor or CuPy array
        A 2-D biadjacency of shape ``(n_in, n_out)``; any nonzero is a link.
    name : str
        Argument name used in error messages.
    strict : bool
        If True, values other than 0 and 1 raise instead of counting as links.

    Returns
    -------
    scipy.sparse.csr_array of bool

    Examples
    --------
    >>> import numpy as np
    >>> as_biadjacency(np.array([[0, 2.5], [1, 0]])).toarray()
    array([[False,  True],
           [ True, False]])
    """
    fam = array_family(A)
    if fam == "other":
        if isinstance(A, (list, tuple)):
            A = np.asarray(A)
        else:
            raise unsupported_topology(A, name)
    A = to_numpy(A)
    check_biadjacency_shape(A.shape, name)
    if sp.issparse(A):
        A = sp.csr_array(A)
        _check_values(A.data, name, strict)
        return canonical_csr(A)
    A = np.asarray(A)
    _check_values(A, name, strict)
    return canonical_csr(sp.csr_array(A != 0))


def _is_one_layer(x: Any) -> bool:
    """An array, or a nested list of numbers (rows) — not a collection of layers."""
    if sp.issparse(x) or hasattr(x, "shape"):
        return True
    return (isinstance(x, (list, tuple)) and len(x) > 0 and isinstance(x[0], (list, tuple))
            and all(isinstance(v, numbers.Number) for v in x[0]))


def as_layers(layers: Any, name: str = "layers", *,
              single: bool = False) -> tuple[str, list[Any], list[sp.csr_array]]:
    """Normalise a collection of layer topologies: ``(kind, keys, canonical layers)``.

    The one rule for every function that takes several layers (percolation,
    paths, neurons, exploration). ``kind`` is ``"mapping"`` for a mapping
    ``name -> layer`` (keys: its keys, in order), ``"sequence"`` for any other
    iterable of layers (keys: ``0 .. L-1``), and — only with ``single=True`` —
    ``"single"`` for one layer (keys: ``[None]``). Each layer is a biadjacency
    ``(n_in, n_out)`` passed through :func:`as_biadjacency`, named
    ``name[key]`` in errors. An empty collection raises.

    >>> import numpy as np
    >>> kind, keys, mats = as_layers({"fc1": np.eye(2), "fc2": np.ones((2, 1))})
    >>> kind, keys, [m.shape for m in mats]
    ('mapping', ['fc1', 'fc2'], [(2, 2), (2, 1)])
    >>> as_layers(np.eye(2), single=True)[0]
    'single'
    """
    if isinstance(layers, Mapping):
        kind, keys = "mapping", list(layers)
        mats = [as_biadjacency(v, name=f"{name}[{k!r}]") for k, v in layers.items()]
    elif _is_one_layer(layers):
        if not single:
            raise TypeError(f"{name} must be a sequence or mapping of layers, not a single "
                            "array; wrap one layer in a list")
        return "single", [None], [as_biadjacency(layers, name=name)]
    elif isinstance(layers, (str, bytes)) or not isinstance(layers, Iterable):
        raise TypeError(f"{name} of type {type(layers).__name__} is not allowed; pass a "
                        "sequence of biadjacencies (a chain) or a mapping name -> biadjacency")
    else:
        items = list(layers)
        kind, keys = "sequence", list(range(len(items)))
        mats = [as_biadjacency(v, name=f"{name}[{i}]") for i, v in enumerate(items)]
    if not mats:
        raise ValueError(f"{name} is empty; pass at least one layer")
    return kind, keys, mats


def as_data_matrix(X: Any, name: str = "X") -> np.ndarray:
    """Calibration data ``(n_samples, n_features)`` as finite float64; NaN/inf raise."""
    X = to_numpy(X)
    if sp.issparse(X):
        X = X.toarray()
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features); got shape {X.shape}")
    if not np.issubdtype(X.dtype, np.number) or np.issubdtype(X.dtype, np.complexfloating):
        raise TypeError(f"{name} must hold real numbers, got dtype {X.dtype}")
    X = X.astype(np.float64, copy=False)
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{name} contains NaN or infinite values; clean the data first")
    return X
