"""Pieces of the training runner that touch torch: the MLP, the data order, the metrics.

torch is imported inside functions so that importing this module stays light.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["anp_of_chain", "build_mlp", "epoch_order", "evaluate", "layer_masks", "linear_lr"]


def build_mlp(n_in: int, hidden: Sequence[int], n_out: int, *, seed: int):
    """``nn.Sequential`` MLP: Linear+ReLU per hidden width, then a Linear classifier.

    Initialised with PyTorch's default ``nn.Linear`` scheme from a private
    stream seeded by ``seed`` (the global torch RNG is left untouched).

    >>> m = build_mlp(4, [3, 2], 5, seed=0)
    >>> [tuple(p.shape) for p in m.parameters()][::2]
    [(3, 4), (2, 3), (5, 2)]
    """
    import torch
    from torch import nn

    widths = [int(n_in), *[int(h) for h in hidden], int(n_out)]
    layers: list[nn.Module] = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            layers.append(nn.Linear(a, b))
            if i < len(widths) - 2:
                layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def layer_masks(model, dst, *, include=None) -> dict:
    """``(out, in)`` bool masks of the layers a sparse run sparsifies, by module name.

    A dense run (``dst`` None, or a preset that sparsifies nothing) gets the same
    layers, all ones (:func:`netshape.torch.groups.find_slots` with ``include``, the
    selection ``sparsify`` makes), so that its checkpoint, summary and analysis name
    the same layers as a sparse run of the architecture (the head stays out of both).

    >>> m = build_mlp(4, [3], 2, seed=0)
    >>> {k: tuple(v.shape) for k, v in layer_masks(m, None).items()}
    {'0': (3, 4)}
    """
    import torch

    if dst is not None and dst.masks:
        return {k: m.detach().cpu().clone() for k, m in dst.masks.items()}
    from ..torch.groups import find_slots

    return {s.name: torch.ones(s.n_out, s.n_in, dtype=torch.bool)
            for s in find_slots(model, include)}


def linear_lr(step: int, total_steps: int, start: float, end: float) -> float:
    """Learning rate falling linearly from ``start`` (step 0) to ``end`` (last step).

    >>> linear_lr(0, 11, 1.0, 0.0), linear_lr(5, 11, 1.0, 0.0), linear_lr(10, 11, 1.0, 0.0)
    (1.0, 0.5, 0.0)
    """
    if total_steps <= 1:
        return float(start)
    frac = min(max(step, 0), total_steps - 1) / (total_steps - 1)
    return float(start + (end - start) * frac)


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """Shuffled sample order of one epoch, a pure function of ``(seed, epoch)``.

    Deriving each epoch's order from the seed (instead of advancing one RNG)
    makes a resumed run see exactly the batches the uninterrupted run saw.

    >>> bool((epoch_order(0, 1, 10) == epoch_order(0, 1, 10)).all())
    True
    """
    gen = np.random.default_rng(np.random.SeedSequence([int(seed), int(epoch), 0x7EA1]))
    return gen.permutation(int(n))


def evaluate(model, X, y, *, batch_size: int = 2048) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` on tensors ``X, y``."""
    import torch
    from torch.nn import functional as F

    was_training = model.training
    model.eval()
    loss_sum, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(y), batch_size):
            out = model(X[i:i + batch_size])
            yb = y[i:i + batch_size]
            loss_sum += float(F.cross_entropy(out, yb, reduction="sum"))
            correct += int((out.argmax(1) == yb).sum())
    model.train(was_training)
    n = max(len(y), 1)
    return loss_sum / n, correct / n


def anp_of_chain(masks: Sequence[np.ndarray]) -> float:
    r"""Active-neuron rate of an MLP chain of layer masks (each ``(out, in)``, torch layout).

    A neuron is active when it lies on at least one path from an input to
    the (dense) classifier: reachable forwards from the inputs *and* reaching
    the last sparsified layer's outputs backwards. The rate counts the input
    neurons and the outputs of every sparsified layer (the hidden neurons):

    .. math:: \mathrm{ANP} = \frac{\#\{\text{active}\}}{n_0 + n_1 + \dots + n_L}

    This is what percolation leaves; a method that never percolates still
    scores below 1 when its random topology strands neurons.

    >>> import numpy as np
    >>> m1 = np.array([[1, 0], [0, 0]], bool)        # input 1 and hidden 1 have no links
    >>> m2 = np.array([[1, 0], [1, 0]], bool)
    >>> anp_of_chain([m1, m2])                       # active: in0, h0, out0, out1
    0.6666666666666666
    """
    mats = [np.asarray(m, dtype=bool) for m in masks]
    if not mats:
        return 1.0
    fwd = [np.ones(mats[0].shape[1], dtype=bool)]
    for m in mats:
        fwd.append((m.astype(np.int64) @ fwd[-1].astype(np.int64)) > 0)
    bwd = [np.ones(mats[-1].shape[0], dtype=bool)]
    for m in reversed(mats):
        bwd.insert(0, (m.T.astype(np.int64) @ bwd[0].astype(np.int64)) > 0)
    active = sum(int((f & b).sum()) for f, b in zip(fwd, bwd, strict=True))
    total = sum(len(f) for f in fwd)
    return active / total
