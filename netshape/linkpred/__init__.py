"""Link prediction on the bipartite topology of a layer (Cannistraci-Hebb and baselines).

Every predictor takes a biadjacency ``A`` of shape ``(n_in, n_out)`` — rows are
the layer's inputs, columns its outputs; a torch ``nn.Linear`` mask is
``(out, in)``, so pass ``mask.T`` — and returns float32 scores of the same
shape, exactly 0 on existing links, in ``A``'s family and on its device.

>>> import numpy as np, netshape as ns
>>> S = ns.linkpred.predict(np.array([[1, 0], [0, 1]]), "ch2_l3n")
>>> S.dtype, S.shape
(dtype('float32'), (2, 2))

The predictors live in private modules (``_ch2_l3n``, ``_ch3_l3p``, as scipy
and networkx keep theirs): ``netshape.linkpred.ch2_l3n`` is the function.
"""

from ._ch2_l3n import ch2_l3n, ch3_l3n, choose_path
from ._ch3_l3p import ch2_l3p, ch3_l3p
from ._registry import available, methods, predict
from .baselines import l3_paths, ra_l3, random_scores

__all__ = [
    "available",
    "ch2_l3n",
    "ch2_l3p",
    "ch3_l3n",
    "ch3_l3p",
    "choose_path",
    "l3_paths",
    "methods",
    "predict",
    "ra_l3",
    "random_scores",
]
