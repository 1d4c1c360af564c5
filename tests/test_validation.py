import numpy as np
import pytest
import scipy.sparse as sp

from netshape._validation import (
    as_biadjacency,
    as_data_matrix,
    check_choice,
    check_density,
    check_positive_int,
    check_unit_interval,
    link_count,
)


def _is_canonical(A):
    assert isinstance(A, sp.csr_array)
    assert A.dtype == bool
    assert A.has_canonical_format
    assert np.all(A.data)


@pytest.mark.parametrize(
    "make",
    [
        lambda M: M,
        lambda M: M.astype(bool),
        lambda M: sp.csr_matrix(M),
        lambda M: sp.coo_array(M),
        lambda M: sp.csc_array(M * 3.5),
        lambda M: M.tolist(),
    ],
)
def test_as_biadjacency_families(make):
    M = np.array([[0, 1, 0], [1, 0, 1]], dtype=float)
    A = as_biadjacency(make(M))
    _is_canonical(A)
    np.testing.assert_array_equal(A.toarray(), M != 0)


def test_as_biadjacency_torch():
    torch = pytest.importorskip("torch")
    M = torch.tensor([[0.0, -2.0], [1.0, 0.0]])
    A = as_biadjacency(M)
    _is_canonical(A)
    np.testing.assert_array_equal(A.toarray(), [[False, True], [True, False]])
    A2 = as_biadjacency(M.to_sparse())
    np.testing.assert_array_equal(A2.toarray(), A.toarray())


def test_duplicates_are_merged_and_zeros_dropped():
    coo = sp.coo_array((np.array([1.0, 1.0, 0.0]), (np.array([0, 0, 1]), np.array([1, 1, 0]))),
                       shape=(2, 2))
    A = as_biadjacency(coo)
    assert A.nnz == 1
    _is_canonical(A)


@pytest.mark.parametrize(
    "bad, exc, words",
    [
        (np.zeros(3), ValueError, "2-D"),
        (np.zeros((2, 2, 2)), ValueError, "2-D"),
        (np.zeros((0, 3)), ValueError, "empty"),
        (np.array([[np.nan, 1.0]]), ValueError, "non-finite"),
        (np.array([[np.inf, 1.0]]), ValueError, "non-finite"),
        (np.array([["a", "b"]]), TypeError, "dtype"),
        (np.array([[1j, 0]]), TypeError, "real"),
        ("not an array", TypeError, "not a supported"),
    ],
)
def test_as_biadjacency_bad(bad, exc, words):
    with pytest.raises(exc, match=words):
        as_biadjacency(bad, name="W")


def test_strict_rejects_non_binary():
    with pytest.raises(ValueError, match="W must be binary"):
        as_biadjacency(np.array([[0, 2]]), name="W", strict=True)
    assert as_biadjacency(np.array([[0, 1]]), strict=True).nnz == 1


def test_checks():
    assert check_positive_int(np.int64(4), "n") == 4
    assert check_positive_int(4.0, "n") == 4
    with pytest.raises(ValueError, match="n_out=0"):
        check_positive_int(0, "n_out")
    with pytest.raises(TypeError, match="n_in=True"):
        check_positive_int(True, "n_in")
    with pytest.raises(TypeError, match="n_in='3'"):
        check_positive_int("3", "n_in")
    assert check_density(1.0) == 1.0
    for bad in (0.0, -0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="density="):
            check_density(bad)
    assert check_density(1.0) == 1.0  # the complete layer: one rule, no exceptions
    with pytest.raises(TypeError, match="density='x'"):
        check_density("x")
    assert check_unit_interval(0, "r") == 0.0
    with pytest.raises(ValueError, match=r"r=1.2 is outside the allowed range \[0, 1\]"):
        check_unit_interval(1.2, "r")
    with pytest.raises(ValueError, match="degrees='poisson'.*'fixed'"):
        check_choice("poisson", "degrees", ("fixed", "uniform"))


def test_link_count_rounds_half_up_and_refuses_zero():
    assert link_count(0.05, 4096, 16384) == round(0.05 * 4096 * 16384)
    assert link_count(0.25, 2, 3) == 2  # 1.5 -> 2 (half up, not to even)
    assert link_count(1.0, 7, 3) == 21
    with pytest.raises(ValueError, match="gives 0 links"):
        link_count(0.001, 10, 10)


def test_as_data_matrix():
    X = as_data_matrix([[1, 2], [3, 4]])
    assert X.dtype == np.float64
    with pytest.raises(ValueError, match="X contains NaN"):
        as_data_matrix(np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match="2-D"):
        as_data_matrix(np.zeros(3))


def test_atomic_write_permissions_and_no_partial_file(tmp_path):
    import os

    from netshape._fs import atomic_path, atomic_write_text

    target = tmp_path / "out.txt"
    atomic_write_text(target, "x")
    mask = os.umask(0)
    os.umask(mask)
    assert (target.stat().st_mode & 0o777) == (0o666 & ~mask)
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "half.txt") as tmp:
        tmp.write_text("partial")
        raise RuntimeError("crash mid-write")
    assert not (tmp_path / "half.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
