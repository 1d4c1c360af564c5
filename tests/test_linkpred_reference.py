"""Plain-loop implementations of the link-prediction definitions (test oracles).

Written straight from the formulas in the spec notes, one path or one node at a
time, with no matrix algebra, so that they share no code with netshape.linkpred.
"""

from __future__ import annotations

import math

import numpy as np


def random_layers(seed: int, count: int, max_side: int, max_density: float = 0.7):
    """``count`` random boolean layers of random shapes up to ``max_side`` and densities."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        n_in, n_out = rng.integers(1, max_side, size=2)
        out.append(rng.random((n_in, n_out)) < rng.uniform(0.005, max_density))
    return out


def _sets(A):
    A = np.asarray(A) != 0
    n_in, n_out = A.shape
    out_of = [set(np.flatnonzero(A[u])) for u in range(n_in)]   # outputs of input u
    in_of = [set(np.flatnonzero(A[:, j])) for j in range(n_out)]  # inputs of output j
    return A, out_of, in_of


def l3_walks(A):
    """List of (u, a, b, j) with u-a-b-j a length-3 path (u != b, a != j) to a missing link."""
    A, out_of, in_of = _sets(A)
    paths = []
    for u in range(A.shape[0]):
        for a in out_of[u]:
            for b in in_of[a]:
                if b == u:
                    continue
                for j in out_of[b]:
                    if j != a and not A[u, j]:
                        paths.append((u, a, b, j))
    return paths


def ch_node(A, ch3=False):
    """CH2-L3n (or CH3-L3n) by looping over intermediate nodes."""
    A, out_of, in_of = _sets(A)
    n_in, n_out = A.shape
    S = np.zeros((n_in, n_out))
    for u in range(n_in):
        for j in range(n_out):
            if A[u, j]:
                continue
            s = 0.0
            for v in in_of[j]:  # inputs linked to j
                c = len(out_of[u] & out_of[v])
                if v != u and c > 0:
                    s += (1.0 if ch3 else 1.0 + c) / max(1, len(out_of[v]) - c)
            for k in out_of[u]:  # outputs linked to u
                c = len(in_of[j] & in_of[k])
                if k != j and c > 0:
                    s += (1.0 if ch3 else 1.0 + c) / max(1, len(in_of[k]) - c)
            S[u, j] = s
    return S


def ch_path(A, ch2=False):
    """CH3-L3p (or CH2-L3p) by enumerating every length-3 path."""
    A, out_of, in_of = _sets(A)
    S = np.zeros(A.shape)
    for u, a, b, j in l3_walks(A):
        di_a = len(in_of[a] & in_of[j])
        di_b = len(out_of[b] & out_of[u])
        de_a = len(in_of[a]) - 1 - di_a
        de_b = len(out_of[b]) - 1 - di_b
        term = 1.0 / math.sqrt((1 + de_a) * (1 + de_b))
        if ch2:
            term *= math.sqrt((1 + di_a) * (1 + di_b))
        S[u, j] += term
    return S


def path_count(A):
    A = np.asarray(A) != 0
    S = np.zeros(A.shape)
    for u, _a, _b, j in l3_walks(A):
        S[u, j] += 1
    return S


def ra_l3(A):
    A, out_of, in_of = _sets(A)
    S = np.zeros(A.shape)
    for u, a, b, j in l3_walks(A):
        S[u, j] += 1.0 / math.sqrt(len(in_of[a]) * len(out_of[b]))
    return S


def support(A):
    return path_count(A) > 0


# --- the oracles themselves, on hand-computed layers --------------------------------------

TINY = np.array([[1, 1, 0, 0], [1, 0, 1, 0], [0, 1, 1, 1]])


def test_oracle_ch2_l3n_hand_computed():
    # S[0, 2]: via input 1 (1+1)/(2-1) = 2, via input 2 (1+1)/(3-1) = 1,
    # via output 0 (1+1)/(2-1) = 2, via output 1 (1+1)/(2-1) = 2  -> 7
    S = ch_node(TINY)
    assert S[0, 2] == 7.0
    assert S[2, 0] == 8.0
    assert S[0, 0] == 0.0  # existing link


def test_oracle_paths_hand_computed():
    # paths from input 0 to output 3: 0-1-2-3 only
    assert l3_walks(TINY).count((0, 1, 2, 3)) == 1
    assert path_count(TINY)[0, 3] == 1
    # de*_a for a=1, j=3: deg 2 - 1 - |{2}| = 0; de*_b for b=2, u=0: deg 3 - 1 - |{1}| = 1
    assert np.isclose(ch_path(TINY)[0, 3], 1 / np.sqrt(1 * 2))
    assert np.isclose(ch_path(TINY, ch2=True)[0, 3], np.sqrt(2 * 2) / np.sqrt(1 * 2))
    assert np.isclose(ra_l3(TINY)[0, 3], 1 / np.sqrt(2 * 3))


def test_oracle_no_paths_in_a_matching():
    assert not support(np.eye(4)).any()


# --- input families (torch only where a test asks for it) ---

def converter(family: str):
    """numpy array -> ``family`` ("numpy", "scipy", "torch"); torch skips the test without it."""
    if family == "torch":
        import pytest

        return pytest.importorskip("torch").from_numpy
    import scipy.sparse as sp

    return {"numpy": lambda A: A, "scipy": sp.csr_array}[family]


def as_numpy(S):
    """Scores of any family as a numpy array (torch tensors through ``.numpy()``)."""
    if hasattr(S, "toarray"):
        return S.toarray()
    return np.asarray(S.numpy() if hasattr(S, "numpy") and not isinstance(S, np.ndarray) else S)
