r"""Soft removal scores (paper Eq. 2) and link selection for regrowth/removal.

Works on numpy arrays and on torch tensors (any device); torch is imported
only when a tensor is passed. The samplers draw without replacement with
*exponential keys* (Efraimidis–Spirakis / Gumbel top-k), so they have no
limit on the number of categories (``torch.multinomial`` stops at 2**24).

Orientation does not matter here: Eq. 2 is symmetric in rows and columns, and
the selection functions work on flattened arrays.
"""

from __future__ import annotations

import math
import numbers
import sys
from typing import Any

import numpy as np

from ._random import (
    as_rng,
    uniform_sample_without_replacement,
    weighted_sample_without_replacement,
)
from ._validation import check_range

__all__ = ["choose_links", "removal_scores", "removal_scores_at", "sample_indices",
           "torch_generator"]


def _is_torch(x: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _check_torch_array(x, name: str):
    """Refuse torch layouts and devices the dense formulas cannot read, naming ``name``."""
    import torch

    if x.layout != torch.strided:
        raise TypeError(f"{name} is a {x.layout} tensor; pass a dense (strided) tensor, "
                        f"e.g. {name}.to_dense()")
    if x.device.type == "meta":
        raise ValueError(f"{name} is on the meta device and holds no values; "
                         "materialize it first")
    return x


def _check_alpha_delta(alpha: float, delta: float) -> tuple[float, float]:
    return (check_range(alpha, "alpha", 0, 1),
            check_range(delta, "delta", 0, 1, lo_open=True, hi_open=True))


def _numpy_weights(W, name: str = "W") -> np.ndarray:
    try:
        a = np.asarray(W, dtype=np.float64)
    except (TypeError, ValueError) as exc:  # ragged lists, strings, objects
        raise TypeError(f"{name} must be a 2-D numeric array; got {type(W).__name__} "
                        f"({exc})") from None
    if a.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {a.shape}")
    return a


def _check_finite(ok: bool, name: str = "W") -> None:
    if not ok:
        raise ValueError(f"{name} has NaN or infinite weights; removal scores need finite "
                         "weights (check the training for divergence)")


def removal_scores(W, *, alpha: float = 1.0, delta: float = 0.5):
    r"""Importance of each existing link for soft removal (paper Eq. 2).

    .. math::

        S_{ij} = \left(\frac{|W_{ij}|/2}{\alpha + (1-\alpha)\sum_k |W_{ik}|}
               + \frac{|W_{ij}|/2}{\alpha + (1-\alpha)\sum_k |W_{kj}|}\right)^{\delta/(1-\delta)}

    ``alpha = 1`` gives the weight magnitude :math:`|W|`, ``alpha = 0`` half
    the relative importance (Eq. 1); ``delta`` sets the softness (0.5:
    exponent 1, 0.75: exponent 3). Higher scores are more likely kept. A zero
    weight scores exactly 0 (also when its whole row and column are zero, where
    Eq. 2 would read 0/0).

    Parameters
    ----------
    W : numpy.ndarray or torch.Tensor, 2-D
        Weights; entries off the mask must already be zero.
    alpha : float in [0, 1]
    delta : float in (0, 1)

    Returns
    -------
    Same family, device and shape as ``W`` (float64 for numpy, ``W``'s float
    dtype for torch).

    Examples
    --------
    >>> import numpy as np
    >>> W = np.array([[1.0, -3.0], [0.0, 2.0]])
    >>> removal_scores(W, alpha=1.0, delta=0.5)
    array([[1., 3.],
           [0., 2.]])
    >>> removal_scores(W, alpha=0.0, delta=0.5).round(3)
    array([[0.625, 0.675],
           [0.   , 0.7  ]])
    """
    alpha, delta = _check_alpha_delta(alpha, delta)
    expo = delta / (1.0 - delta)
    if _is_torch(W):
        import torch

        _check_torch_array(W, "W")
        if W.ndim != 2:
            raise ValueError(f"W must be 2-D, got shape {tuple(W.shape)}")
        a = W.detach()
        a = (a if a.is_floating_point() else a.float()).abs()  # bool/int: abs() of a float
        _check_finite(bool(torch.isfinite(a).all()))
        row = alpha + (1.0 - alpha) * a.sum(dim=1, keepdim=True)
        col = alpha + (1.0 - alpha) * a.sum(dim=0, keepdim=True)
        # where a == 0 its sums may be 0 too; clamp the denominators, the numerator is 0
        tiny = torch.finfo(a.dtype).tiny
        s = 0.5 * a / row.clamp_min(tiny) + 0.5 * a / col.clamp_min(tiny)
        return s if expo == 1.0 else s.pow(expo)
    a = np.abs(_numpy_weights(W))
    _check_finite(bool(np.isfinite(a).all()))
    row = alpha + (1.0 - alpha) * a.sum(axis=1, keepdims=True)
    col = alpha + (1.0 - alpha) * a.sum(axis=0, keepdims=True)
    tiny = np.finfo(np.float64).tiny
    s = 0.5 * a / np.maximum(row, tiny) + 0.5 * a / np.maximum(col, tiny)
    return s if expo == 1.0 else s**expo


def _check_index(lo: int, hi: int, size: int) -> None:
    if lo < 0 or hi >= size:
        raise ValueError(f"index holds positions from {lo} to {hi}; W has {size} entries, so "
                         f"the allowed flat positions are 0 to {size - 1}")


def torch_generator(rng, device=None):
    """A ``torch.Generator`` on ``device`` seeded from the numpy ``rng``.

    A ``torch.Generator`` passed in is returned unchanged. Drawing the seed
    advances ``rng``, so every randomness stays under the one ``rng=``.
    """
    import torch

    if isinstance(rng, torch.Generator):
        return rng
    try:
        dev = torch.device(device) if device is not None else torch.device("cpu")
        g = torch.Generator(device=dev)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device={device!r} is not a device torch can draw random numbers "
                         f"on here ({exc})") from None
    seed = int(as_rng(rng).integers(0, 2**63 - 1))
    g.manual_seed(seed)
    return g


