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

__all__ = ["initial_mask", "keep_scores", "regrowth_scores", "uniform_missing"]


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


def keep_scores(kind: str, W: torch.Tensor, grad: torch.Tensor | None, index: torch.Tensor, *,
                alpha: float, delta: float) -> tuple[torch.Tensor, bool]:
    """Scores of the existing links at flat ``index`` (higher = keep), and whether to sample.

    ``kind`` is a removal or prune component. Relative importance and Eq. 2
    sum over the links in ``index`` only (the layer's current topology).
    """
    W = W.detach()
    if kind in ("magnitude", "magnitude_gradient", "magnitude_historical"):
        s = W.reshape(-1)[index].abs()
        if kind == "magnitude_gradient" and grad is not None:
            s = s + 0.01 * grad.detach().reshape(-1)[index].abs().to(s.dtype)
        return s, False
    if kind == "ri":
        return sampling.removal_scores_at(W, index, alpha=0.0, delta=0.5), False
    if kind == "magnitude_soft":
        return sampling.removal_scores_at(W, index, alpha=1.0, delta=delta), True
    if kind == "ri_soft":
        return sampling.removal_scores_at(W, index, alpha=0.0, delta=delta), True
    if kind == "soft":
        return sampling.removal_scores_at(W, index, alpha=alpha, delta=delta), True
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
        if grad is None:
            return torch.zeros(mask.shape, dtype=dtype, device=mask.device)
        return grad.detach().abs().to(dtype).masked_fill(mask, 0)
    from ..linkpred import predict

    S = predict(mask.T, base)
    if not isinstance(S, torch.Tensor):  # a backend that answered in another family
        S = torch.as_tensor(np.asarray(S.toarray() if hasattr(S, "toarray") else S))
    # (out, in) view; choose_links rejects NaN/negative/inf scores on candidates
    return S.to(device=mask.device).T


def uniform_missing(mask: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    """``k`` distinct flat positions drawn uniformly among the False entries of ``mask``.

    Rejection sampling (expected O(k) work) while the mask is sparse; a full
    random-key pass otherwise.
    """
    flat = mask.reshape(-1)
    n = flat.numel()
    n_missing = n - int(flat.sum())
    if k > n_missing:
        raise ValueError(f"cannot add {k} links: only {n_missing} are missing")
    if k == 0:
        return torch.empty(0, dtype=torch.long, device=mask.device)
    if n_missing < 2 * k or n_missing < n // 2:
        cand = torch.nonzero(~flat).reshape(-1)
        keys = torch.rand(cand.numel(), generator=gen, device=mask.device)
        return cand[torch.topk(keys, k, largest=False, sorted=False).indices]
    out = torch.empty(0, dtype=torch.long, device=mask.device)
    while out.numel() < k:
        draw = torch.randint(0, n, (int((k - out.numel()) * 1.3) + 16,), generator=gen,
                             device=mask.device)
        merged = torch.cat([out, draw[~flat[draw]]])
        # keep first occurrences in draw order (deterministic, no sort bias)
        uniq, inv = torch.unique(merged, return_inverse=True)
        first = torch.full((uniq.numel(),), merged.numel(), dtype=torch.long,
                           device=mask.device).scatter_reduce_(
            0, inv, torch.arange(merged.numel(), device=mask.device), reduce="amin")
        out = merged[torch.sort(first).values]
    return out[:k]
