"""read_checkpoint: every mask convention, nesting, formats, and refusal of unsafe/broken files."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from netshape.io import read_checkpoint
from netshape.io._checkpoint import CheckpointError

torch = pytest.importorskip("torch")
nn = torch.nn
prune = pytest.importorskip("torch.nn.utils.prune")


def mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))


def pruned_mlp(seed=0):
    m = mlp(seed)
    prune.random_unstructured(m[0], "weight", amount=0.6)
    prune.random_unstructured(m[2], "weight", amount=0.5)
    return m, {"0": m[0].weight_mask.T.bool().numpy(), "2": m[2].weight_mask.T.bool().numpy()}


def check(layers, expect):
    assert list(layers) == list(expect)
    for k, A in expect.items():
        assert layers[k].shape == A.shape  # (n_in, n_out) = mask transposed
        assert np.array_equal(layers[k].toarray(), A)
        assert layers[k].dtype == bool


def test_torch_prune(tmp_path):
    m, expect = pruned_mlp()
    torch.save(m.state_dict(), tmp_path / "ck.pt")
    check(read_checkpoint(tmp_path / "ck.pt"), expect)


def test_parametrize_mask_buffer(tmp_path):
    from torch.nn.utils import parametrize

    class MaskP(nn.Module):
        def __init__(self, mask):
            super().__init__()
            self.register_buffer("mask", mask)

        def forward(self, w):
            return w * self.mask

    m = mlp()
    masks = [torch.rand(5, 6) < 0.4, torch.rand(3, 5) < 0.4]
    parametrize.register_parametrization(m[0], "weight", MaskP(masks[0]))
    parametrize.register_parametrization(m[2], "weight", MaskP(masks[1]))
    assert "0.parametrizations.weight.0.mask" in m.state_dict()
    torch.save({"model": m.state_dict(), "epoch": 3}, tmp_path / "ck.pth")
    check(read_checkpoint(tmp_path / "ck.pth"), {"0": masks[0].T.numpy(), "2": masks[1].T.numpy()})


def test_netshape_adapter_masks(tmp_path):
    ns_torch = pytest.importorskip("netshape.torch")
    if not hasattr(ns_torch, "apply_mask"):
        pytest.skip("netshape.torch.apply_mask not available")
    m = mlp()
    mask = torch.rand(5, 6) < 0.5
    ns_torch.apply_mask(m[0], mask)
    torch.save({"state_dict": m.state_dict()}, tmp_path / "ck.pt")
    layers = read_checkpoint(tmp_path / "ck.pt")
    assert np.array_equal(layers["0"].toarray(), mask.T.numpy())


def test_torch_ao_pruning_sparsifier_state(tmp_path):
    from torch.ao.pruning import WeightNormSparsifier

    m = mlp()
    s = WeightNormSparsifier(sparsity_level=0.5, sparse_block_shape=(1, 1), zeros_per_block=1)
    s.prepare(m, [{"tensor_fqn": "0.weight"}, {"tensor_fqn": "2.weight"}])
    s.step()
    expect = {k[:-7]: v["mask"].T.bool().numpy() for k, v in s.state_dict()["state"].items()}
    sd = s.state_dict()
    # its state is a defaultdict, which the safe loader refuses (with a hint)
    torch.save({"model": m.state_dict(), "sparsifier": sd}, tmp_path / "raw.pt")
    with pytest.raises(CheckpointError, match="dict()"):
        read_checkpoint(tmp_path / "raw.pt")
    sd = {**sd, "state": dict(sd["state"])}
    torch.save({"model": m.state_dict(), "sparsifier": sd}, tmp_path / "ao.pt")
    check(read_checkpoint(tmp_path / "ao.pt"), expect)


def test_ddp_prefix_and_nested_state_dict(tmp_path):
    m, expect = pruned_mlp(1)
    sd = {f"module.{k}": v for k, v in m.state_dict().items()}
    torch.save({"state_dict": sd, "optimizer": {"state": {}, "param_groups": []}},
               tmp_path / "ddp.ckpt")
    check(read_checkpoint(tmp_path / "ddp.ckpt"), expect)


def test_safetensors_and_npz(tmp_path):
    from safetensors.numpy import save_file

    m, expect = pruned_mlp(2)
    sd = {k: v.numpy() for k, v in m.state_dict().items()}
    save_file(sd, str(tmp_path / "ck.safetensors"))
    check(read_checkpoint(tmp_path / "ck.safetensors"), expect)
    np.savez(tmp_path / "ck.npz", **sd)
    check(read_checkpoint(tmp_path / "ck.npz"), expect)


def test_fallback_weight_nonzero_warns(tmp_path):
    m = mlp()
    with torch.no_grad():
        m[0].weight[m[0].weight.abs() < 0.2] = 0
    torch.save(m.state_dict(), tmp_path / "dense.pt")
    with pytest.warns(UserWarning, match="weight 0"):
        layers = read_checkpoint(tmp_path / "dense.pt")
    assert np.array_equal(layers["0"].toarray(), (m[0].weight != 0).T.numpy())
    assert layers["2"].nnz == 15


class Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_pickled_object_refused(tmp_path, capsys):
    torch.save({"model": mlp().state_dict(), "evil": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match=r"evil\.pt.*pickled Python object"):
        read_checkpoint(tmp_path / "evil.pt")
    assert "this must never run" not in capsys.readouterr().out
    torch.save(mlp(), tmp_path / "module.pt")  # a whole nn.Module is a pickled object too
    with pytest.raises(ValueError, match=r"module\.pt"):
        read_checkpoint(tmp_path / "module.pt")
    np.savez(tmp_path / "obj.npz", a=np.array([{"x": 1}], dtype=object))
    with pytest.raises(CheckpointError, match=r"obj\.npz.*pickled"):
        read_checkpoint(tmp_path / "obj.npz")


def test_missing_truncated_corrupt(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        read_checkpoint(tmp_path / "nope.pt")
    m, _ = pruned_mlp()
    torch.save(m.state_dict(), tmp_path / "ok.pt")
    data = (tmp_path / "ok.pt").read_bytes()
    (tmp_path / "trunc.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"trunc\.pt"):
        read_checkpoint(tmp_path / "trunc.pt")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00\x01garbage" * 10)
    with pytest.raises(CheckpointError, match=r"junk\.safetensors"):
        read_checkpoint(tmp_path / "junk.safetensors")
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(CheckpointError, match=r"junk\.npz"):
        read_checkpoint(tmp_path / "junk.npz")
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"empty\.pt.*0 bytes"):
        read_checkpoint(tmp_path / "empty.pt")
    with pytest.raises(IsADirectoryError):
        read_checkpoint(tmp_path)
    torch.save({"step": torch.tensor(3)}, tmp_path / "nolayers.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(CheckpointError, match="no 2-D layer"):
            read_checkpoint(tmp_path / "nolayers.pt")


def test_multihead_attention_packed_mask_split_into_q_k_v(tmp_path):
    attn = nn.MultiheadAttention(8, 2)
    prune.random_unstructured(attn, "in_proj_weight", amount=0.5)
    prune.random_unstructured(attn.out_proj, "weight", amount=0.5)
    torch.save(attn.state_dict(), tmp_path / "mha.pt")
    layers = read_checkpoint(tmp_path / "mha.pt")
    packed = attn.in_proj_weight_mask.bool().numpy()
    assert set(layers) == {"q", "k", "v", "out_proj"}
    for i, tag in enumerate("qkv"):
        assert np.array_equal(layers[tag].toarray(), packed[8 * i:8 * (i + 1)].T)


def test_netshape_topology_file_is_read_as_is(tmp_path):
    import scipy.sparse as sp

    from netshape.io import save_topology

    net = {"a": sp.csr_array(np.eye(3, 4)), "b": sp.csr_array(np.ones((4, 2)))}
    save_topology(tmp_path / "snap.npz", net)
    layers = read_checkpoint(tmp_path / "snap.npz")
    assert list(layers) == ["a", "b"]
    assert np.array_equal(layers["a"].toarray(), np.eye(3, 4, dtype=bool))
    save_topology(tmp_path / "one.npz", np.eye(2))
    assert list(read_checkpoint(tmp_path / "one.npz")) == ["layer"]


def test_checkpoint_reads_refuse_files_over_max_bytes(tmp_path):
    from netshape.io._checkpoint import MAX_CHECKPOINT_BYTES
    from netshape.train import _rundir as rd

    path = tmp_path / "ck.pt"
    rd.save_checkpoint(path, {"model": {"fc.weight": torch.ones(3, 2)}})
    size = path.stat().st_size
    with pytest.raises(CheckpointError, match=rf"ck\.pt' is {size} bytes, more than "
                                              rf"max_bytes={size - 1}"):
        read_checkpoint(path, max_bytes=size - 1)
    with pytest.raises(CheckpointError, match=rf"is {size} bytes, more than max_bytes="):
        rd.load_checkpoint(path, max_bytes=size - 1)
    with pytest.warns(UserWarning, match="stores no masks"):
        assert read_checkpoint(path, max_bytes=size)["fc"].shape == (2, 3)  # at the limit
    assert set(rd.load_checkpoint(path, max_bytes=size)["model"]) == {"fc.weight"}
    assert rd.load_checkpoint(path, max_bytes=None)["model"]["fc.weight"].shape == (3, 2)
    assert MAX_CHECKPOINT_BYTES >= 2**34  # the default leaves room for real models
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="max_bytes="):
            read_checkpoint(path, max_bytes=bad)
