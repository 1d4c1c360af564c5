"""Node-based Cannistraci-Hebb link prediction on a bipartite layer: CH2-L3n and CH3-L3n."""

from __future__ import annotations

import math
import sys
from typing import Any

from .._validation import check_choice, check_positive_int
from ._dense import DEFAULT_BUDGET, bitgram_ready, dense_numpy, dense_torch, dense_xp
from ._inputs import Layer, as_layer, to_family
from ._sparse import sparse_numpy, sparse_scores, sparse_to_dense

__all__ = ["ch2_l3n", "ch3_l3n", "choose_path"]

#: computation routes (``method=``): scipy's convention, "auto" picks one
METHODS = ("auto", "dense", "sparse")

#: time model of the two paths, fitted on the benchmark machine (2 shared cores,
#: OpenBLAS, 2 threads; benchmarks/results/linkpred_runtime.md), keyed by whether
#: the compiled kernels are present: seconds per multiply-add of the dense product
#: ``n_in n_out (n_in + n_out)`` (with them, the bit-packed route: one BLAS product;
#: without, four products) and per call; seconds per sparse walk step (without them
#: scipy builds a sparse result, ~10x slower), per dense result entry and per call
DENSE_S_PER_MAC = {True: 12e-12, False: 60e-12}
DENSE_S_FIXED = 0.0006
SPARSE_S_PER_STEP = {True: 2e-9, False: 25e-9}
SPARSE_S_PER_ENTRY, SPARSE_S_FIXED = 3e-9, 0.0005


def _expected_walk_work(n_in: int, n_out: int, nnz: int) -> float:
    """Expected walk steps of the sparse path for a random layer with ``nnz`` links.

    ``F A`` costs ``nnz(C) * <deg_in>`` with ``nnz(C) ≈ n_in² (1 - (1 - p²)^n_out)``
    (pairs of inputs with a common output), and symmetrically for ``A F'ᵀ``.
    """
    p = nnz / (n_in * n_out)
    q = min(p * p, 1 - 1e-12)
    pairs_in = n_in * n_in * -math.expm1(n_out * math.log1p(-q))
    pairs_out = n_out * n_out * -math.expm1(n_in * math.log1p(-q))
    return pairs_in * (nnz / n_in) + pairs_out * (nnz / n_out) + nnz


def choose_path(n_in: int, n_out: int, nnz: int) -> str:
    """The path ``method="auto"`` takes: ``"sparse"`` or ``"dense"``.

    A time model fitted on the benchmark (constants at module level):

    - dense: ``0.6 ms + 12 ps * n_in n_out (n_in + n_out)`` — the
      multiply-adds of the final product, whatever the density (60 ps
      without the compiled kernels, where four products run);
    - sparse: ``0.5 ms + 2 ns * W + 3 ns * n_in n_out`` — one step per
      length-3 walk, ``W ≈`` :func:`_expected_walk_work` (25 ns per step
      without them), plus filling the dense result.

    Auto takes the cheaper one. With the compiled kernels, on square layers that is sparse
    below about 2.7 % density at 256, 2.2 % at 512, 1.8 % at 1024, 1.5 % at
    2048 and 1.2 % at 4096.

    >>> choose_path(4096, 4096, int(0.003 * 4096 * 4096)), choose_path(1024, 1024, 52429)
    ('sparse', 'dense')
    """
    if nnz == 0:
        return "sparse"
    from ._kernels import compiled_available

    cells = n_in * n_out
    fast = compiled_available()
    dense = DENSE_S_FIXED + DENSE_S_PER_MAC[fast] * cells * (n_in + n_out)
    sparse = SPARSE_S_FIXED + SPARSE_S_PER_STEP[fast] * _expected_walk_work(n_in, n_out, nnz) \
        + SPARSE_S_PER_ENTRY * cells
    return "sparse" if sparse < dense else "dense"


def _node_scores(A: Any, method: str, memory_budget: int | None, ch3: bool) -> Any:
    method = check_choice(method, "method", METHODS)
    budget = DEFAULT_BUDGET if memory_budget is None else check_positive_int(
        memory_budget, "memory_budget")
    layer: Layer = as_layer(A)
    n_in, n_out = layer.shape
    fam = layer.family
    if method != "auto":
        path = method
    elif fam == "torch" and layer.dense.device.type != "cpu":
        path = "dense"  # the sparse path of a device tensor runs on the host: never faster
    else:
        path = choose_path(n_in, n_out, layer.nnz)
    if fam == "torch":
        if path == "dense" and (layer.dense.device.type != "cpu" or not bitgram_ready(
                n_in, n_out, budget)):
            return dense_torch(layer.dense, ch3=ch3, budget=budget)
        if path == "dense":  # on the CPU the bit-packed route does half the products
            return to_family(dense_numpy(layer.host_dense(), ch3=ch3, budget=budget), layer)
        return to_family(sparse_to_dense(layer.csr, ch3=ch3), layer)
    if fam == "cupy":
        cupy = sys.modules["cupy"]
        if path == "dense":
            return dense_xp(cupy, layer.dense, ch3=ch3, budget=budget)
        import cupyx.scipy.sparse as cpsp

        S = sparse_scores(cpsp.csr_matrix(layer.dense.astype(cupy.float32)), ch3=ch3,
                          spx=cpsp, xp=cupy)
        return S.toarray()
    if path == "dense":
        return dense_numpy(layer.host_dense(), ch3=ch3, budget=budget)
    if fam == "scipy" and method == "sparse":
        return sparse_numpy(layer.csr, ch3=ch3)
    return sparse_to_dense(layer.csr, ch3=ch3)


