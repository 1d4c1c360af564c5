r"""Settings of a language-model run (``netshape train --task lm``): :class:`LMConfig`.

Defaults scale the paper's Table 6 (LLaMA-60M on OpenWebText) down to a CPU:
Adam, peak learning rate 3e-3 for DST methods and 1e-3 for ``fc``, the
``inoam`` schedule for DST methods and ``noam`` for ``fc`` (warm-up over the
first 10 % of the steps, an iterative warm-up of 20 steps after each topology
update), :math:`\zeta = 0.1`, a topology update every 100 steps, every linear
layer of the blocks sparsified, the embedding and the output head dense.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from .._validation import check_choice, check_density, check_positive_int
from ..train._common import check_config_keys, check_seed, check_snapshot_every
from .shape import LMShape

__all__ = ["FC_LR", "DST_LR", "LMConfig", "resolve"]

#: peak learning rates of Table 6
DST_LR, FC_LR = 3e-3, 1e-3


@dataclasses.dataclass
class LMConfig:
    """Everything that defines a language-model run; ``None`` fields take derived defaults.

    Attributes
    ----------
    method : ``fc`` or a preset of :data:`netshape.torch.PRESETS`
    density : fraction of links kept in every sparsified layer (0.3: 70 % sparsity)
    steps : optimizer steps of the run
    batch_size, context : sequences per step and tokens (bytes) per sequence
    d_model, n_layers, n_heads, n_kv_heads, ffn : the decoder (see :mod:`netshape.torch._lm_model`);
        ``n_kv_heads`` below ``n_heads`` gives grouped-query attention
    lr : peak learning rate (default 3e-3, 1e-3 for ``fc``)
    warmup : noam warm-up steps (default 10 % of ``steps``)
    iterative_warmup : inoam warm-up steps after each topology update
    zeta : fraction of links removed per update (default 0.1; ``overrides["zeta"]`` wins)
    update_every : optimizer steps between topology updates
    eval_every : steps between evaluations, each followed by a checkpoint
        (default ``steps / 10``)
    eval_windows : validation sequences of ``context`` tokens per evaluation, evenly
        spaced over the validation side (the same ones every time)
    val_fraction : expected share of files on the validation side
    data_dir : a directory of text files (default: the standard-library sources)
    snapshot_every : topology updates between snapshots (default about ten per run; 0: none)
    overrides : preset components for :func:`netshape.torch.sparsify` (``--set``)
    """

    task: str = "lm"
    method: str = "chts"
    density: float = 0.3
    steps: int = 1000
    batch_size: int = 16
    context: int = 128
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    n_kv_heads: int | None = None
    ffn: int = 344
    lr: float | None = None
    warmup: int | None = None
    iterative_warmup: int = 20
    zeta: float | None = 0.1
    update_every: int = 100
    eval_every: int | None = None
    eval_windows: int = 32
    val_fraction: float = 0.1
    data_dir: str | None = None
    rng: int = 0
    snapshot_every: int | None = None
    overrides: dict = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> LMConfig:
        check_config_keys(cls, d)
        return cls(**d)

    @property
    def shape(self) -> LMShape:
        return LMShape(d_model=self.d_model, n_layers=self.n_layers, n_heads=self.n_heads,
                       n_kv_heads=self.n_kv_heads, ffn=self.ffn, context=self.context)


def _positive_real(v: Any, name: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name}={v!r} must be a positive finite number")
    return float(v)


def resolve(config: LMConfig) -> LMConfig:
    """Fill derived defaults and validate every field (before any data is read)."""
    from ..train import METHODS

    c = dataclasses.replace(config, overrides=dict(config.overrides or {}))
    check_choice(c.task, "task", ("lm",))
    from ..torch.methods import canonical_method

    c.method = check_choice(canonical_method(c.method), "method", METHODS)
    c.density = check_density(c.density, "density")
    for name in ("steps", "batch_size", "context", "d_model", "n_layers", "n_heads", "ffn",
                 "iterative_warmup", "update_every", "eval_windows"):
        setattr(c, name, check_positive_int(getattr(c, name), name))
    c.shape.validated()
    if c.lr is None:
        c.lr = FC_LR if c.method == "fc" else DST_LR
    c.lr = _positive_real(c.lr, "lr")
    if c.warmup is None:
        c.warmup = max(1, c.steps // 10)
    c.warmup = check_positive_int(c.warmup, "warmup")
    if c.eval_every is None:
        c.eval_every = max(1, c.steps // 10)
    c.eval_every = check_positive_int(c.eval_every, "eval_every")
    if c.zeta is not None and not 0.0 < float(c.zeta) < 1.0:
        raise ValueError(f"zeta={c.zeta!r} is outside the allowed range (0, 1)")
    if not 0.0 < float(c.val_fraction) < 1.0:
        raise ValueError(f"val_fraction={c.val_fraction!r} is outside the allowed range (0, 1)")
    check_seed(c.rng)
    c.snapshot_every = check_snapshot_every(c.snapshot_every)
    if c.method != "fc":  # bad --set components fail now, before the run directory exists
        from ..torch import resolve_method

        resolve_method(c.method, {**({} if c.zeta is None else {"zeta": c.zeta}), **c.overrides})
    elif c.overrides:
        raise ValueError(f"overrides={c.overrides!r} configure a DST preset; method='fc' "
                         "takes none")
    if c.method != "fc" and c.update_every >= c.steps:
        raise ValueError(f"update_every={c.update_every!r} leaves no topology update in a run "
                         f"of {c.steps} steps; allowed: 1 to {c.steps - 1}")
    return c
