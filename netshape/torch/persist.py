"""Checkpointing and topology snapshots of :class:`~netshape.torch.engine.DynamicSparseTrainer`."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np
import torch

from . import distributed as ddp
from .masking import to_biadjacency
from .methods import _RETIRED, canonical_method

__all__ = ["PersistenceMixin"]


class PersistenceMixin:
    """``state_dict`` / ``load_state_dict`` / ``save`` / ``load`` / ``save_snapshot``."""

    def state_dict(self) -> dict[str, Any]:
        """Masks, step, update count, RNG state, ITOP union, historical weights, stats."""
        return {
            "method": self.config["method"], "density": self.density,
            "total_steps": self.total_steps, "update_every": self.update_every,
            "step": self.step_count, "updates": self.update_count, "stopped": self.stopped,
            "rng": self._rng.bit_generator.state,
            "masks": {n: lay.mask.clone() for n, lay in self._layers.items()},
            "itop": _itop_to_torch(self._itop.state_dict()),
            "hist": {n: lay.hist.clone() for n, lay in self._layers.items()
                     if lay.hist is not None},
            "stats": {n: dict(lay.stats) for n, lay in self._layers.items()},
            "execution": {n: lay.execution for n, lay in self._layers.items()},
        }

    @torch.no_grad()
    def load_state_dict(self, sd: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (after ``model.load_state_dict``); checks it matches."""
        for key in ("method", "total_steps", "update_every"):
            saved = sd.get(key)
            if key == "method" and isinstance(saved, str) and saved.lower() in _RETIRED:
                saved = canonical_method(saved)  # engines saved under a retired name load
            if saved != getattr(self, key, self.config.get(key)):
                mine = getattr(self, key, self.config.get(key))
                raise ValueError(f"state_dict {key}={sd.get(key)!r} does not match this "
                                 f"trainer's {key}={mine!r}")
        if set(sd["masks"]) != set(self._layers):
            raise ValueError(f"state_dict layers {sorted(sd['masks'])} do not match "
                             f"{sorted(self._layers)}")
        self.step_count, self.update_count = int(sd["step"]), int(sd["updates"])
        self.stopped = bool(sd.get("stopped", False))
        self._itop.load_state_dict(sd["itop"])
        self._rng.bit_generator.state = sd["rng"]
        for n, lay in self._layers.items():
            lay.restore_mask(sd["masks"][n])
            h = sd["hist"].get(n)
            lay.hist = None if h is None else h.clone().to(lay.weight.device)
            lay.stats = dict(sd["stats"][n])
        self._arm_capture()

    def prepare_resume(self, sd: dict[str, Any]) -> None:
        """Put each layer in the execution mode recorded in ``sd`` (call before
        ``model.load_state_dict``: under ``execution="auto"`` a layer may have
        switched modes since ``sparsify``, and the model's keys follow the mode)."""
        from .execution import to_masked, to_sparse

        for n, mode in sd.get("execution", {}).items():
            lay = self._layers.get(n)
            if lay is not None and lay.execution != mode:
                convert = to_sparse if mode == "sparse" else to_masked
                self._layers[n] = convert(lay, self.model, self.optimizer)

    def save(self, path) -> None:
        """Write :meth:`state_dict` to ``path`` atomically (``torch.save``, temp + rename)."""
        from .._fs import atomic_path

        with atomic_path(path) as tmp:
            torch.save(self.state_dict(), tmp)

    def load(self, path) -> None:
        """Read a file written by :meth:`save` (``weights_only=True``) and restore it."""
        self.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))

    def save_snapshot(self) -> str:
        """Write the current topologies to ``snapshot_dir/update_NNNNNN.npz`` (A = mask.T).

        Uses :func:`netshape.io.save_topology` (layer names as keys, biadjacency
        orientation ``(n_in, n_out)``, written atomically by rank 0); returns the path.
        """
        import os

        from ..io import save_topology

        os.makedirs(self.snapshot_dir, exist_ok=True)
        path = os.path.join(self.snapshot_dir, f"update_{self.update_count:06d}.npz")
        mapping = OrderedDict((n, to_biadjacency(lay.mask)) for n, lay in self._layers.items())
        if ddp.rank() == 0:
            save_topology(path, mapping)
        return path


def _itop_to_torch(sd: dict[str, Any]) -> dict[str, Any]:
    # numpy arrays do not pass torch.load(weights_only=True); tensors do
    out = dict(sd)
    out["shapes"] = torch.from_numpy(np.asarray(sd["shapes"]))
    out["bits"] = [torch.from_numpy(b) for b in sd["bits"]]
    return out
