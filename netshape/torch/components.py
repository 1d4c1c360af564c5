"""The per-layer pieces of a topology update: initial masks, removal and regrowth scores.

Everything works on one slot's weight ``W`` / mask ``M`` of shape
``(n_out, n_in)`` (torch orientation); netshape's graph core takes the
biadjacency ``A = M.T`` of shape ``(n_in, n_out)``.
"""

from __future__ import annotations

import numpy as np
import torch

from .. import sampling
from .._validation import link_count

__all__ = ["initial_mask", "keep_scores", "regrowth_scores"]


def _generator(name: str):
    import netshape.generators as gen

    return getattr(gen, name)


def initial_mask(cfg: dict, n_in: int, n_out: int, density: float, seed: int,
                 calib: torch.Tensor | None, device) -> torch.Tensor:
    """Initial bool mask ``(n_out, n_in)`` from ``cfg['init']`` at ``density``.

    The generators return a scipy csr biadjacency ``(n_in, n_out)``; the mask
    is its transpose. ``density == 1`` gives the full mask whatever the init.
    """
    if density >= 1.0:
        return torch.ones(n_out, n_in, dtype=torch.bool, device=device)
    init = cfg["init"]
    if init == "dense":
        raise ValueError(
            "init='dense' needs a density schedule that starts at 1 (initial_density=1.0); "
            f"the first density here is {density!r}"
        )
    if init == "er":
        A = _generator("er")(n_in, n_out, density, rng=seed)
    elif init == "brf":
        A = _generator("brf")(n_in, n_out, density, r=cfg["r"], degrees=cfg["degrees"], rng=seed)
    elif init == "bsw":
        A = _generator("bsw")(n_in, n_out, density, beta=cfg["beta"], rng=seed)
    elif init == "bsf":
        A = _generator("bsf")(n_in, n_out, density, gamma=cfg["gamma"], rng=seed)
    else:  # csti: correlation of the layer's calibration inputs
        X = calib.detach().reshape(-1, n_in).double().cpu().numpy()
        A = _generator("csti")(X, n_out, density, rng=seed)
    want = link_count(density, n_in, n_out)
    dense = np.asarray(A.toarray() if hasattr(A, "toarray") else A, dtype=bool)
    if dense.shape != (n_in, n_out) or int(dense.sum()) != want:
        raise RuntimeError(
            f"generator {init!r} returned shape {dense.shape} with {int(dense.sum())} links; "
            f"expected ({n_in}, {n_out}) with {want}"
        )
    return torch.from_numpy(np.ascontiguousarray(dense.T)).to(device)


def _abs_grad(grad: torch.Tensor | None, W: torch.Tensor) -> torch.Tensor:
    if grad is None:
        return torch.zeros_like(W)
    return grad.detach().abs().to(W.dtype)


def keep_scores(kind: str, W: torch.Tensor, grad: torch.Tensor | None, *, alpha: float,
                delta: float) -> tuple[torch.Tensor, bool]:
    """Scores of existing links (higher = keep) and whether to sample (soft) or take top-k.

    ``kind`` is a removal or prune component; ``W`` is zero off the mask.
    """
    W = W.detach()
    if kind == "magnitude":
        return W.abs(), False
    if kind == "ri":
        return sampling.removal_scores(W, alpha=0.0, delta=0.5), False
    if kind == "magnitude_gradient":
        return W.abs() + 0.01 * _abs_grad(grad, W), False
    if kind == "magnitude_soft":
        return sampling.removal_scores(W, alpha=1.0, delta=delta), True
    if kind == "ri_soft":
        return sampling.removal_scores(W, alpha=0.0, delta=delta), True
    if kind == "soft":
        return sampling.removal_scores(W, alpha=alpha, delta=delta), True
    raise ValueError(f"removal={kind!r} has no scores")


def regrowth_scores(kind: str, mask: torch.Tensor, grad: torch.Tensor | None,
                    dtype: torch.dtype) -> torch.Tensor | None:
    """Scores of missing links, ``(n_out, n_in)``; None means uniform (SET).

    Link predictors run on the mask's device through :func:`netshape.linkpred.predict`
    with ``A = mask.T`` and give exactly 0 on existing links.
    """
    base = kind[: -len("_soft")] if kind.endswith("_soft") else kind
    if base == "random":
        return None
    if base == "gradient":
        g = _abs_grad(grad, mask.to(dtype))
        return torch.where(mask, torch.zeros((), dtype=g.dtype, device=g.device), g)
    from ..linkpred import predict

    S = predict(mask.T, base)
    if not isinstance(S, torch.Tensor):  # a backend that answered in another family
        S = torch.as_tensor(np.asarray(S.toarray() if hasattr(S, "toarray") else S))
    S = S.to(device=mask.device).T
    if not bool(torch.isfinite(S).all()):
        raise RuntimeError(f"link predictor {base!r} returned non-finite scores")
    return S.clamp_min(0)
