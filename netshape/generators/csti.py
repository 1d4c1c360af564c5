"""Correlated sparse topological initialisation (CSTI) from calibration data."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .._random import as_rng
from .._validation import as_data_matrix, check_positive_int, link_count
from ._lattice import csr_from_linear
from .er import uniform_cells

__all__ = ["csti", "feature_correlations"]


def feature_correlations(X: np.ndarray) -> np.ndarray:
    """``|Pearson correlation|`` between the columns of ``X``; constant columns give 0, not NaN.

    >>> X = np.array([[0., 1., 5.], [1., 3., 5.], [2., 5., 5.]])
    >>> feature_correlations(X).round(6).tolist()
    [[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]]
    """
    Xc = X - X.mean(axis=0)
    norm = np.sqrt(np.einsum("ij,ij->j", Xc, Xc))
    C = Xc.T @ Xc
    with np.errstate(divide="ignore", invalid="ignore"):
        C = C / np.outer(norm, norm)
    C[~np.isfinite(C)] = 0.0  # a constant feature has no correlation (NaN -> 0)
    return np.clip(np.abs(C), 0.0, 1.0)


def csti(X, n_out: int, density: float, *, rng=None) -> sp.csr_array:
    r"""CSTI layer: keep the links between the most strongly correlated features.

    With calibration data ``X`` of shape ``(n_samples, n_in)`` and
    :math:`C_{ab} = |\mathrm{corr}(x_a, x_b)|` (Pearson; a constant feature
    correlates 0 with everything, itself included), output ``j`` is identified
    with the input feature at its centre on the input ring,
    :math:`p(j) = \lfloor (j + \tfrac12)\, n_{in} / n_{out} \rfloor` (the
    same placement as :func:`~netshape.generators.brf`), so when
    ``n_out == n_in`` it is feature ``j`` itself, the square correlation layer
    of the original CSTI. The score of link ``(i, j)`` is
    :math:`S_{ij} = C_{i, p(j)}`, and the ``m = round(density n_{in} n_{out})``
    highest scores are kept (exactly ``m``, the authors' code keeps one more);
    equal scores at the cut (e.g. outputs sharing a feature when
    ``n_out > n_in``) are chosen uniformly at random with ``rng``.

    Parameters
    ----------
    X : array_like, shape (n_samples, n_in)
        Calibration data, at least two samples; NaN or infinity raise.
    n_out : int
        Number of output neurons.
    density : float in (0, 1]
        Fraction of possible links.
    rng : None, int, SeedSequence, BitGenerator or Generator
        Breaks ties at the cut (SPEC 7).

    Returns
    -------
    scipy.sparse.csr_array of bool, shape ``(n_in, n_out)``
        Input features are rows, outputs columns; ``A.T`` is the torch mask.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(200, 1))
    >>> X = np.hstack([z, z + 0.01 * rng.normal(size=(200, 1)), rng.normal(size=(200, 2))])
    >>> A = csti(X, 4, 0.375, rng=0)
    >>> A.toarray().astype(int)
    array([[1, 1, 0, 0],
           [1, 1, 0, 0],
           [0, 0, 1, 0],
           [0, 0, 0, 1]])
    """
    X = as_data_matrix(X, "X")
    n_samples, n_in = X.shape
    if n_samples < 2:
        raise ValueError(f"X has {n_samples} sample(s); Pearson correlation needs at least 2 rows")
    if n_in < 1:
        raise ValueError("X has no features (0 columns); need at least 1")
    n_out = check_positive_int(n_out, "n_out")
    m = link_count(density, n_in, n_out)
    gen = as_rng(rng)
    j = np.arange(n_out, dtype=np.int64)
    centre = ((2 * j + 1) * n_in) // (2 * n_out)
    S = feature_correlations(X)[:, centre].ravel()
    total = S.size
    cut = np.partition(S, total - m)[total - m]  # the m-th largest score
    above = np.flatnonzero(S > cut)
    ties = np.flatnonzero(S == cut)
    pick = ties[uniform_cells(ties.size, m - above.size, gen)]
    return csr_from_linear(n_in, n_out, np.sort(np.concatenate([above, pick])))
