"""Sparse linear kernels against the dense masked product (compiled, torch fallback, CUDA)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from netshape.torch import SparseLinear, sparse_linear  # noqa: E402
from netshape.torch import _sparse_kernels as kernels  # noqa: E402


def _case(rng, n_out, n_in, density, dtype=torch.float32, device="cpu"):
    mask = torch.from_numpy(rng.random((n_out, n_in)) < density)
    if density > 0 and not mask.any():
        mask[rng.integers(n_out), rng.integers(n_in)] = True
    W = torch.from_numpy(rng.standard_normal((n_out, n_in))).to(dtype) * mask
    idx = torch.nonzero(mask.reshape(-1)).reshape(-1)
    return mask.to(device), W.to(device), idx.to(device)


def _check(x, W, mask, idx, bias, atol):
    vals = W.reshape(-1)[idx].clone().requires_grad_(True)
    xs = x.clone().requires_grad_(True)
    b = None if bias is None else bias.clone().requires_grad_(True)
    y = sparse_linear(xs, vals, idx, tuple(W.shape), b)
    g = torch.randn_like(y)
    y.backward(g)
    Wd = W.clone().requires_grad_(True)
    xd = x.clone().requires_grad_(True)
    bd = None if bias is None else bias.clone().requires_grad_(True)
    ref = torch.nn.functional.linear(xd, Wd * mask, bd)
    ref.backward(g)
    assert y.shape == ref.shape and y.dtype == ref.dtype
    torch.testing.assert_close(y, ref, atol=atol, rtol=atol)
    torch.testing.assert_close(xs.grad, xd.grad, atol=atol, rtol=atol)
    torch.testing.assert_close(vals.grad, Wd.grad.reshape(-1)[idx], atol=atol, rtol=atol)
    if bias is not None:
        torch.testing.assert_close(b.grad, bd.grad, atol=atol, rtol=atol)


def _shapes(seed, n):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        n_out, n_in = (int(v) for v in rng.integers(1, 40, size=2))
        density = float(rng.choice([0.0, 0.02, 0.1, 0.3, 1.0]))
        batch = [int(rng.integers(1, 9))]
        if rng.random() < 0.3:
            batch = [int(rng.integers(1, 4)), int(rng.integers(1, 5))]  # 3-D input
        yield rng, n_out, n_in, density, batch, bool(rng.random() < 0.5)


@pytest.fixture(params=["compiled", "torch"])
def path(request, monkeypatch):
    if request.param == "compiled":
        if not kernels.has_compiled():
            pytest.skip("llvmlite (the fast extra) is not installed")
        monkeypatch.delenv(kernels._ENV_NO_COMPILE, raising=False)
    else:
        monkeypatch.setenv(kernels._ENV_NO_COMPILE, "1")
    return request.param


def test_path_selection(path):
    assert kernels.use_compiled(torch.zeros(1)) == (path == "compiled")


def test_random_shapes_match_dense(path):
    for rng, n_out, n_in, density, batch, with_bias in _shapes(0, 60):
        mask, W, idx = _case(rng, n_out, n_in, density)
        x = torch.from_numpy(rng.standard_normal((*batch, n_in))).float()
        bias = torch.randn(n_out) if with_bias else None
        _check(x, W, mask, idx, bias, atol=1e-5)


def test_empty_rows_columns_single_link_batch_one(path):
    mask = torch.zeros(5, 7, dtype=torch.bool)
    mask[3, 6] = True  # one link: rows 0-2, 4 and columns 0-5 empty
    W = torch.randn(5, 7) * mask
    idx = torch.nonzero(mask.reshape(-1)).reshape(-1)
    _check(torch.randn(1, 7), W, mask, idx, torch.randn(5), atol=1e-6)
    _check(torch.randn(2, 3, 7), W, mask, idx, None, atol=1e-6)
    empty = torch.zeros(5, 7, dtype=torch.bool)
    _check(torch.randn(4, 7), torch.zeros(5, 7), empty, idx[:0], torch.randn(5), atol=0)


def test_zero_batch(path):
    mask, W, idx = _case(np.random.default_rng(1), 4, 6, 0.5)
    _check(torch.randn(0, 6), W, mask, idx, torch.randn(4), atol=0)


def test_transposed_and_strided_inputs(path):
    rng = np.random.default_rng(2)
    mask, W, idx = _case(rng, 9, 11, 0.3)
    _check(torch.randn(11, 6).t(), W, mask, idx, None, atol=1e-5)
    _check(torch.randn(6, 22)[:, ::2], W, mask, idx, torch.randn(9), atol=1e-5)


def test_gradcheck_float64(path):
    rng = np.random.default_rng(3)
    for n_out, n_in, d in [(4, 5, 0.4), (1, 1, 1.0), (6, 3, 0.2), (3, 8, 0.0)]:
        mask, W, idx = _case(rng, n_out, n_in, d, dtype=torch.float64)
        vals = W.reshape(-1)[idx].clone().requires_grad_(True)
        x = torch.randn(2, 3, n_in, dtype=torch.float64, requires_grad=True)
        b = torch.randn(n_out, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(
            lambda x, v, b, idx=idx, s=(n_out, n_in): sparse_linear(x, v, idx, s, b),
            (x, vals, b))


def test_bfloat16_inputs(path):
    rng = np.random.default_rng(4)
    mask, W, idx = _case(rng, 12, 10, 0.3)
    x = torch.randn(5, 10)
    vals = W.reshape(-1)[idx].bfloat16().requires_grad_(True)
    xb = x.bfloat16().requires_grad_(True)
    y = sparse_linear(xb, vals, idx, (12, 10))
    assert y.dtype == torch.bfloat16
    y.float().sum().backward()
    assert vals.grad.dtype == torch.bfloat16 and xb.grad.dtype == torch.bfloat16
    Wb = torch.zeros(120, dtype=torch.bfloat16)
    Wb[idx] = vals.detach()
    ref = xb.detach().float() @ Wb.float().view(12, 10).t()
    torch.testing.assert_close(y.float(), ref, atol=2e-2, rtol=2e-2)
    torch.testing.assert_close(xb.grad.float(), Wb.float().view(12, 10).sum(0).expand(5, 10),
                               atol=2e-2, rtol=2e-2)


def test_module_from_dense_round_trip(path):
    lin = torch.nn.Linear(13, 7)
    mask = torch.rand(7, 13, generator=torch.Generator().manual_seed(0)) < 0.3
    sp = SparseLinear.from_dense(lin, mask)
    x = torch.randn(3, 13)
    ref = torch.nn.functional.linear(x, lin.weight * mask, lin.bias)
    torch.testing.assert_close(sp(x), ref)
    assert torch.equal(sp.dense_mask(), mask)
    back = sp.to_linear()
    assert type(back) is torch.nn.Linear
    torch.testing.assert_close(back.weight, (lin.weight * mask).detach())
    with pytest.raises(ValueError, match="in_features=13"):
        sp(torch.randn(3, 12))


def test_module_dense_grad_capture(path):
    lin = torch.nn.Linear(6, 4)
    mask = torch.rand(4, 6, generator=torch.Generator().manual_seed(1)) < 0.5
    sp = SparseLinear.from_dense(lin, mask)
    sp.capture = True
    x = torch.randn(5, 6)
    for _ in range(2):  # accumulation over two backward calls
        sp(x).pow(2).sum().backward()
    W = (lin.weight.detach() * mask).requires_grad_(True)
    for _ in range(2):
        torch.nn.functional.linear(x, W, lin.bias.detach()).pow(2).sum().backward()
    torch.testing.assert_close(sp.dense_grad, W.grad)


@pytest.mark.gpu
def test_cuda_matches_dense():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    for rng, n_out, n_in, density, batch, with_bias in _shapes(5, 20):
        mask, W, idx = _case(rng, n_out, n_in, density, device="cuda")
        x = torch.from_numpy(rng.standard_normal((*batch, n_in))).float().cuda()
        bias = torch.randn(n_out, device="cuda") if with_bias else None
        _check(x, W, mask, idx, bias, atol=1e-4)


@pytest.mark.skipif(not kernels.has_compiled(), reason="llvmlite (the fast extra) is not installed")
def test_compiled_kernels_refuse_what_they_cannot_read(monkeypatch):
    monkeypatch.delenv(kernels._ENV_NO_COMPILE, raising=False)
    x = torch.randn(4, 3)
    rowptr = torch.tensor([0, 1, 2], dtype=torch.int64)
    col = torch.tensor([0, 2], dtype=torch.int64)
    row = torch.tensor([0, 1], dtype=torch.int64)
    val = torch.randn(2)
    assert torch.allclose(kernels.forward(x, val, rowptr, col, row, 2),
                          torch.stack([x[:, 0] * val[0], x[:, 2] * val[1]], 1))
    with pytest.raises(ValueError, match="col must be a contiguous 1-D int64 CPU tensor"):
        kernels.forward(x, val, rowptr, col.to("meta"), row, 2)
    with pytest.raises(ValueError, match="col must be a contiguous 1-D int64 CPU tensor"):
        kernels.forward(x, val, rowptr, col.int(), row, 2)
    with pytest.raises(ValueError, match="rowptr of length 3"):
        kernels.forward(x, val, rowptr[:2], col, row, 2)
    with pytest.raises(ValueError, match="the output gradient must be torch.float32 of batch 4"):
        kernels.backward(x, torch.randn(5, 2), val, rowptr, col, row, True, True)
