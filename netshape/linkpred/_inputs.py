"""Input normalisation for the link predictors, without leaving the input's device.

Every predictor accepts a scipy sparse array/matrix, a numpy array, a torch
tensor (CPU or CUDA, any real or bool dtype) or a CuPy array of shape
``(n_in, n_out)``; any nonzero entry is a link. Host inputs are checked by
:func:`netshape._validation.as_biadjacency` rules; device inputs are checked on
the device so that a CUDA layer is never copied to the host just to be validated.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from .._backend import array_family, reject_meta
from .._validation import (
    _check_values,
    as_biadjacency,
    check_biadjacency_shape,
    complex_topology,
    nonfinite_topology,
    unsupported_topology,
)


@dataclass
class Layer:
    """A validated topology: ``family`` of the input and the links in a usable form.

    ``dense`` is a boolean dense array of the input's own library (numpy, torch
    or CuPy) on the input's device, or None when the input was scipy sparse;
    ``csr`` is a host ``csr_array`` of bool, built on demand.
    """

    family: str
    shape: tuple[int, int]
    dense: Any = None
    _csr: sp.csr_array | None = None

    @property
    def csr(self) -> sp.csr_array:
        if self._csr is None:
            self._csr = as_biadjacency(_to_host_bool(self.dense, self.family))
        return self._csr

    @property
    def nnz(self) -> int:
        if self._csr is not None:
            return int(self._csr.nnz)
        if self.family == "torch":
            return int(self.dense.count_nonzero())
        if self.family == "cupy":
            return int(self.dense.sum())
        return int(np.count_nonzero(self.dense))

    def host_dense(self) -> np.ndarray:
        """Boolean numpy array on the host."""
        if self.family == "numpy":
            return self.dense
        if self.dense is None:
            return self.csr.toarray()
        return _to_host_bool(self.dense, self.family)


def _to_host_bool(x: Any, family: str) -> np.ndarray:
    if family == "torch":
        return x.detach().cpu().numpy()
    if family == "cupy":
        return x.get()
    return np.asarray(x)


def _torch_layer(A: Any, name: str) -> Layer:
    torch = sys.modules["torch"]
    reject_meta(A, name)
    shape = check_biadjacency_shape(tuple(A.shape), name)
    if A.layout != torch.strided:
        A = A.to_dense()
    A = A.detach()
    if A.is_complex():
        raise complex_topology(name, A.dtype)
    if A.is_floating_point() and not bool(torch.isfinite(A).all()):
        raise nonfinite_topology(name)
    return Layer("torch", shape, dense=A != 0)


def _cupy_layer(A: Any, name: str) -> Layer:
    cupy = sys.modules["cupy"]
    shape = check_biadjacency_shape(tuple(A.shape), name)
    if not isinstance(A, cupy.ndarray):  # cupyx sparse
        A = A.toarray()
    if cupy.iscomplexobj(A):
        raise complex_topology(name, A.dtype)
    if A.dtype.kind == "f" and not bool(cupy.isfinite(A).all()):
        raise nonfinite_topology(name)
    return Layer("cupy", shape, dense=A != 0)


def _numpy_layer(A: np.ndarray, name: str) -> Layer:
    shape = check_biadjacency_shape(A.shape, name)
    if A.dtype != bool:
        _check_values(A, name, strict=False)
        A = A != 0
    return Layer("numpy", shape, dense=np.ascontiguousarray(A))


def as_layer(A: Any, name: str = "A") -> Layer:
    """Validate ``A`` and wrap it; raises TypeError/ValueError naming ``name``."""
    fam = array_family(A)
    if fam == "torch":
        return _torch_layer(A, name)
    if fam == "cupy":
        return _cupy_layer(A, name)
    if fam == "numpy":
        return _numpy_layer(A, name)
    if fam == "scipy":
        csr = as_biadjacency(A, name)
        return Layer("scipy", csr.shape, _csr=csr)
    if isinstance(A, (list, tuple)):
        return _numpy_layer(np.asarray(A), name)
    raise unsupported_topology(A, name)


def to_family(S: Any, layer: Layer) -> Any:
    """Move host scores (numpy or scipy sparse, float32) to the input's family and device."""
    if layer.family == "torch":
        torch = sys.modules["torch"]
        if sp.issparse(S):
            S = S.toarray()
        return torch.from_numpy(np.ascontiguousarray(S, dtype=np.float32)).to(layer.dense.device)
    if layer.family == "cupy":
        cupy = sys.modules["cupy"]
        if sp.issparse(S):
            S = S.toarray()
        with cupy.cuda.Device(layer.dense.device.id):
            return cupy.asarray(S, dtype=cupy.float32)
    return S
