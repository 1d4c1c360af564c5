"""Shared pieces of the generators: argument checks, degree sequences, the ring lattice.

Orientation: every topology is a biadjacency of shape ``(n_in, n_out)``;
rows are inputs, columns outputs (a torch mask is ``A.T``).

Geometry shared by BSW and BRF: input ``i`` sits at position ``i + 0.5`` on a
ring of circumference ``n_in``; output ``j`` has its centre at
``c_j = (j + 0.5) * n_in / n_out`` (a fractional stride, so the centres are
spread evenly whatever the ratio ``n_in / n_out``).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .._validation import check_positive_int, link_count

__all__ = [
    "check_sizes",
    "csr_from_columns",
    "csr_from_linear",
    "fixed_degrees",
    "lattice",
    "linear_indices",
    "window_starts",
]


def check_sizes(n_in, n_out, density) -> tuple[int, int, int]:
    """Validate sizes and density; return ``(n_in, n_out, m)`` with ``m`` the exact link count."""
    n_in = check_positive_int(n_in, "n_in")
    n_out = check_positive_int(n_out, "n_out")
    m = link_count(density, n_in, n_out)
    return n_in, n_out, m


def fixed_degrees(m: int, n_out: int) -> np.ndarray:
    """Output degrees ``floor(K)`` or ``floor(K) + 1`` (``K = m / n_out``), summing to ``m``.

    The ``+1`` outputs are spread evenly: ``k_j = floor((j+1) m / n) - floor(j m / n)``.

    >>> fixed_degrees(7, 3).tolist()
    [2, 2, 3]
    """
    j = np.arange(n_out + 1, dtype=np.int64)
    edges = (j * m) // n_out
    return np.diff(edges)


def window_starts(n_in: int, n_out: int, k: np.ndarray) -> np.ndarray:
    """First input of the ``k_j`` inputs nearest to each output's centre (ring distance).

    The window ``[a_j, a_j + k_j)`` (mod ``n_in``) has its midpoint ``a_j + k_j/2``
    as close as possible to ``c_j``: ``a_j = floor(c_j - k_j/2 + 1/2)``, computed in
    integers so there is no rounding; an exact tie (two windows equally near)
    goes to the window further along the ring.
    """
    j = np.arange(n_out, dtype=np.int64)
    two_n = 2 * n_out
    return ((2 * j + 1) * n_in - k.astype(np.int64) * n_out + n_out) // two_n


def csr_from_columns(n_in: int, n_out: int, counts: np.ndarray, rows: np.ndarray) -> sp.csr_array:
    """Canonical CSR from per-output lists of distinct inputs (output ``j`` owns ``counts[j]``).

    The column-major data is read as CSC and transposed by scipy's counting
    sort, which leaves every row's column indices sorted.
    """
    indptr = np.zeros(n_out + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    idx_dtype = np.int32 if max(indptr[-1], n_in, n_out) < 2**31 else np.int64
    csc = sp.csc_array(
        (np.ones(rows.size, dtype=bool), rows.astype(idx_dtype), indptr.astype(idx_dtype)),
        shape=(n_in, n_out),
    )
    csr = csc.tocsr()
    # the inputs of an output are distinct and every value is True, so the
    # transpose is already canonical: skip canonical_csr's passes over the links
    out = sp.csr_array((csr.data, csr.indices.astype(idx_dtype, copy=False),
                        csr.indptr.astype(idx_dtype, copy=False)), shape=(n_in, n_out))
    out.has_sorted_indices = True
    out.has_canonical_format = True
    return out


def csr_from_linear(n_in: int, n_out: int, lin: np.ndarray) -> sp.csr_array:
    """Canonical CSR from sorted, distinct linear indices ``i * n_out + j``."""
    rows = lin // n_out
    cols = lin - rows * n_out
    indptr = np.searchsorted(rows, np.arange(n_in + 1, dtype=np.int64))
    idx_dtype = np.int32 if max(lin.size, n_in, n_out) < 2**31 else np.int64
    out = sp.csr_array(
        (np.ones(lin.size, dtype=bool), cols.astype(idx_dtype), indptr.astype(idx_dtype)),
        shape=(n_in, n_out),
    )
    out.has_sorted_indices = True
    return out


def lattice(n_in: int, n_out: int, k: np.ndarray) -> sp.csr_array:
    """Ring lattice: output ``j`` links to the ``k_j`` inputs nearest to its centre.

    With ``n_out * min(k) >= n_in`` the windows tile the ring, so every input
    has at least one link (consecutive centres are ``n_in / n_out <= k`` apart).

    >>> lattice(4, 2, np.array([2, 2])).toarray().astype(int)
    array([[1, 0],
           [1, 0],
           [0, 1],
           [0, 1]])
    """
    k = np.asarray(k, dtype=np.int64)
    starts = window_starts(n_in, n_out, k)
    owner = np.repeat(np.arange(n_out, dtype=np.int64), k)
    first = np.zeros(n_out, dtype=np.int64)
    np.cumsum(k[:-1], out=first[1:])
    step = np.arange(owner.size, dtype=np.int64) - first[owner]
    rows = (starts[owner] + step) % n_in
    return csr_from_columns(n_in, n_out, k, rows)


def linear_indices(A: sp.csr_array) -> np.ndarray:
    """Sorted linear indices ``i * n_out + j`` of a canonical CSR array."""
    n_in, n_out = A.shape
    rows = np.repeat(np.arange(n_in, dtype=np.int64), np.diff(A.indptr))
    return rows * n_out + A.indices.astype(np.int64)