def ch2_l3n(A: Any, *, method: str = "auto", memory_budget: int | None = None) -> Any:
    r"""CH2-L3n scores for every missing link of a bipartite layer.

    For a missing link between input ``u`` and output ``j``, with
    :math:`C = AA^\top` and :math:`C' = A^\top A` the common-neighbour counts
    on each side,

    .. math::

        S(u, j) = \sum_{v:\,A_{vj}=1,\ C_{uv}>0} \frac{1 + C_{uv}}{\max(1, d_v - C_{uv})}
                + \sum_{k:\,A_{uk}=1,\ C'_{jk}>0} \frac{1 + C'_{jk}}{\max(1, d_k - C'_{jk})}

    i.e. each intermediate node ``z`` of a length-3 path adds
    :math:`(1 + d_i^*)/(1 + d_e^*)` with :math:`d_i^*` its links into the seed's
    neighbourhood and :math:`d_e^*` its other links (paper Eq. 3; the clamp
    covers :math:`N(v) \subseteq N(u)`). In matrix form :math:`S = FA + (F'A^\top)^\top`
    with the existing links set to 0.

    Parameters
    ----------
    A : scipy sparse, numpy array, torch tensor (CPU/CUDA) or CuPy array
        Biadjacency of shape ``(n_in, n_out)`` — rows are the layer's inputs,
        columns its outputs (``nn.Linear.weight`` is ``(out, in)``: pass
        ``mask.T``). Any nonzero entry is a link; NaN/inf raise.
    method : {"auto", "dense", "sparse"}
        ``"dense"``: the matrix form. With the ``fast`` extra, host input (numpy, scipy,
        CPU torch) has its common-neighbour counts computed exactly by
        popcount on bit-packed rows and both halves summed in one float32
        BLAS product ``[F | A] @ [A ; F'ᵀ]``;
        otherwise (CUDA torch or CuPy on their device, no ``fast`` extra, or beyond
        ``memory_budget``) four float32 products, two of them symmetric
        rank-k updates, row-tiled to fit the budget.
        ``"sparse"``: scipy.sparse (cupyx for CuPy) products whose cost follows
        the number of length-3 walks, far faster on ultra-sparse layers.
        ``"auto"``: :func:`choose_path` from size and density (a time model
        fitted on the benchmark) — sparse below about 1.8 % density at
        1024 x 1024, 1.5 % at 2048 x 2048 and 1.2 % at 4096 x 4096, dense above.
        A torch tensor on a GPU always takes the dense path (its sparse path
        would run on the host).
    memory_budget : int, optional
        Bytes allowed for the working matrices of the dense path (default
        1 GiB): the bit-packed route needs ``4 (n_in² + n_out² + 2 n_in n_out)``
        bytes, otherwise the square intermediates are row-tiled to fit. The
        result and the input come on top: a 16384 x 16384 layer runs in about
        3.3 GB.

    Returns
    -------
    scores
        float32, shape ``(n_in, n_out)``, exactly 0 on existing links, finite,
        and > 0 exactly where a length-3 path joins ``u`` and ``j``. Same family
        and device as ``A``: numpy array for numpy or scipy input, except that
        scipy input with ``method="sparse"`` returns a scipy ``csr_array``
        (only positive scores stored); torch tensor on ``A.device``; CuPy array.

    Examples
    --------
    >>> import numpy as np
    >>> A = np.array([[1, 1, 0, 0], [1, 0, 1, 0], [0, 1, 1, 1]])
    >>> ch2_l3n(A)
    array([[0., 0., 7., 3.],
           [0., 7., 0., 3.],
           [8., 0., 0., 0.]], dtype=float32)

    ``S[0, 2] = 7``: via input 1, (1+1)/(2-1) = 2, and via input 2,
    (1+1)/(3-1) = 1; via output 0, (1+1)/(2-1) = 2, and via output 1, 2.
    """
    return _node_scores(A, method, memory_budget, ch3=False)


def ch3_l3n(A: Any, *, method: str = "auto", memory_budget: int | None = None) -> Any:
    r"""CH3-L3n: :func:`ch2_l3n` with numerator 1 instead of :math:`1 + d_i^*`.

    Each intermediate node adds :math:`1 / \max(1, d_v - C_{uv})`. Same
    parameters, orientation ``(n_in, n_out)``, support and return types as
    :func:`ch2_l3n`.

    >>> import numpy as np
    >>> ch3_l3n(np.array([[1, 1, 0], [0, 1, 1], [1, 0, 0]]))[0, 2]
    np.float32(2.0)
    """
    return _node_scores(A, method, memory_budget, ch3=True)
