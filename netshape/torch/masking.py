"""Masks as ``torch.nn.utils.parametrize`` parametrizations with bool buffers.

A sparsified parameter ``module.<name>`` becomes ``original * mask``; the
mask is a bool buffer of the weight's own shape (``nn.Linear.weight`` is
``(out, in)``, i.e. the transpose of netshape's ``(n_in, n_out)``
biadjacency). Because it is a buffer it travels in ``model.state_dict()``
under ``<module>.parametrizations.<name>.0.mask``.

The underlying ``parametrizations.<name>.original`` is kept exactly zero off
the mask, and the optimizer state of removed or regrown entries is zeroed,
so momentum, weight decay and Adam moments cannot revive a removed weight.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

__all__ = [
    "Mask",
    "apply_mask",
    "get_mask",
    "get_original",
    "is_masked",
    "remove_masks",
    "reset_optimizer_state",
    "to_biadjacency",
]

#: optimizer state entries shaped like the parameter that must not carry old values
_STATE_KEYS = ("momentum_buffer", "exp_avg", "exp_avg_sq", "max_exp_avg_sq", "square_avg",
               "acc_delta", "sum", "ax", "prev")


class _CaptureGrad(torch.autograd.Function):
    """``x * mask`` whose backward also records the dense gradient w.r.t. the product."""

    @staticmethod
    def forward(ctx, x, mask, owner):  # noqa: D102 - autograd protocol
        ctx.save_for_backward(mask)
        ctx.owner = owner
        return x * mask

    @staticmethod
    def backward(ctx, grad):  # noqa: D102 - autograd protocol
        (mask,) = ctx.saved_tensors
        owner = ctx.owner
        g = grad.detach()
        # gradient accumulation calls backward several times before one step
        owner.dense_grad = g.clone() if owner.dense_grad is None else owner.dense_grad + g
        return grad * mask, None, None


class Mask(nn.Module):
    """Parametrization ``W = original * mask`` with a bool ``mask`` buffer.

    When ``capture`` is True (set by the engine only before a topology update
    that needs gradients, e.g. RigL), the backward pass also stores the dense
    gradient of the loss w.r.t. the masked weight in ``dense_grad`` — the
    gradient of missing links that ``original.grad`` (masked) does not have.
    """

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mask", mask.detach().to(torch.bool).clone())
        self.capture = False
        self.dense_grad: torch.Tensor | None = None
        self._cache: tuple | None = None

    def float_mask(self, dtype: torch.dtype) -> torch.Tensor:
        """The mask as ``dtype`` (0/1), cached until the mask buffer changes in place."""
        # _version moves on every in-place write (copy_, load_state_dict), so no stale cache
        key = (dtype, self.mask._version, self.mask.data_ptr(), self.mask.device)
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, self.mask.to(dtype))
        return self._cache[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        m = self.float_mask(x.dtype)
        if self.capture and torch.is_grad_enabled() and x.requires_grad:
            return _CaptureGrad.apply(x, m, self)
        return x * m


def is_masked(module: nn.Module, name: str = "weight") -> bool:
    """True when ``module.<name>`` carries a netshape :class:`Mask`."""
    if not parametrize.is_parametrized(module, name):
        return False
    return any(isinstance(p, Mask) for p in module.parametrizations[name])


def get_mask(module: nn.Module, name: str = "weight") -> torch.Tensor:
    """The bool mask buffer of ``module.<name>`` (shape of the parameter)."""
    for p in module.parametrizations[name]:
        if isinstance(p, Mask):
            return p.mask
    raise ValueError(f"{type(module).__name__}.{name} has no netshape Mask")


def _mask_module(module: nn.Module, name: str) -> Mask:
    for p in module.parametrizations[name]:
        if isinstance(p, Mask):
            return p
    raise ValueError(f"{type(module).__name__}.{name} has no netshape Mask")


def get_original(module: nn.Module, name: str = "weight") -> nn.Parameter:
    """The trainable parameter under the mask (the one the optimizer updates)."""
    return module.parametrizations[name].original


def apply_mask(module: nn.Module, mask: torch.Tensor, name: str = "weight") -> Mask:
    """Register (or update) a :class:`Mask` on ``module.<name>``; zero ``original`` off-mask.

    ``mask`` has the parameter's shape, e.g. ``(out, in)`` for ``nn.Linear``
    (the transpose of a netshape biadjacency ``A`` of shape ``(n_in, n_out)``).
    The parameter object is kept (no ``right_inverse``), so an optimizer
    created before masking keeps working.

    Examples
    --------
    >>> import torch
    >>> lin = torch.nn.Linear(3, 2)
    >>> m = torch.tensor([[True, False, True], [False, True, False]])
    >>> _ = apply_mask(lin, m)
    >>> bool((lin.weight[~m] == 0).all()), int(get_mask(lin).sum())
    (True, 3)
    """
    param = getattr(module, name)
    if tuple(mask.shape) != tuple(param.shape):
        raise ValueError(
            f"mask shape {tuple(mask.shape)} does not match {type(module).__name__}.{name} "
            f"shape {tuple(param.shape)} (a Linear weight is (out, in) = A.T)"
        )
    if is_masked(module, name):
        pm = _mask_module(module, name)
        pm.mask.copy_(mask.to(pm.mask.device, torch.bool))
    else:
        pm = Mask(mask.to(param.device))
        parametrize.register_parametrization(module, name, pm, unsafe=True)
    with torch.no_grad():
        get_original(module, name).mul_(pm.mask.to(get_original(module, name).dtype))
    return pm


def remove_masks(module: nn.Module, name: str = "weight") -> None:
    """Bake the mask into the weight and remove the parametrization."""
    parametrize.remove_parametrizations(module, name, leave_parametrized=True)


def reset_optimizer_state(optimizer: torch.optim.Optimizer, param: torch.Tensor,
                          where: torch.Tensor) -> None:
    """Zero per-element optimizer state of ``param`` at ``where``.

    ``where`` is a bool tensor shaped like ``param`` or a 1-D tensor of flat
    (row-major) indices into it.

    Covers SGD ``momentum_buffer``, Adam/AdamW ``exp_avg``/``exp_avg_sq``
    (/``max_exp_avg_sq``) and the other built-in element-wise states; scalar
    entries such as ``step`` are left alone.
    """
    state = optimizer.state.get(param)
    if not state:
        return
    for key in _STATE_KEYS:
        buf = state.get(key)
        if isinstance(buf, torch.Tensor) and buf.shape == param.shape:
            if where.dtype == torch.bool:
                buf.masked_fill_(where.to(buf.device), 0)
            else:
                buf.view(-1)[where.to(buf.device)] = 0


def to_biadjacency(mask: torch.Tensor):
    """netshape biadjacency ``A`` (scipy csr bool, ``(n_in, n_out)``) of an ``(out, in)`` mask.

    Built from the mask's links only (no dense host copy).

    >>> import torch
    >>> A = to_biadjacency(torch.tensor([[True, False, False], [False, False, True]]))
    >>> A.shape, A.nnz, bool(A[2, 1])
    ((3, 2), 2, True)
    """
    import numpy as np
    import scipy.sparse as sp

    r, c = torch.nonzero(mask, as_tuple=True)
    r, c = r.cpu().numpy(), c.cpu().numpy()
    return sp.csr_array((np.ones(r.size, dtype=bool), (c, r)),
                        shape=(mask.shape[1], mask.shape[0]))
