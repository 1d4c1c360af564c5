"""Language modelling with dynamic sparse training: ``netshape train --task lm``.

A byte-level LLaMA-style decoder (:mod:`netshape.torch._lm_model`) trained on any
directory of text files, by default the running interpreter's own
standard-library sources (:mod:`netshape.lm.data`), dense (``fc``) or with a
DST preset, with the paper's Table 6 recipe scaled down
(:mod:`netshape.lm.config`) and the ``inoam`` schedule
(:mod:`netshape.torch.lr`). The members need torch; they are imported on
first use, so ``netshape --help`` works without it.

>>> from netshape.lm import LMConfig
>>> LMConfig().density, LMConfig().update_every, LMConfig().zeta
(0.3, 100, 0.1)
"""

from .._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "Corpus": "data", "load_corpus": "data",
    "Decoder": "..torch._lm_model", "LMShape": "shape", "build_decoder": "..torch._lm_model",
    "percolation_pairs": "..torch._lm_model",
    "LMConfig": "config", "resolve": "config",
    "compare": "..torch._lm_runner", "resume": "..torch._lm_runner",
    "train": "..torch._lm_runner",
})