def _check_k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or int(k) < 0:
        raise ValueError(f"k={k!r} must be a non-negative integer")
    return int(k)


def _check_temperature(temperature: Any) -> float:
    return check_range(temperature, "temperature", 0, math.inf, lo_open=True, hi_open=True)


def sample_indices(weights, k: int, *, temperature: float = 1.0, rng=None):
    r"""Draw ``k`` distinct indices with probability :math:`\propto w^{1/T}`.

    Successive sampling without replacement (the semantics of
    ``torch.multinomial(..., replacement=False)``), by exponential keys in log
    space: :math:`\mathrm{key}_i = \log E_i - \log(w_i)/T`, the ``k`` smallest
    win. No limit on ``len(weights)``; zero weights are never drawn.

    Parameters
    ----------
    weights : 1-D numpy array or torch tensor, finite, non-negative
    k : int, at most the number of positive weights
    temperature : float > 0
        ``T = 1`` samples :math:`\propto w`; small ``T`` approaches top-k.
    rng : numpy-style ``rng`` (see :func:`netshape._random.as_rng`) or a
        ``torch.Generator`` for tensors.

    Returns
    -------
    int64 indices in draw order: numpy array, or a torch tensor on the
    weights' device.

    Examples
    --------
    >>> import numpy as np
    >>> sorted(sample_indices(np.array([0.0, 2.0, 0.0, 1.0]), 2, rng=0).tolist())
    [1, 3]
    """
    k = _check_k(k)
    T = _check_temperature(temperature)
    if _is_torch(weights):
        import torch

        w = weights.detach().reshape(-1)
        if not w.is_floating_point():
            w = w.double()
        if w.numel() and (not bool(torch.isfinite(w).all()) or bool((w < 0).any())):
            raise ValueError("weights must be finite and non-negative")
        pos = torch.nonzero(w > 0).reshape(-1)
        if k > pos.numel():
            raise ValueError(
                f"k={k} exceeds the number of positive weights ({pos.numel()})"
            )
        if k == 0:
            return torch.empty(0, dtype=torch.long, device=w.device)
        return pos[_exp_key_topk(w[pos], k, T, torch_generator(rng, w.device))]
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    if w.size and (not np.all(np.isfinite(w)) or np.any(w < 0)):
        raise ValueError("weights must be finite and non-negative")
    if T == 1.0:
        return weighted_sample_without_replacement(w, k, rng)
    pos = np.flatnonzero(w > 0)
    if k > pos.size:
        raise ValueError(f"k={k} exceeds the number of positive weights ({pos.size})")
    logw = np.log(w[pos]) / T
    scaled = np.exp(logw - logw.max()) if pos.size else logw
    if np.count_nonzero(scaled) >= k:
        return pos[weighted_sample_without_replacement(scaled, k, rng)]
    # w^(1/T) underflows for tiny T: same distribution, keys kept in log space
    keys = np.log(as_rng(rng).standard_exponential(pos.size)) - logw
    part = np.argpartition(keys, k - 1)[:k] if k < pos.size else np.arange(pos.size)
    return pos[part[np.argsort(keys[part], kind="stable")]].astype(np.int64)


