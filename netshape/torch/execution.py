"""Execution modes of sparsified layers: ``masked`` (dense weight × mask) or ``sparse``.

In ``sparse`` mode an ``nn.Linear`` is replaced by a
:class:`~netshape.torch.SparseLinear` holding only its links;
its optimizer entry is replaced by the length-``nnz`` values, with the
per-element optimizer state gathered (SGD momentum, Adam/AdamW moments).
The engine drives every topology decision from a bool mask *view* of the
links, so removal, regrowth, percolation, schedules, ITOP and stats are the
same in both modes; only :meth:`SparseSlot.rewire` differs: it re-indexes
values and optimizer state instead of writing into a dense weight.

``auto`` rule (per layer, re-evaluated after every topology update, so a
decaying schedule switches a layer to sparse once it crosses the threshold):

    sparse  iff  the device is CPU, the dtype is supported, the layer is a
    plain ``nn.Linear``, ``out × in ≥ AUTO_MIN_SIZE`` and
    ``density ≤ AUTO_MAX_DENSITY`` (10 %);

otherwise masked, with the reason in ``dst.stats()[layer]["execution_reason"]``.
Where the numbers come from (``benchmarks/sparse_execution.py``, paper MLP
784-1568-1568-1568-10): at every measured point up to 10 % density, batch 32
and 128, one and two torch threads, the sparse step was faster than the
masked one (from 11x at 0.5 % to 1.4x at 10 % with two threads and batch
128, the closest point). An earlier rule divided the 10 % by the thread
count, on the reasoning that dense GEMMs scale with threads and the sparse
kernels do not; the benchmark showed that it sent 5-10 % layers on two
threads to the slower mode (up to 1.9x slower), so threads no longer enter.
Above 10 % nothing was measured and layers stay masked. Layers under
:data:`AUTO_MIN_SIZE` weights are too small for either mode to matter and
stay masked. CUDA layers stay masked
under ``auto`` (cuBLAS dense products beat gather/scatter at the densities
DST uses); ``execution="sparse"`` runs them with the torch gather/scatter
kernels.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

from ._sparse_linear import SUPPORTED_DEVICES, SUPPORTED_DTYPES, SparseLinear
from ._sparse_slot import SparseSlot, _set_module, _swap_param, to_masked, to_sparse

__all__ = ["AUTO_MAX_DENSITY", "AUTO_MIN_SIZE", "EXECUTIONS", "SparseSlot", "export_dense",
           "to_masked", "to_sparse"]
_ = _swap_param  # re-exported for callers of the old location

#: accepted values of ``sparsify(execution=...)``
EXECUTIONS = ("auto", "masked", "sparse")
#: ``auto`` runs a layer sparse at or below this density, on any thread count (see the
#: module docstring)
AUTO_MAX_DENSITY = 0.1
#: ``auto`` keeps layers with fewer weights than this masked
AUTO_MIN_SIZE = 2**16


def unsupported_reason(slot, dtype: torch.dtype, device: torch.device) -> str | None:
    """Why ``slot`` cannot run sparse, or None when it can."""
    mod = slot.module
    if slot.rows is not None or slot.param != "weight":
        return (f"{type(mod).__name__}.{slot.param} is a packed projection; sparse execution "
                "runs plain nn.Linear layers only")
    kind = nn.Linear if isinstance(mod, SparseLinear) else (
        parametrize.type_before_parametrizations(mod))
    if kind is not nn.Linear:
        return (f"{kind.__name__} is not a plain nn.Linear (its weight may be read "
                "directly by its parent)")
    if parametrize.is_parametrized(mod) and (set(mod.parametrizations) != {"weight"} or len(
            mod.parametrizations["weight"]) != 1):
        return "it carries parametrizations other than netshape's mask"
    if dtype not in SUPPORTED_DTYPES:
        return f"dtype {dtype} is not one of {[str(d) for d in SUPPORTED_DTYPES]}"
    if device.type not in SUPPORTED_DEVICES:
        return f"device {device} is not one of {list(SUPPORTED_DEVICES)}"
    return None


def choose(execution: str, slot, density: float, dtype, device,
           decaying: bool = False) -> tuple[str, str]:
    """``(mode, reason)`` for one slot; raises for ``execution='sparse'`` on an unsupported one."""
    from . import distributed as ddp

    why = unsupported_reason(slot, dtype, device)
    if why is None and decaying and ddp.is_distributed():
        why = ("a decaying schedule changes the link count, which DDP's fixed gradient "
               "buckets cannot follow under torch.distributed")
    if execution == "masked":
        return "masked", "execution='masked'"
    if why is not None:
        if execution == "sparse":
            raise ValueError(f"execution='sparse' cannot run layer {slot.name!r}: {why}; "
                             "use execution='auto' (falls back to masked) or 'masked'")
        return "masked", why
    if execution == "sparse":
        return "sparse", "execution='sparse'"
    if device.type != "cpu":
        return "masked", "auto: CUDA layers run masked (dense products are faster there)"
    if slot.n_in * slot.n_out < AUTO_MIN_SIZE:
        return "masked", f"auto: fewer than {AUTO_MIN_SIZE} weights"
    if density > AUTO_MAX_DENSITY:
        return "masked", f"auto: density {density:.4g} > {AUTO_MAX_DENSITY:.4g}"
    return "sparse", f"auto: density {density:.4g} <= {AUTO_MAX_DENSITY:.4g}"


def export_dense(model: nn.Module) -> nn.Module:
    """Replace every :class:`SparseLinear` in ``model`` by a plain ``nn.Linear`` (zeros elsewhere).

    For export or inference with code that expects ``nn.Linear`` weights;
    masked layers can be baked with :func:`netshape.torch.remove_masks`. The
    model is changed in place and returned; train no further with the
    trainer afterwards.

    Examples
    --------
    >>> import torch
    >>> from netshape.torch import sparsify
    >>> from netshape.torch.execution import export_dense
    >>> model = torch.nn.Sequential(torch.nn.Linear(20, 30), torch.nn.ReLU(),
    ...                             torch.nn.Linear(30, 3))
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.01)
    >>> dst = sparsify(model, opt, method="set", density=0.1, total_steps=10,
    ...                update_every=5, rng=0, execution="sparse")
    >>> type(model[0]).__name__
    'SparseLinear'
    >>> model = export_dense(model)
    >>> type(model[0]).__name__, int((model[0].weight != 0).sum()) <= 60
    ('Linear', True)
    """
    from ._checks import check_model

    for name, mod in list(check_model(model).named_modules()):
        if isinstance(mod, SparseLinear):
            _set_module(model, name, mod.to_linear())
    return model


def check(slots, execution: str, decaying: bool = False) -> None:
    """Raise now (before the model is touched) when ``execution='sparse'`` cannot run a slot."""
    from .._validation import check_choice

    check_choice(execution, "execution", EXECUTIONS)
    if execution == "sparse":
        for s in slots:
            w = getattr(s.module, s.param)
            choose(execution, s, 0.0, w.dtype, w.device, decaying)


def reselected(lay, execution: str, decaying: bool, model: nn.Module, optimizer):
    """``lay`` in the mode the rule picks now (:func:`choose`), converted if that changed.

    Returns the layer record to keep: ``lay`` itself, or the record of the
    converted layer (weights and optimizer state carried over). Its
    ``execution_reason`` says why the mode was picked.
    """
    density = lay.links() / (lay.slot.n_in * lay.slot.n_out)
    p = lay.param
    mode, why = choose(execution, lay.slot, density, p.dtype, p.device, decaying)
    if mode == "sparse" and not isinstance(lay, SparseSlot):
        lay = to_sparse(lay, model, optimizer)
    elif mode == "masked" and isinstance(lay, SparseSlot):
        lay = to_masked(lay, model, optimizer)
    lay.execution_reason = why
    return lay


#: optimizers that keep a zero weight with zero gradient and zero state exactly zero
#: (momentum, L2 and decoupled weight decay, Adam moments all stay 0 there)
SAFE_OPTIMIZERS = (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW)


def remask_needed(optimizer, layers, always_remask: bool = False) -> bool:
    """True when ``dst.step()`` must re-zero the masked weights of this step.

    The engine keeps masked weights and their optimizer state at zero and the
    parametrization zeroes their gradient, so an optimizer of
    :data:`SAFE_OPTIMIZERS` (exact types) cannot move them. Anything else can:
    another optimizer class, optimizer step hooks, or gradient hooks on the
    weight; then the weights are re-multiplied by the mask after every step,
    as a safety net. Set ``dst.always_remask = True`` to force it (e.g. when
    the training loop writes weights itself). ``layers``: the engine's layer records.
    """
    if always_remask:
        return True
    opt = optimizer
    if type(opt) not in SAFE_OPTIMIZERS:
        return True
    from torch.optim import optimizer as _o

    if (opt._optimizer_step_pre_hooks or opt._optimizer_step_post_hooks
            or _o._global_optimizer_pre_hooks or _o._global_optimizer_post_hooks):
        return True
    for lay in layers:
        p = lay.param
        if lay.execution == "masked" and (p._backward_hooks or getattr(
                p, "_post_accumulate_grad_hooks", None)):
            return True
    return False


def clear_masked_state(optimizer, layers) -> None:
    """Zero the optimizer state of masked layers off their masks (state from before sparsify)."""
    from .masking import reset_optimizer_state

    for lay in layers:
        if lay.execution == "masked":
            full = torch.zeros(lay.param.shape, dtype=torch.bool, device=lay.param.device)
            full[lay.rows] = ~lay.mask
            reset_optimizer_state(optimizer, lay.param, full)
