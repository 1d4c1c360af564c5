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
bfloat16; bfloat16 is computed in float32 and cast back. As with
``nn.Linear``, the input must have the values' dtype (bfloat16 and float32
may be mixed) and device; anything else is a ``ValueError``.

The links are checked once per change of ``indices`` (:func:`check_links`):
a 1-D int64 tensor as long as ``values``, strictly increasing, inside
``[0, out × in)``.
"""

from __future__ import annotations

import torch
from torch import nn

from . import _sparse_kernels as kernels

__all__ = ["SparseLinear", "check_links", "sparse_linear"]

#: dtypes the sparse kernels accept (bfloat16 is computed in float32)
SUPPORTED_DTYPES = (torch.float32, torch.float64, torch.bfloat16)
#: devices the sparse kernels run on
SUPPORTED_DEVICES = ("cpu", "cuda")


#: dtypes an input may mix with the values (both are computed in float32)
_MIXABLE = (torch.float32, torch.bfloat16)


def check_links(indices: torch.Tensor, n_values: int, shape: tuple[int, int],
                name: str = "indices") -> None:
    """Raise ``ValueError`` (naming ``name``) unless ``indices`` are valid flat link positions.

    Valid: a 1-D int64 tensor of length ``n_values``, strictly increasing
    (sorted, no repeats: the CSR order of the values) and inside
    ``[0, out × in)`` for ``shape = (out, in)``.
    """
    if not isinstance(indices, torch.Tensor) or indices.dtype != torch.int64 or \
            indices.dim() != 1:
        what = (f"a {indices.dim()}-D {indices.dtype} tensor" if isinstance(indices, torch.Tensor)
                else type(indices).__name__)
        raise ValueError(f"{name} must be a 1-D int64 tensor of flat link positions, got {what}")
    if indices.numel() != n_values:
        raise ValueError(f"{name} has {indices.numel()} entries but values has {n_values}; "
                         "they must have the same length")
    if not indices.numel():
        return
    size = int(shape[0]) * int(shape[1])
    lo, hi = int(indices.min()), int(indices.max())
    if lo < 0 or hi >= size:
        raise ValueError(f"{name} holds positions in [{lo}, {hi}]; a layer of shape "
                         f"(out, in) = {tuple(int(v) for v in shape)} allows [0, {size - 1}]")
    if indices.numel() > 1 and not bool((indices[1:] > indices[:-1]).all()):
        raise ValueError(f"{name} must be strictly increasing (sorted row-major positions "
                         "without repeats)")


def _check_input(x: torch.Tensor, values: torch.Tensor, bias: torch.Tensor | None) -> None:
    """The dtype and device rules of ``nn.Linear`` (bfloat16 may mix with float32)."""
    if x.device != values.device or (bias is not None and bias.device != values.device):
        raise ValueError(f"x is on {x.device} but the layer's values are on {values.device}"
                         + ("" if bias is None else f" (bias on {bias.device})")
                         + "; move the input or the layer")
    same = x.dtype == values.dtype or (x.dtype in _MIXABLE and values.dtype in _MIXABLE)
    if not same:
        raise ValueError(f"x has dtype {x.dtype} but the layer's values are {values.dtype}; "
                         "pass an input of the layer's dtype (bfloat16 and float32 may mix)")


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
    _check_input(x, values, bias)
    check_links(indices, values.numel(), shape)
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
    weight : tensor of shape ``(out_features, in_features)``, read-only
        The dense weight, rebuilt from ``values`` on each access and
        differentiable with respect to them (for code that reads
        ``nn.Linear.weight``; see :attr:`weight`).
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
            check_links(self.indices, self.values.numel(), self.shape)
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

    @property
    def weight(self) -> torch.Tensor:
        """Read-only dense weight ``(out, in)`` scattered from ``values`` (zeros off the links).

        For code written against ``nn.Linear`` that reads ``layer.weight``
        (``x.to(layer.weight.dtype)``, ``F.linear(x, layer.weight)``, its
        device or shape). It is a new tensor on every access, of
        ``out × in`` elements, differentiable with respect to ``values``:
        ``F.linear(x, layer.weight)`` trains the links correctly (and feeds
        gradient-based regrowth), but costs a dense product; the layer's
        own ``forward`` is the sparse one. Writing to it changes nothing;
        assigning ``layer.weight = ...`` is an error.
        """
        n = self.out_features * self.in_features
        w = torch.zeros(n, dtype=self.values.dtype, device=self.values.device).scatter(
            0, self.indices.to(self.values.device), self.values)
        w = w.view(self.out_features, self.in_features)
        if self.capture and torch.is_grad_enabled() and w.requires_grad:
            w.register_hook(self._capture_dense)
        return w

    def _capture_dense(self, grad: torch.Tensor) -> None:
        # the dense gradient of every link, as the sparse backward records it on update steps
        g = grad.detach()
        self.dense_grad = g.clone() if self.dense_grad is None else self.dense_grad + g

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
        _check_input(x, self.values, self.bias)
        if self.values.numel() != self.indices.numel():
            raise ValueError(f"values has {self.values.numel()} entries but indices has "
                             f"{self.indices.numel()}; they must have the same length")
        owner = self if self.capture and torch.is_grad_enabled() else None
        return _SparseLinearFn.apply(x, self.values, self.bias, self.structure(), owner)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        shape = state_dict.get(prefix + "sparse_shape")
        if isinstance(shape, torch.Tensor) and shape.tolist() != list(self.shape):
            raise ValueError(f"state_dict[{prefix + 'sparse_shape'!r}] is {shape.tolist()}; "
                             f"this layer is (out, in) = {list(self.shape)}")
        idx, vals = state_dict.get(prefix + "indices"), state_dict.get(prefix + "values")
        if isinstance(idx, torch.Tensor) or isinstance(vals, torch.Tensor):
            idx = self.indices if idx is None else idx
            n = (vals if isinstance(vals, torch.Tensor) else self.values).numel()
            check_links(idx, n, self.shape, name=f"state_dict[{prefix + 'indices'!r}]")
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