def choose_links(scores, k: int, *, allowed, soft: bool = False, temperature: float = 1.0,
                 rng=None):
    """Pick ``k`` distinct positions among ``allowed``, guided by ``scores``.

    The one selection rule of removal ("which links to keep") and regrowth
    ("which missing links to add"):

    1. candidates are the ``allowed`` positions; those with a positive score
       are preferred;
    2. hard mode takes the ``k`` highest positive scores, soft mode samples
       ``k`` of them :math:`\\propto` score^(1/T) without replacement;
    3. when fewer than ``k`` candidates score above zero, all of them are
       taken and the remainder (the *shortfall*) is drawn uniformly among the
       other allowed positions, so exactly ``k`` positions always come back.

    Parameters
    ----------
    scores : numpy array or torch tensor (any shape), finite, >= 0 where allowed
    k : int, at most ``allowed.sum()``
    allowed : bool array/tensor of the same shape
    soft : bool
    temperature : float > 0 (soft mode only)
    rng : numpy-style rng, or a ``torch.Generator`` for tensors

    Returns
    -------
    (indices, shortfall) : flat int64 indices (numpy or torch on the scores'
        device) and the number of positions filled uniformly.

    Examples
    --------
    >>> import numpy as np
    >>> s = np.array([[0.0, 5.0], [1.0, 0.0]])
    >>> allowed = np.array([[True, True], [True, False]])
    >>> idx, short = choose_links(s, 3, allowed=allowed, rng=0)
    >>> sorted(idx.tolist()), short
    ([0, 1, 2], 1)
    """
    k = _check_k(k)
    _check_temperature(temperature)
    if _is_torch(scores):
        return _choose_links_torch(scores, k, allowed, soft, temperature, rng)
    try:
        s = np.asarray(scores, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"scores must be a numeric array or tensor ({exc})") from None
    ok = np.asarray(allowed, dtype=bool).reshape(-1)
    if ok.size != s.size:
        raise ValueError("allowed must have the same number of entries as scores")
    s = np.where(ok, s, 0.0)
    if np.isnan(s).any() or (s < 0).any():
        raise ValueError("scores must be non-negative and not NaN on allowed positions")
    n_allowed = int(ok.sum())
    if k > n_allowed:
        raise ValueError(f"k={k} exceeds the number of allowed positions ({n_allowed})")
    gen = as_rng(rng)
    pos = np.flatnonzero(s > 0)
    if pos.size >= k:
        if soft:
            return sample_indices(s, k, temperature=temperature, rng=gen), 0
        if k == pos.size:
            return pos.astype(np.int64), 0
        part = np.argpartition(-s[pos], k - 1)[:k]
        return pos[part].astype(np.int64), 0
    rest = np.flatnonzero(ok & ~(s > 0))
    need = k - pos.size
    fill = rest[uniform_sample_without_replacement(rest.size, need, gen)]
    return np.concatenate([pos, fill]).astype(np.int64), int(need)


def _choose_links_torch(scores, k, allowed, soft, temperature, rng):
    # few full passes over the layer: this runs on every layer at every update
    import torch

    s = _check_torch_array(scores, "scores").detach().reshape(-1)
    if s.is_complex():
        raise TypeError(f"scores must be real, got dtype {s.dtype}")
    if not s.is_floating_point():  # bool / integer scores: rank them as numbers
        s = s.float()
    if isinstance(allowed, torch.Tensor):
        _check_torch_array(allowed, "allowed")
    elif allowed is None or isinstance(allowed, (str, bytes)):
        raise TypeError(f"allowed={allowed!r} must be a boolean array of the scores' shape")
    ok = torch.as_tensor(np.asarray(allowed) if not isinstance(allowed, torch.Tensor)
                         else allowed).reshape(-1).to(device=s.device, dtype=torch.bool)
    if ok.numel() != s.numel():
        raise ValueError("allowed must have the same number of entries as scores")
    if bool((ok & ~(s >= 0)).any()):  # catches NaN and negatives on allowed positions
        raise ValueError("scores must be non-negative and not NaN on allowed positions")
    g = torch_generator(rng, s.device)
    good = ok & (s > 0)
    pos = torch.nonzero(good).reshape(-1)
    if pos.numel() >= k:
        vals = s[pos]
        if not bool(torch.isfinite(vals).all()):
            raise ValueError("scores must be finite on allowed positions")
        if soft:
            return pos[_exp_key_topk(vals, k, temperature, g)], 0
        return pos[torch.topk(vals, k, largest=True, sorted=False).indices], 0
    rest = torch.nonzero(ok & ~good).reshape(-1)
    need = k - pos.numel()
    if need > rest.numel():
        raise ValueError(f"k={k} exceeds the number of allowed positions "
                         f"({pos.numel() + rest.numel()})")
    keys = torch.rand(rest.numel(), generator=g, device=s.device)
    fill = rest[torch.topk(keys, need, largest=False, sorted=False).indices]
    return torch.cat([pos, fill]), need


