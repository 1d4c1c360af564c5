"""Settings of a ``netshape train`` run: :class:`TrainConfig`, defaults, validation."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from .._validation import check_choice, check_density, check_positive_int, check_range
from ..datasets import DATASETS
from ._common import check_config_keys, check_seed, check_snapshot_every

__all__ = ["DATASET_DEFAULTS", "TrainConfig", "methods", "resolve"]

#: per-dataset defaults for the fields left as None in :class:`TrainConfig`
DATASET_DEFAULTS: dict[str, dict[str, Any]] = {
    # 64 inputs, 1438 training images: small layers, 90 % sparsity, 40 short epochs
    "digits": {"hidden": (256, 256, 256), "density": 0.1, "epochs": 40},
    "fashion-mnist": {"hidden": (1568, 1568, 1568), "density": 0.01, "epochs": 100},
    "mnist": {"hidden": (1568, 1568, 1568), "density": 0.01, "epochs": 100},
    "emnist": {"hidden": (1568, 1568, 1568), "density": 0.01, "epochs": 100},
    "cifar10": {"hidden": (3072, 3072, 3072), "density": 0.01, "epochs": 100},
}


@dataclasses.dataclass
class TrainConfig:
    r"""Everything that defines a run; ``None`` fields take the dataset's defaults.

    ``density`` is the fraction of links kept in every sparsified layer (all
    hidden ``nn.Linear`` layers; the classifier stays dense). ``zeta`` and
    ``overrides`` are passed to :func:`netshape.torch.sparsify` when set;
    otherwise the preset's own values apply. ``steps_per_epoch`` caps the
    batches of an epoch (quick tests); ``update_every`` is the number of
    optimizer steps between topology updates (default: one update per epoch);
    ``snapshot_every`` counts topology updates between snapshots (default:
    about ten per run; 0: none). The learning rate, the soft-removal and
    temperature ramps and the density schedules are fractions of the whole
    run's steps, whatever ``update_every`` is.

    ``init_scale="fan_in"`` (default) rescales each sparsified layer's initial
    weights row by row so that output neuron :math:`j` with :math:`k_j` links
    draws from :math:`U(-1/\sqrt{k_j}, 1/\sqrt{k_j})`, PyTorch's default
    bound for a dense layer of fan-in :math:`k_j`. Without it (``"dense"``:
    the bound :math:`1/\sqrt{n_{in}}` of the dense layer) a 1 %-dense layer
    shrinks the signal about tenfold per layer and a 3-hidden-layer MLP starts
    with near-constant outputs and vanishing gradients.

    ``execution`` (``"auto"``, ``"masked"`` or ``"sparse"``) is passed to
    :func:`netshape.torch.sparsify`: sparse layers store only their links
    and train in time proportional to them (:mod:`netshape.torch.execution`).
    """

    dataset: str = "digits"
    method: str = "chts"
    density: float | None = None
    epochs: int | None = None
    hidden: tuple[int, ...] | None = None
    batch_size: int = 32
    lr: float = 0.025
    lr_end: float = 2.5e-4
    momentum: float = 0.9
    weight_decay: float = 5e-4
    zeta: float | None = None
    rng: int = 0
    data_dir: str | None = None
    steps_per_epoch: int | None = None
    update_every: int | None = None
    snapshot_every: int | None = None
    init_scale: str = "fan_in"
    execution: str = "auto"
    overrides: dict = dataclasses.field(default_factory=dict)
    #: "mlp"; language models (``--task lm``) are configured by :class:`netshape.lm.LMConfig`
    task: str = "mlp"

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["hidden"] = list(d["hidden"]) if d["hidden"] is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        check_config_keys(cls, d)
        d = dict(d)
        if d.get("hidden") is not None:
            d["hidden"] = tuple(d["hidden"])
        return cls(**d)


def resolve(config: TrainConfig) -> TrainConfig:
    """Fill dataset defaults and validate every field (before any data is read)."""
    if config.task != "mlp":
        raise ValueError(f"task={config.task!r}: TrainConfig is the MLP runner's (task 'mlp'); "
                         "a language model (task 'lm') takes netshape.lm.LMConfig")
    check_choice(config.dataset, "dataset", DATASETS)
    allowed = methods()  # first: names the extra when torch is missing
    from ..torch.methods import canonical_method

    config = dataclasses.replace(config, method=canonical_method(config.method))
    check_choice(config.method, "method", allowed)
    defaults = DATASET_DEFAULTS[config.dataset]
    c = dataclasses.replace(config, overrides=dict(config.overrides or {}))
    for key in ("hidden", "density", "epochs"):
        if getattr(c, key) is None:
            setattr(c, key, defaults[key])
    c.hidden = tuple(check_positive_int(h, "hidden") for h in c.hidden)
    if not c.hidden:
        raise ValueError("hidden=() needs at least one hidden layer to sparsify")
    c.density = check_density(c.density, "density")
    c.epochs = check_positive_int(c.epochs, "epochs")
    c.batch_size = check_positive_int(c.batch_size, "batch_size")
    c.lr = check_range(c.lr, "lr", 0, math.inf, lo_open=True, hi_open=True)
    c.lr_end = check_range(c.lr_end, "lr_end", 0, math.inf, lo_open=True, hi_open=True)
    check_range(c.momentum, "momentum", 0, 1, hi_open=True)
    check_range(c.weight_decay, "weight_decay", 0, math.inf, hi_open=True)
    if c.zeta is not None:
        check_range(c.zeta, "zeta", 0, 1, lo_open=True, hi_open=True)
    check_seed(c.rng)
    if c.steps_per_epoch is not None:
        c.steps_per_epoch = check_positive_int(c.steps_per_epoch, "steps_per_epoch")
    if c.update_every is not None:
        c.update_every = check_positive_int(c.update_every, "update_every")
    c.snapshot_every = check_snapshot_every(c.snapshot_every)
    check_choice(c.init_scale, "init_scale", ("fan_in", "dense"))
    check_choice(c.execution, "execution", ("auto", "masked", "sparse"))
    return c


def methods() -> tuple[str, ...]:
    """The presets of :data:`netshape.torch.PRESETS`, ``fc`` (no sparsification) first."""
    try:
        from ..torch import PRESETS
    except ImportError as exc:
        raise ImportError(f"netshape train needs netshape's torch adapter "
                          f"(netshape.torch), which failed to import: {exc}") from exc
    return tuple(PRESETS)
