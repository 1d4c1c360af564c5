"""The ``netshape train`` runner: an MLP trained dense (``fc``) or with a DST preset.

One job per module: :mod:`~netshape.train._config` (:class:`TrainConfig`,
defaults, validation), :mod:`~netshape.train._model` (the MLP, data order,
learning rate), :mod:`~netshape.torch._train_loop` (training, resuming, comparing; it needs torch),
:mod:`~netshape.train._rundir` (the run directory's files) and
:mod:`~netshape.train._table` (the comparison table).

>>> from netshape.train import METHODS
>>> METHODS[0], "chts" in METHODS
('fc', True)
"""

from .._lazy import lazy_exports

# the loop needs torch; the config does not: members load on first use, so
# ``import netshape.train`` (and ``TrainConfig``) works without importing torch
__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "DATASET_DEFAULTS": "_config", "TrainConfig": "_config", "resolve": "_config",
    "METHODS": "..torch._train_loop", "compare": "..torch._train_loop",
    "compare_methods_of": "..torch._train_loop", "resume": "..torch._train_loop",
    "train": "..torch._train_loop",
})
