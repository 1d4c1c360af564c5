"""Bipartite scale-free (BSF) layer with a target power-law exponent, plus the paper's two fixes."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .._random import as_rng, sorted_distinct, weighted_sample_without_replacement
from .._validation import check_choice, check_real
from ._lattice import check_sizes, csr_from_linear, fixed_degrees

__all__ = ["bsf"]


def _power_weights(n: int, gamma: float, gen: np.random.Generator) -> np.ndarray:
    # Chung–Lu: expected degree of the rank-i node ∝ i^(-1/(gamma-1)) gives P(k) ~ k^-gamma;
    # a random permutation puts the hubs on random neurons
    w = np.arange(1, n + 1, dtype=np.float64) ** (-1.0 / (gamma - 1.0))
    return w[gen.permutation(n)]


def _first_distinct(lin: np.ndarray, m: int) -> np.ndarray:
    """The first ``m`` distinct values of ``lin`` in draw order (all of them if fewer)."""
    order = np.argsort(lin, kind="stable")
    s = lin[order]
    first = np.ones(s.size, dtype=bool)
    first[1:] = s[1:] != s[:-1]
    pos = np.sort(order[first])
    return lin[pos[:m]]


def _pairs_product(w: np.ndarray, v: np.ndarray, m: int, gen: np.random.Generator) -> np.ndarray:
    """``m`` distinct cells by successive sampling with probability ∝ ``w_i v_j``; linear ids."""
    n_in, n_out = w.size, v.size
    total = n_in * n_out
    if 3 * m > total:
        # dense: exponential keys over every cell, O(n_in n_out) = O(m)
        return np.sort(weighted_sample_without_replacement(np.outer(w, v).ravel(), m, gen))
    cw, cv = np.cumsum(w), np.cumsum(v)
    drawn = np.empty(0, dtype=np.int64)
    batch = int(1.2 * m) + 64
    while True:
        i = np.minimum(np.searchsorted(cw, gen.random(batch) * cw[-1], side="right"), n_in - 1)
        j = np.minimum(np.searchsorted(cv, gen.random(batch) * cv[-1], side="right"), n_out - 1)
        # drawing with replacement and skipping repeats is successive sampling exactly
        drawn = np.concatenate([drawn, i * n_out + j])
        got = _first_distinct(drawn, m)
        if got.size == m:
            return np.sort(got)
        drawn = got
        batch = int(1.5 * (m - got.size) * max(1.0, drawn.size / max(1, got.size))) + 64


def _rows_fixed(d: np.ndarray, v: np.ndarray, gen: np.random.Generator) -> np.ndarray:
    """Row ``i`` gets ``d_i`` distinct columns by successive sampling ∝ ``v``; linear ids.

    Exponential keys per row: ``O(n_in * n_out)``, fine for the layer sizes
    where equal partition is used (a network's first layer).
    """
    n_out = v.size
    parts = []
    for i in np.flatnonzero(d):
        cols = weighted_sample_without_replacement(v, int(d[i]), gen)
        parts.append(i * n_out + np.sort(cols))
    return np.concatenate(parts) if parts else np.empty(0, np.int64)


def _order(deg: np.ndarray, mode: str, gen: np.random.Generator) -> np.ndarray:
    if mode == "rigid":
        return np.argsort(-deg, kind="stable")
    # Plackett–Luce with weights deg + 1: Gumbel-perturbed log weights, largest first
    return np.argsort(-(np.log1p(deg) + gen.gumbel(size=deg.size)), kind="stable")


def bsf(n_in: int, n_out: int, density: float, *, gamma: float = 2.76,
        equal_partition: bool = False, resort: str | None = None, rng=None) -> sp.csr_array:
    r"""Bipartite scale-free layer: power-law degrees with exponent ``gamma`` on both sides.

    A bipartite Chung–Lu model with exactly ``m`` links: every neuron gets a
    weight :math:`w \propto \rho^{-1/(\gamma-1)}` (``rho`` = its rank 1, 2, ...,
    the ranks shuffled so hubs land on random neurons), and ``m`` distinct links
    are drawn by successive sampling with probability
    :math:`\propto w_i v_j`. The expected degrees follow the weights, so the
    degree distribution of each side has the tail :math:`P(k) \sim k^{-\gamma}`
    (the paper's BSF, built from a Barabási–Albert graph, has ``gamma = 2.76``;
    a fitted exponent on a 20000 x 20000 layer with mean degree 10 lies
    within 0.3 of ``gamma``).

    Parameters
    ----------
    n_in, n_out : int
        Number of input and output neurons.
    density : float in (0, 1]
        Fraction of possible links; exactly ``round(density * n_in * n_out)``.
    gamma : float > 2
        Target power-law exponent of the degree distributions.
    equal_partition : bool
        The paper's fix 1: input degrees are equalised (``floor`` or ``ceil``
        of ``m / n_in``, assigned at random) and each input draws its outputs
        by successive sampling ∝ the output weights, so only the output side
        stays scale-free.
    resort : {None, "rigid", "soft"}
        The paper's fix 2, so that hubs line up with the next layer. Both the
        rows (inputs) and the columns (outputs) are permuted by degree,
        highest first: ``"rigid"`` sorts exactly (ties keep their order);
        ``"soft"`` draws a Plackett–Luce order with weights ``degree + 1``
        (hubs tend to come first). Only labels change: the graph and both
        degree sequences are the same as without ``resort``.
    rng : None, int, SeedSequence, BitGenerator or Generator
        Randomness (SPEC 7).

    Returns
    -------
    A : scipy.sparse.csr_array of bool, shape ``(n_in, n_out)``
        Inputs along the rows and outputs along the columns (the torch
        mask is ``A.T``).

    Examples
    --------
    >>> A = bsf(200, 100, 0.05, resort="rigid", rng=0)
    >>> A.nnz
    1000
    >>> deg = A.sum(axis=0)
    >>> bool(all(deg[:-1] >= deg[1:]))
    True
    """
    n_in, n_out, m = check_sizes(n_in, n_out, density)
    gamma = check_real(gamma, "gamma")
    if not gamma > 2.0:
        raise ValueError(f"gamma={gamma!r} is outside the allowed range (2, inf)")
    if not isinstance(equal_partition, (bool, np.bool_)):
        raise TypeError(f"equal_partition={equal_partition!r} must be True or False")
    check_choice(resort, "resort", (None, "rigid", "soft"))
    gen = as_rng(rng)
    v = _power_weights(n_out, gamma, gen)
    if equal_partition:
        d = fixed_degrees(m, n_in)[gen.permutation(n_in)]
        lin = _rows_fixed(d, v, gen)
    else:
        w = _power_weights(n_in, gamma, gen)
        lin = _pairs_product(w, v, m, gen)
    A = csr_from_linear(n_in, n_out, sorted_distinct(lin))
    if resort is not None:
        rows = _order(np.diff(A.indptr), resort, gen)
        cols = _order(np.bincount(A.indices, minlength=n_out), resort, gen)
        inv = np.empty(n_out, dtype=np.int64)
        inv[cols] = np.arange(n_out)
        A = A[rows]
        A = csr_from_linear(n_in, n_out, sorted_distinct(
            np.repeat(np.arange(n_in, dtype=np.int64), np.diff(A.indptr)) * n_out
            + inv[A.indices]))
    return A
