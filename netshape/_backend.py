"""Array-family resolution: numpy/scipy, torch, CuPy — all imported lazily.

The graph core must never import torch or CuPy at import time; these helpers
look at ``sys.modules`` first so that classifying an array never triggers an
import, and only import a library when a caller explicitly asks for it.
"""

from __future__ import annotations

import functools
import importlib
import sys
from types import ModuleType
from typing import Any

__all__ = [
    "array_family",
    "has_cupy",
    "has_torch",
    "require",
    "to_numpy",
]

#: extra that provides each optional module, used in ImportError messages
_EXTRA_OF = {
    "torch": "torch",
    "safetensors": "torch",
    "matplotlib": "plot",
    "powerlaw": "powerlaw",
    "igraph": "igraph",
    "cupy": "gpu",
    "cupyx": "gpu",
    "llvmlite": "fast",
    "sklearn": "train",
}


def require(module: str) -> ModuleType:
    """Import an optional dependency or raise an ImportError naming its extra.

    >>> require("numpy").__name__
    'numpy'
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        root = module.split(".")[0]
        extra = _EXTRA_OF.get(root, "all")
        raise ImportError(
            f"netshape needs the optional dependency {root!r} for this; "
            f"install it with: pip install 'netshape[{extra}]'"
        ) from exc


@functools.cache
def has_torch() -> bool:
    """True when torch can be imported (no device check)."""
    try:
        importlib.import_module("torch")
    except Exception:  # noqa: BLE001 - a broken install counts as absent
        return False
    return True


@functools.cache
def has_cupy() -> bool:
    """True only when CuPy imports *and* a CUDA device answers.

    CuPy installs on machines without a GPU; its absence or a missing driver is
    never an error, it just means CuPy paths are not used.
    """
    try:
        cupy = importlib.import_module("cupy")
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return False
        cupy.zeros(1).sum().item()  # the device really answers
    except Exception:  # noqa: BLE001 - any failure means "no usable CuPy"
        return False
    return True


def array_family(x: Any) -> str:
    """Classify ``x`` as ``"scipy"``, ``"numpy"``, ``"torch"``, ``"cupy"`` or ``"other"``.

    Never imports a library: an object can only be a torch tensor if torch is
    already imported, and likewise for CuPy.

    >>> import numpy as np, scipy.sparse as sp
    >>> array_family(np.eye(2)), array_family(sp.eye(2, format="csr"))
    ('numpy', 'scipy')
    """
    import numpy as np
    import scipy.sparse as sp

    if sp.issparse(x):
        return "scipy"
    if isinstance(x, np.ndarray):
        return "numpy"
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        return "torch"
    cupy = sys.modules.get("cupy")
    if cupy is not None and isinstance(x, cupy.ndarray):
        return "cupy"
    cupyx_sparse = sys.modules.get("cupyx.scipy.sparse")
    if cupyx_sparse is not None and cupyx_sparse.issparse(x):
        return "cupy"
    return "other"


def reject_meta(x: Any, name: str = "A") -> None:
    """Raise for a torch tensor on the ``meta`` device: it has a shape but no values."""
    dev = getattr(x, "device", None)
    if getattr(dev, "type", None) == "meta":
        raise ValueError(f"{name} is a tensor on the 'meta' device, which holds no values; "
                         "materialise it first (e.g. model.to_empty(device='cpu') and load "
                         "the weights)")


def to_numpy(x: Any):
    """Return a numpy array or scipy sparse array on the host for any supported input."""
    import numpy as np

    fam = array_family(x)
    if fam in ("numpy", "scipy"):
        return x
    if fam == "torch":
        torch = sys.modules["torch"]
        reject_meta(x)
        if x.layout != torch.strided:
            x = x.to_dense()
        return x.detach().cpu().numpy()
    if fam == "cupy":
        return x.get()  # cupy.ndarray -> numpy, cupyx sparse -> scipy sparse
    return np.asarray(x)
