"""Two CPU processes on gloo: every rank ends every update with identical masks."""

from __future__ import annotations

import sys

import pytest

torch = pytest.importorskip("torch")
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402


def _worker(rank: int, world: int, store: str, out: str, here: str) -> None:
    sys.path.insert(0, here)
    torch.set_num_threads(1)  # two processes on a shared machine
    # a file store: no TCP port that another process on the machine could take first
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        results = {m: _run(rank, world, m) for m in ("chts", "rigl")}
        results["chts_shard"] = _run(rank, world, "chts", shard=True)
        for m in ("chts", "rigl"):  # sparse execution: values re-indexed in place on every rank
            results[f"{m}_sparse"] = _run(rank, world, m, execution="sparse")
        if rank == 0:
            torch.save(results, out)
    finally:
        dist.destroy_process_group()


def _run(rank: int, world: int, method: str, **extra) -> dict:
    import warnings

    from conftest import make_batch, make_model
    from netshape.torch import sparsify

    model = make_model("mlp", seed=rank)  # different inits on purpose
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    # different rng per rank: without the broadcast the masks would differ
    dst = sparsify(model, opt, method=method, density=0.25, total_steps=13,
                   update_every=3, rng=100 + rank, initial_density=0.5, **extra)
    with warnings.catch_warnings():  # the masks must not be synced by DDP's forward
        warnings.simplefilter("ignore", FutureWarning)
        ddp_model = torch.nn.parallel.DistributedDataParallel(model, broadcast_buffers=False)
    agree = []

    def same_everywhere() -> bool:
        ok = True
        for m in dst.masks.values():
            got = [torch.zeros_like(m, dtype=torch.uint8) for _ in range(world)]
            dist.all_gather(got, m.to(torch.uint8))
            ok &= all(torch.equal(got[0], g) for g in got)
        return ok

    agree.append(same_everywhere())
    for step in range(12):
        x, y = make_batch("mlp", 1000 * rank + step)  # different data per rank
        opt.zero_grad()
        torch.nn.functional.cross_entropy(ddp_model(x), y).backward()
        opt.step()
        before = dst.update_count
        dst.step()
        if dst.update_count > before:  # check after every update, changed or not
            agree.append(same_everywhere())
    weights_zero = all(bool((lay.weight[~lay.mask] == 0).all())
                       for lay in dst._layers.values())
    sparse = all(s["execution"] == "sparse" for s in dst.stats().values())
    return {"agree": agree, "updates": dst.update_count, "zero": weights_zero, "sparse": sparse,
            "masks": {n: m.clone() for n, m in dst.masks.items()}}


def test_two_gloo_ranks_agree(tmp_path):
    import os

    out = str(tmp_path / "result.pt")
    here = os.path.dirname(os.path.abspath(__file__))
    mp.spawn(_worker, args=(2, str(tmp_path / "store"), out, here), nprocs=2, join=True)
    res = torch.load(out, weights_only=True)
    # rigl stops updating at 0.75 of training: steps 3, 6, 9; chts also at 12
    assert res["chts"]["updates"] == 4 and res["rigl"]["updates"] == 3
    # spreading the layers over the ranks computes exactly what rank 0 alone computes
    assert res["chts_shard"]["updates"] == 4
    for n, m in res["chts"]["masks"].items():
        assert torch.equal(m, res["chts_shard"]["masks"][n])
    for m in ("chts", "rigl"):
        assert res[f"{m}_sparse"]["sparse"] and not res[m]["sparse"]
        assert res[f"{m}_sparse"]["updates"] == res[m]["updates"]
        for n, mask in res[m]["masks"].items():
            assert torch.equal(mask, res[f"{m}_sparse"]["masks"][n])
    for r in res.values():
        assert r["agree"] == [True] * (r["updates"] + 1)
        assert r["zero"]
