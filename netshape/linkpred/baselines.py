"""Baseline link predictors: L3 path counts, L3 resource allocation, random scores."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from .._random import as_rng
from ._inputs import Layer, as_layer, to_family

__all__ = ["l3_paths", "ra_l3", "random_scores"]


def _float_links(layer: Layer) -> tuple[Any, Any]:
    """``(A as float32, boolean links)`` in the layer's own library and device."""
    if layer.family == "torch":
        return layer.dense.to(sys.modules["torch"].float32), layer.dense
    if layer.family == "cupy":
        return layer.dense.astype(sys.modules["cupy"].float32), layer.dense
    Ab = layer.host_dense()
    return Ab.astype(np.float32), Ab


def _zero_links(S: Any, Ab: Any) -> Any:
    S[Ab] = 0.0
    return S


def l3_paths(A: Any) -> Any:
    r"""Number of length-3 paths between each input ``u`` and output ``j``: :math:`AA^\top A`.

    Parameters
    ----------
    A : scipy sparse, numpy array, torch tensor or CuPy array
        Biadjacency ``(n_in, n_out)``: rows are inputs, columns outputs
        (``nn.Linear.weight`` is ``(out, in)``: pass ``mask.T``). Any nonzero is a link.

    Returns
    -------
    scores
        float32 ``(n_in, n_out)``, 0 on existing links, in ``A``'s family
        (numpy for scipy input) and on its device. Exact up to 2**24 paths.

    Examples
    --------
    >>> import numpy as np
    >>> l3_paths(np.array([[1, 1, 0], [0, 1, 1], [1, 0, 0]]))
    array([[0., 0., 1.],
           [1., 0., 0.],
           [0., 1., 0.]], dtype=float32)
    """
    layer = as_layer(A)
    A32, Ab = _float_links(layer)
    return _zero_links((A32 @ A32.T) @ A32, Ab)


def ra_l3(A: Any) -> Any:
    r"""L3 resource allocation: each path :math:`u - a - b - j` adds :math:`1/\sqrt{d_a d_b}`.

    In matrix form :math:`A D_{out}^{-1/2} A^\top D_{in}^{-1/2} A`, existing
    links set to 0. Same input, orientation ``(n_in, n_out)`` and return
    conventions as :func:`l3_paths`.

    >>> import numpy as np
    >>> ra_l3(np.array([[1, 1, 0], [0, 1, 1], [1, 0, 0]]))[0, 2]
    np.float32(0.5)
    """
    layer = as_layer(A)
    A32, Ab = _float_links(layer)
    # isolated neurons have degree 0 but no paths: clip keeps their factor finite
    inv_out = A32.sum(0).clip(1.0) ** -0.5
    inv_in = A32.sum(1).clip(1.0) ** -0.5
    X = (A32 * inv_out[None, :]) @ A32.T
    X *= inv_in[None, :]
    return _zero_links(X @ A32, Ab)


def random_scores(A: Any, *, rng: Any = None) -> Any:
    """Uniform random scores in (0, 1] on the missing links, 0 on existing ones.

    The regrowth baseline (SET-style random growth). ``rng`` follows SPEC 7;
    the same ``rng`` gives the same scores whatever ``A``'s family or device.

    Parameters
    ----------
    A : scipy sparse, numpy array, torch tensor or CuPy array
        Biadjacency ``(n_in, n_out)``: rows are inputs, columns outputs
        (``nn.Linear.weight`` is ``(out, in)``: pass ``mask.T``).
    rng : None, int, SeedSequence, BitGenerator or Generator

    Returns
    -------
    scores
        float32 ``(n_in, n_out)`` in ``A``'s family (numpy for scipy input) and device.

    >>> import numpy as np
    >>> S = random_scores(np.eye(3), rng=0)
    >>> bool((S.diagonal() == 0).all() and (S[~np.eye(3, dtype=bool)] > 0).all())
    True
    """
    layer = as_layer(A)
    gen = as_rng(rng)
    S = (1.0 - gen.random(layer.shape, dtype=np.float32)).astype(np.float32)
    np.copyto(S, 0.0, where=layer.host_dense())
    return to_family(S, layer)