def _exp_key_topk(vals, k, temperature, g):
    """Positions of ``k`` draws without replacement ∝ vals^(1/T) (exponential keys, log space)."""
    import torch

    logw = torch.log(vals.double()) / temperature
    e = torch.empty(vals.numel(), dtype=torch.float64, device=vals.device)
    e.exponential_(generator=g)
    return torch.topk(torch.log(e) - logw, k, largest=False, sorted=True).indices


def removal_scores_at(W, index, *, alpha: float = 1.0, delta: float = 0.5):
    """Eq. 2 scores of :func:`removal_scores` at the flat positions ``index`` only.

    Row and column sums run over the links in ``index`` (the layer's current
    links), so ``W`` need not be zero elsewhere; cost O(len(index)) after one
    gather. Same family as ``W`` (torch: on its device).

    >>> import numpy as np
    >>> W = np.array([[1.0, -3.0], [0.0, 2.0]])
    >>> removal_scores_at(W, np.array([0, 1, 3]), alpha=0.0).round(3)
    array([0.625, 0.675, 0.7  ])
    """
    alpha, delta = _check_alpha_delta(alpha, delta)
    expo = delta / (1.0 - delta)
    if not _is_torch(W):
        W = _numpy_weights(W)
    else:
        _check_torch_array(W, "W")
    if W.ndim != 2:
        raise ValueError(f"W must be 2-D, got shape {tuple(W.shape)}")
    n_rows, n_cols = W.shape
    if _is_torch(W):
        import torch

        try:
            idx = torch.as_tensor(np.asarray(index) if not isinstance(index, torch.Tensor)
                                  else index, device=W.device).reshape(-1)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise TypeError(f"index must be an array of flat integer positions ({exc})") from None
        if idx.is_floating_point() or idx.is_complex() or idx.dtype == torch.bool:
            raise TypeError(f"index must hold integer flat positions, got dtype {idx.dtype}")
        idx = idx.long()
        _check_index(idx.numel() and int(idx.min()), idx.numel() and int(idx.max()), W.numel())
        a = W.detach().reshape(-1)[idx]
        a = (a if a.is_floating_point() else a.float()).abs()
        _check_finite(bool(torch.isfinite(a).all()))
        r, c = idx // n_cols, idx % n_cols
        rs = torch.zeros(n_rows, dtype=a.dtype, device=a.device).index_add_(0, r, a)
        cs = torch.zeros(n_cols, dtype=a.dtype, device=a.device).index_add_(0, c, a)
        tiny = torch.finfo(a.dtype).tiny
        den_r = (alpha + (1.0 - alpha) * rs[r]).clamp_min(tiny)
        den_c = (alpha + (1.0 - alpha) * cs[c]).clamp_min(tiny)
        out = 0.5 * a / den_r + 0.5 * a / den_c
        return out if expo == 1.0 else out.pow(expo)
    try:
        idx = np.asarray(index, dtype=np.int64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"index must be an array of flat integer positions ({exc})") from None
    _check_index(idx.size and int(idx.min()), idx.size and int(idx.max()), W.size)
    a = np.abs(W.reshape(-1)[idx])
    _check_finite(bool(np.isfinite(a).all()))
    r, c = idx // n_cols, idx % n_cols
    rs = np.bincount(r, weights=a, minlength=n_rows)
    cs = np.bincount(c, weights=a, minlength=n_cols)
    tiny = np.finfo(np.float64).tiny
    out = (0.5 * a / np.maximum(alpha + (1.0 - alpha) * rs[r], tiny)
           + 0.5 * a / np.maximum(alpha + (1.0 - alpha) * cs[c], tiny))
    return out if expo == 1.0 else out**expo
