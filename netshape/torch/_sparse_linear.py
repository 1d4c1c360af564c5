"""A linear layer that stores only its links: :class:`SparseLinear` and :func:`sparse_linear`.

The weight of shape ``(out, in)`` (``nn.Linear``'s orientation, the transpose
of netshape's ``(n_in, n_out)`` biadjacency) is kept as

* ``values`` — an ``nn.Parameter`` of length ``nnz`` (the only trainable
  weight tensor, so optimizer state has size ``nnz`` too), and
* ``indices`` — a sorted int64 buffer of flat row-major positions
  ``out_index * in_features + in_index`` (the CSR order of the values), and
* ``sparse_shape`` — the int64 buffer ``[out, in]``.

All three travel in ``model.state_dict()`` (``<layer>.values``,
``<layer>.indices``, ``<layer>.sparse_shape``);
:func:`netshape.io.read_checkpoint` reads the topology from them.

Forward and backward cost grows with ``nnz × batch``
(:mod:`netshape.torch._sparse_kernels`). Inputs may be float32, float64 or
bfloat16; bfloat16 is computed in float32 and cast back.
"""

from __future__ import annotations

import torch
from torch import nn

from . import _sparse_kernels as kernels

__all__ = ["SparseLinear", "sparse_linear"]

#: dtypes the sparse kernels accept (bfloat16 is computed in float32)
SUPPORTED_DTYPES = (torch.float32, torch.float64, torch.bfloat16)
#: devices the sparse kernels run on
SUPPORTED_DEVICES = ("cpu", "cuda")


class _Structure:
    """CSR arrays derived from the sorted flat ``indices`` of an ``(out, in)`` layer."""

    def __init__(self, indices: torch.Tensor, n_out: int, n_in: int) -> None:
        self.row = torch.div(indices, n_in, rounding_mode="floor")
        self.col = indices - self.row * n_in
        counts = torch.bincount(self.row, minlength=n_out)
        self.rowptr = torch.zeros(n_out + 1, dtype=torch.int64, device=indices.device)
        torch.cumsum(counts, 0, out=self.rowptr[1:])
        self.key: tuple = ()


class _SparseLinearFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, values, bias, st, owner):  # noqa: D102 - autograd protocol
        shape = x.shape
        n_out = st.rowptr.numel() - 1
        cdt = torch.float64 if x.dtype == torch.float64 else torch.float32
        x2 = x.reshape(-1, shape[-1]).to(cdt)
        val = values.to(cdt)
        if x2.shape[0] == 0:
            y = x2.new_zeros(0, n_out)
        else:
            y = kernels.forward(x2, val, st.rowptr, st.col, st.row, n_out)
        if bias is not None:
            y = y + bias.to(cdt)
        ctx.save_for_backward(x2, val)
        ctx.st, ctx.owner, ctx.shape = st, owner, shape
        ctx.dtypes = (x.dtype, values.dtype, None if bias is None else bias.dtype)
        return y.to(x.dtype).reshape(*shape[:-1], n_out)

    @staticmethod
    def backward(ctx, grad):  # noqa: D102 - autograd protocol
        x2, val = ctx.saved_tensors
        st, owner = ctx.st, ctx.owner
        xdt, vdt, bdt = ctx.dtypes
        g2 = grad.reshape(-1, grad.shape[-1]).to(x2.dtype)
        want_x, want_v, want_b = ctx.needs_input_grad[:3]
        dx = dv = db = None
        if x2.shape[0] == 0:
            if want_x:
                dx = x2.new_zeros(x2.shape)
            if want_v:
                dv = val.new_zeros(val.shape)
        elif want_x or want_v:
            dx, dv = kernels.backward(x2, g2, val, st.rowptr, st.col, st.row, want_x, want_v)
        if owner is not None and owner.capture:
            # dense gradient of every (present or missing) link, only on update steps
            dense = (g2.t() @ x2).to(vdt)
            owner.dense_grad = dense if owner.dense_grad is None else owner.dense_grad + dense
        if want_b:
            db = g2.sum(0).to(bdt)
        if dx is not None:
            dx = dx.to(xdt).reshape(ctx.shape)
        if dv is not None:
            dv = dv.to(vdt)
        return dx, dv, db, None, None


def sparse_linear(x: torch.Tensor, values: torch.Tensor, indices: torch.Tensor,
                  shape: tuple[int, int], bias: torch.Tensor | None = None) -> torch.Tensor:
    """``x Wᵀ + b`` where ``W`` of ``shape = (out, in)`` has ``values`` at flat ``indices``.

    Equals ``torch.nn.functional.linear(x, W, bias)`` with the dense ``W``
    (zeros off the links), differentiable in ``x``, ``values`` and ``bias``.

    .. math:: y_{\\dots, o} = b_o + \\sum_{k:\\ r_k = o} w_k\\, x_{\\dots, c_k}

    Parameters
    ----------
    x : tensor of shape ``(..., in)``
    values : tensor of shape ``(nnz,)``
    indices : int64 tensor of shape ``(nnz,)``
        Sorted flat positions ``r * in + c`` in the ``(out, in)`` weight.
    shape : (out, in)
    bias : tensor of shape ``(out,)``, optional

    Examples
    --------
    >>> import torch
    >>> W = torch.tensor([[0.0, 2.0, 0.0], [1.0, 0.0, -1.0]])
    >>> idx = torch.nonzero(W.reshape(-1)).reshape(-1)
    >>> x = torch.tensor([[1.0, 2.0, 3.0]])
    >>> sparse_linear(x, W.reshape(-1)[idx], idx, (2, 3))
    tensor([[ 4., -2.]])
    """
    n_out, n_in = shape
    if x.shape[-1] != n_in:
        raise ValueError(f"x has {x.shape[-1]} features in its last dimension; the layer "
                         f"takes in={n_in}")
    return _SparseLinearFn.apply(x, values, bias, _Structure(indices, n_out, n_in), None)


