"""``torch.distributed`` helpers: every rank ends each topology update with identical masks.

The engine computes each layer's new mask on one rank (rank 0, or spread
round-robin over the ranks with ``shard=True``) and broadcasts it; the
computing rank is the single source of truth. Every rank draws the same random
streams (the RNG state is broadcast at ``sparsify`` time) and runs the
deterministic percolation on the same broadcast masks. Dense gradients used
by gradient-based regrowth/removal are averaged over ranks first, so the
computing rank sees the global-batch gradient.
Nothing here does anything when torch.distributed is not initialised or the
world has one process.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

__all__ = ["all_reduce_ints", "all_reduce_mean", "broadcast_bool", "broadcast_ints",
           "broadcast_object", "is_distributed", "rank", "world_size"]


def is_distributed() -> bool:
    """True inside an initialised process group with more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 outside a process group)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    """Number of processes (1 outside a process group)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def broadcast_object(obj, src: int = 0):
    """``src``'s picklable ``obj`` on every rank (used once, for the RNG state)."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_reduce_ints(values: list[int]) -> list[int]:
    """Element-wise sum of int lists over ranks (each rank fills the entries it owns)."""
    if not is_distributed() or not values:
        return list(values)
    t = torch.tensor(values, dtype=torch.int64)
    buf = t.to(_comm_device(t))
    dist.all_reduce(buf, op=dist.ReduceOp.SUM)
    return [int(v) for v in buf.cpu().tolist()]


def _comm_device(t: torch.Tensor) -> torch.device:
    # NCCL only moves CUDA tensors; gloo moves CPU ones
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def broadcast_bool(masks: list[torch.Tensor], src: int = 0) -> None:
    """Broadcast bool tensors from ``src`` in place (packed as uint8 in one message)."""
    if not is_distributed() or not masks:
        return
    dev = _comm_device(masks[0])
    flat = torch.cat([m.reshape(-1).to(device=dev, dtype=torch.uint8) for m in masks])
    dist.broadcast(flat, src=src)
    off = 0
    for m in masks:
        n = m.numel()
        m.copy_(flat[off:off + n].view(m.shape).to(device=m.device, dtype=torch.bool))
        off += n


def broadcast_ints(values: list[int], src: int = 0) -> list[int]:
    """Broadcast a list of Python ints from ``src``; every rank returns ``src``'s list."""
    if not is_distributed() or not values:
        return list(values)
    t = torch.tensor(values, dtype=torch.int64)
    t = t.to(_comm_device(t))
    dist.broadcast(t, src=src)
    return [int(v) for v in t.cpu().tolist()]


def all_reduce_mean(t: torch.Tensor) -> torch.Tensor:
    """Average ``t`` over ranks (returns ``t`` itself outside a process group)."""
    if not is_distributed():
        return t
    dev = _comm_device(t)
    buf = t.to(dev).clone()
    dist.all_reduce(buf, op=dist.ReduceOp.SUM)
    return (buf / dist.get_world_size()).to(t.device)
