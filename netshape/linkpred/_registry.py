"""Name -> predictor registry behind :func:`netshape.linkpred.predict`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._validation import check_choice
from .baselines import l3_paths, ra_l3, random_scores
from .ch2_l3n import ch2_l3n, ch3_l3n
from .ch3_l3p import ch2_l3p, ch3_l3p

__all__ = ["available", "predict"]

#: every predictor shares the contract of ``predict``; keyword arguments pass through
_REGISTRY: dict[str, Callable[..., Any]] = {
    "ch2_l3n": ch2_l3n,
    "ch3_l3n": ch3_l3n,
    "ch3_l3p": ch3_l3p,
    "ch2_l3p": ch2_l3p,
    "l3_paths": l3_paths,
    "ra_l3": ra_l3,
    "random": random_scores,
}


def available() -> tuple[str, ...]:
    """Names accepted by :func:`predict`.

    >>> available()
    ('ch2_l3n', 'ch3_l3n', 'ch3_l3p', 'ch2_l3p', 'l3_paths', 'ra_l3', 'random')
    """
    return tuple(_REGISTRY)


def predict(A: Any, name: str, **kw: Any) -> Any:
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
    **kw
        Passed to the predictor: ``method=``/``memory_budget=`` for the
        node-based ones, ``engine=`` for the path-based ones, ``rng=`` for
        ``"random"``.

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
    fn = _REGISTRY[check_choice(name, "name", _REGISTRY)]
    return fn(A, **kw)