class SparseLinear(nn.Module):
    """``nn.Linear`` that keeps only its links (``values`` + ``indices``; see the module doc).

    Build it with :meth:`from_dense` (what ``sparsify(execution="sparse")``
    does); turn it back with :meth:`to_linear`.

    Attributes
    ----------
    values : nn.Parameter of shape ``(nnz,)``
    indices : int64 buffer of shape ``(nnz,)``
    sparse_shape : int64 buffer ``[out_features, in_features]``
    bias : nn.Parameter of shape ``(out_features,)`` or None
    capture : bool
        When True the backward pass also accumulates the dense gradient
        ``gᵀ x`` of shape ``(out, in)`` in ``dense_grad`` (set by the engine on
        the update steps of gradient-based methods only).

    Examples
    --------
    >>> import torch
    >>> lin = torch.nn.Linear(4, 3)
    >>> mask = torch.rand(3, 4, generator=torch.Generator().manual_seed(0)) < 0.5
    >>> sp = SparseLinear.from_dense(lin, mask)
    >>> x = torch.randn(2, 4)
    >>> ref = torch.nn.functional.linear(x, lin.weight * mask, lin.bias)
    >>> bool(torch.allclose(sp(x), ref, atol=1e-6)), sp.values.numel() == int(mask.sum())
    (True, True)
    """

    def __init__(self, in_features: int, out_features: int, indices: torch.Tensor,
                 values: torch.Tensor, bias: torch.Tensor | None = None) -> None:
        super().__init__()
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.values = nn.Parameter(values.detach().clone())
        self.register_buffer("indices", indices.detach().to(torch.int64).clone())
        # the dense shape travels in state_dict, so readers (netshape analyze) need no model
        self.register_buffer("sparse_shape", torch.tensor([self.out_features, self.in_features],
                                                          dtype=torch.int64))
        self.bias = None if bias is None else nn.Parameter(bias.detach().clone())
        self.capture = False
        self.dense_grad: torch.Tensor | None = None
        self._st: _Structure | None = None
        self._generation = 0

    @classmethod
    def from_dense(cls, linear: nn.Linear, mask: torch.Tensor) -> SparseLinear:
        """A copy of ``linear`` keeping the weights where ``mask`` (shape ``(out, in)``) is True."""
        w = linear.weight.detach()
        idx = torch.nonzero(mask.to(w.device).reshape(-1)).reshape(-1)
        return cls(linear.in_features, linear.out_features, idx, w.reshape(-1)[idx],
                   None if linear.bias is None else linear.bias)

    @property
    def shape(self) -> tuple[int, int]:
        """``(out_features, in_features)``, the dense weight's shape."""
        return self.out_features, self.in_features

    def set_indices(self, indices: torch.Tensor) -> None:
        """Replace the links' flat positions (sorted int64; ``values`` must match in length)."""
        with torch.no_grad():
            if indices.shape == self.indices.shape:
                self.indices.copy_(indices)
            else:
                self.indices = indices.to(self.indices.device, torch.int64).clone()
        self._generation += 1

    def indices_key(self) -> tuple:
        """Changes whenever ``indices`` may have changed (cache key of derived arrays)."""
        idx = self.indices
        return (self._generation, idx._version, idx.data_ptr(), idx.numel(), idx.device)

    def structure(self) -> _Structure:
        """CSR arrays of the current ``indices`` (rebuilt only when they change)."""
        key = self.indices_key()
        if self._st is None or self._st.key != key:
            self._st = _Structure(self.indices, self.out_features, self.in_features)
            self._st.key = key
        return self._st

    def dense_mask(self) -> torch.Tensor:
        """Bool mask of shape ``(out, in)``: True at the links."""
        m = torch.zeros(self.out_features * self.in_features, dtype=torch.bool,
                        device=self.indices.device)
        m[self.indices] = True
        return m.view(self.out_features, self.in_features)

    def dense_weight(self) -> torch.Tensor:
        """The weight of shape ``(out, in)`` with zeros off the links (a new tensor)."""
        w = torch.zeros(self.out_features * self.in_features, dtype=self.values.dtype,
                        device=self.values.device)
        w[self.indices] = self.values.detach()
        return w.view(self.out_features, self.in_features)

    def to_linear(self) -> nn.Linear:
        """A plain ``nn.Linear`` with the dense weight (zeros off the links), for export."""
        lin = nn.Linear(self.in_features, self.out_features, bias=self.bias is not None,
                        device=self.values.device, dtype=self.values.dtype)
        with torch.no_grad():
            lin.weight.copy_(self.dense_weight())
            if self.bias is not None:
                lin.bias.copy_(self.bias)
        return lin

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        if x.shape[-1] != self.in_features:
            raise ValueError(f"x has {x.shape[-1]} features in its last dimension; the layer "
                             f"takes in_features={self.in_features}")
        owner = self if self.capture and torch.is_grad_enabled() else None
        return _SparseLinearFn.apply(x, self.values, self.bias, self.structure(), owner)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # the link count changes under decaying schedules: resize before the copy
        for name in ("values", "indices"):
            t = state_dict.get(prefix + name)
            cur = getattr(self, name)
            if isinstance(t, torch.Tensor) and t.shape != cur.shape:
                cur.data = torch.empty(t.shape, dtype=cur.dtype, device=cur.device)
        self._generation += 1
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"links={self.values.numel()}, bias={self.bias is not None}")
