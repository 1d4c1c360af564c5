"""The ``netshape train`` runner: an MLP trained dense (``fc``) or with a DST preset.

One job per module: :mod:`~netshape.train._config` (:class:`TrainConfig`,
defaults, validation), :mod:`~netshape.train._model` (the MLP, data order,
learning rate), :mod:`~netshape.train._loop` (training, resuming, comparing),
:mod:`~netshape.train._rundir` (the run directory's files) and
:mod:`~netshape.train._table` (the comparison table).

>>> from netshape.train import METHODS
>>> METHODS[0], "chts" in METHODS
('fc', True)
"""

from ._config import DATASET_DEFAULTS, TrainConfig, resolve
from ._loop import METHODS, compare, compare_methods_of, resume, train

__all__ = ["DATASET_DEFAULTS", "METHODS", "TrainConfig", "compare", "compare_methods_of",
           "resolve", "resume", "train"]
