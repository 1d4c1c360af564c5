"""Name -> predictor registry behind :func:`netshape.linkpred.predict`.

The one list of predictor names: the CLI's choices, the torch adapter's
regrowth options and the runtime sweep all read :func:`available` (and
:func:`methods` for the computation routes each one offers).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from .._validation import check_choice
from ._ch2_l3n import METHODS as NODE_METHODS
from ._ch2_l3n import ch2_l3n, ch3_l3n
from ._ch3_l3p import METHODS as PATH_METHODS
from ._ch3_l3p import ch2_l3p, ch3_l3p
from .baselines import l3_paths, ra_l3, random_scores

__all__ = ["available", "methods", "predict"]


class _Predictor(NamedTuple):
    fn: Callable[..., Any]
    #: values of the predictor's ``method=`` (computation route); () if it has one route
    methods: tuple[str, ...] = ()
    #: True when the predictor draws random numbers (takes ``rng=``)
    seeded: bool = False


#: every predictor shares the contract of ``predict``; keyword arguments pass through
_REGISTRY: dict[str, _Predictor] = {
    "ch2_l3n": _Predictor(ch2_l3n, NODE_METHODS),
    "ch3_l3n": _Predictor(ch3_l3n, NODE_METHODS),
    "ch3_l3p": _Predictor(ch3_l3p, PATH_METHODS),
    "ch2_l3p": _Predictor(ch2_l3p, PATH_METHODS),
    "l3_paths": _Predictor(l3_paths),
    "ra_l3": _Predictor(ra_l3),
    "random": _Predictor(random_scores, seeded=True),
}


def available() -> tuple[str, ...]:
    """Names accepted by :func:`predict`.

    >>> available()
    ('ch2_l3n', 'ch3_l3n', 'ch3_l3p', 'ch2_l3p', 'l3_paths', 'ra_l3', 'random')
    """
    return tuple(_REGISTRY)


def methods(name: str) -> tuple[str, ...]:
    """Values of predictor ``name``'s ``method=`` (its computation routes, ``"auto"`` first).

    A predictor with a single route has only ``("auto",)``.

    >>> methods("ch2_l3n"), methods("ch3_l3p"), methods("l3_paths")
    (('auto', 'dense', 'sparse'), ('auto', 'numba', 'numpy'), ('auto',))
    """
    return _REGISTRY[check_choice(name, "name", _REGISTRY)].methods or ("auto",)


def predict(A: Any, name: str, *, method: str = "auto", rng: Any = None, **kw: Any) -> Any:
    """Scores for every missing link of a layer with the predictor called ``name``.

    Parameters
    ----------
    A : scipy sparse, numpy array, torch tensor (CPU/CUDA, any real or bool dtype) or CuPy array
        Biadjacency ``(n_in, n_out)``: rows are the layer's inputs, columns its
        outputs (``nn.Linear.weight`` is ``(out, in)``: pass ``mask.T``). Any
        nonzero entry is a link.
    name : str
        One of :func:`available`: ``"ch2_l3n"``, ``"ch3_l3n"``, ``"ch3_l3p"``,
        ``"ch2_l3p"``, ``"l3_paths"``, ``"ra_l3"``, ``"random"``.
    method : str
        The computation route, one of :func:`methods` ``(name)``; ``"auto"``
        (default) lets the predictor choose. Routes give the same scores.
    rng : seed, optional
        For the predictors that draw random numbers (``"random"``); the others
        are deterministic and do not use it.
    **kw
        Passed to the predictor (``memory_budget=`` for the node-based ones).

    Returns
    -------
    scores
        float32 of shape ``(n_in, n_out)``, exactly 0 on existing links, finite.
        For the CH and L3 predictors, > 0 exactly where a length-3 path exists;
        ``"random"`` is > 0 on every missing link. torch in -> torch out on the
        same device; CuPy in -> CuPy out; numpy or scipy in -> numpy out (scipy
        in with ``method="sparse"`` -> scipy ``csr_array``).

    Examples
    --------
    >>> import numpy as np
    >>> A = np.array([[1, 1, 0], [0, 1, 1], [1, 0, 0]])
    >>> predict(A, "l3_paths")[0, 2], predict(A, "random", rng=0)[0, 0]
    (np.float32(1.0), np.float32(0.0))
    """
    entry = _REGISTRY[check_choice(name, "name", _REGISTRY)]
    if entry.methods:
        kw["method"] = method
    elif method != "auto":
        raise TypeError(f"method={method!r}: predictor {name!r} has a single computation "
                        "route; leave method at 'auto'")
    if entry.seeded:
        kw["rng"] = rng
    return entry.fn(A, **kw)
