"""Dynamic-sparse-training components and the method presets (paper Appendix G).

A *method* is a dict of component choices; :data:`PRESETS` holds the
documented ones and :func:`resolve_method` merges a user's overrides into a
preset, validating every key and value (errors come at ``sparsify()`` time,
before any training step).

Components
----------
init
    Initial topology: ``er``, ``bsw`` (``beta``), ``brf`` (``r``, ``degrees``),
    ``bsf`` (``gamma``), ``csti`` (needs ``calibration``), ``dense``.
removal
    Which existing links go each update: ``magnitude``, ``ri`` (relative
    importance, Eq. 1), their soft versions ``magnitude_soft`` / ``ri_soft``,
    ``soft`` (Eq. 2 with the ``alpha`` option), ``magnitude_gradient``
    (MEST: :math:`|W| + 0.01|\\nabla W|`), or ``none``. Soft removal samples the
    links to *keep* :math:`\\propto` Eq. 2 scores, without replacement, with
    ``delta`` rising linearly from ``delta[0]`` to ``delta[1]`` by
    ``delta_end`` of training.
zeta, zeta_schedule
    Fraction of links removed (and regrown) per update; ``constant`` or
    RigL's ``cosine`` decay to 0 at ``update_until``.
regrowth
    ``random`` (SET), ``gradient`` (RigL/GraNet: |dense gradient| of missing
    links, captured only on update steps), or a link predictor of
    :func:`netshape.linkpred.available` (``ch2_l3n``, ``ch3_l3n``, ``ch3_l3p``,
    ``ch2_l3p``, ``l3_paths``, ``ra_l3``); add ``_soft`` to sample :math:`\\propto`
    score^(1/T) instead of taking the top-k (``T`` a number, or a
    ``(start, end)`` pair ramped linearly like ``delta``); ``none`` for no regrowth.
schedule
    Density over training: ``constant``, ``sigmoid`` (CHTss, ``k``,
    ``half_length``), ``cubic`` (GMP/GraNet), ``mest`` (two-stage); the
    decaying ones go from ``initial_density`` at ``decay_start`` to
    ``density`` at ``decay_end`` (fractions of ``total_steps``), pruning with
    ``prune`` (``magnitude``, ``ri``, ``magnitude_gradient``, or GMP's
    ``magnitude_historical``: the kept links are the largest of the current
    weights and the historical weights of pruned links, so a pruned weight
    comes back when the threshold falls below its last value) before removal.
new_weights
    ``zero`` or ``historical`` (Appendix J: a regrown link restarts at the
    value it had when it was last removed, 0 if never).
reregrown
    A link removed and regrown in the same update: ``restart`` (it enters
    like any regrown link: new weight, zero optimizer state) or ``keep``
    (its weight and optimizer state survive, as in the RigL and GraNet
    reference code, where only links absent before the update are new).
update_replaces_step
    ``True``: a topology update replaces that iteration's optimizer step
    (RigL's reference code applies either the mask update or the gradients,
    never both). The training loop asks
    :meth:`~netshape.torch.DynamicSparseTrainer.replaces_optimizer_step`
    before ``optimizer.step()``; a loop that never asks takes both.
percolation
    ``True`` to remove inactive neurons after removal (chains and coupled
    groups from :mod:`netshape.torch.groups`).
early_stop
    ``None`` or a threshold θ in (0, 1]: stop all topology updates once the
    pooled overlap |removed ∩ regrown| / |regrown| of an update reaches θ
    (CHT's topological early stop at an epitopological local minimum, Sec. 3.1).
shard
    Under ``torch.distributed``: ``True`` spreads the per-layer removal and
    regrowth (link prediction) round-robin over the ranks, each layer then
    broadcast from its rank; ``False`` computes everything on rank 0.
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any

from .._validation import check_choice, check_density, check_range, check_unit_interval
from ..generators import available as _generators
from ..linkpred import available as _predictors

__all__ = ["COMPONENTS", "METHODS", "PRESETS", "canonical_method", "preset_table", "resolve_method"]

#: "random" is SET's uniform regrowth (the ``random`` predictor's scores are uniform too);
#: every other name comes from the link-prediction registry
_REGROWTH = ("random", "gradient", *(name for name in _predictors() if name != "random"))

#: allowed values of each categorical component
COMPONENTS: dict[str, tuple] = {
    "init": (*_generators(), "dense"),
    "removal": ("magnitude", "ri", "magnitude_soft", "ri_soft", "soft",
                "magnitude_gradient", "none"),
    "prune": ("magnitude", "ri", "magnitude_gradient", "magnitude_historical"),
    "regrowth": (*_REGROWTH, *(f"{r}_soft" for r in _REGROWTH), "none"),
    "reregrown": ("restart", "keep"),
    "schedule": ("constant", "sigmoid", "cubic", "mest"),
    "zeta_schedule": ("constant", "cosine"),
    "new_weights": ("zero", "historical"),
    "degrees": ("fixed", "uniform"),
}

_DEFAULTS: dict[str, Any] = {
    "init": "er", "r": 0.0, "degrees": "fixed", "beta": 0.25, "gamma": 2.76,
    "removal": "magnitude", "alpha": 1.0, "delta": (0.5, 0.75), "delta_end": 0.75,
    "zeta": 0.3, "zeta_schedule": "constant",
    "regrowth": "random", "T": 1.0,
    "schedule": "constant", "initial_density": 0.5, "decay_start": 0.0, "decay_end": 0.75,
    "k": 6.0, "half_length": False, "prune": "magnitude",
    "new_weights": "zero", "percolation": False, "update_until": 1.0, "shard": False,
    "early_stop": None, "reregrown": "restart", "update_replaces_step": False,
}

#: documented presets (Appendix G); every key can be overridden in ``sparsify(**overrides)``
PRESETS: dict[str, dict[str, Any]] = {
    "fc": {"description": "FC (fully connected): a no-op, every weight trained, no mask"},
    "set": {"description": "SET: magnitude removal, random regrowth, constant density",
            "init": "er", "removal": "magnitude", "regrowth": "random"},
    "rigl": {"description": "RigL: magnitude removal, gradient regrowth, cosine zeta",
             "init": "er", "removal": "magnitude", "regrowth": "gradient",
             "zeta_schedule": "cosine", "update_until": 0.75, "reregrown": "keep",
             "update_replaces_step": True},
    "mest": {"description": "MEST EM&S: |W|+0.01|grad| removal, random regrowth, two-stage density",
             "init": "er", "removal": "magnitude_gradient", "regrowth": "random",
             "schedule": "mest", "prune": "magnitude_gradient"},
    "gmp": {"description": "GMP: cubic magnitude pruning over current and historical "
                           "weights (pruned weights may return), no other regrowth",
            "init": "er", "removal": "none", "regrowth": "none", "zeta": 0.0,
            "schedule": "cubic", "prune": "magnitude_historical", "new_weights": "historical"},
    "granet": {"description": "GraNet: cubic magnitude pruning, magnitude removal, "
                              "gradient regrowth",
               "init": "er", "removal": "magnitude", "regrowth": "gradient",
               "schedule": "cubic", "prune": "magnitude", "reregrown": "keep"},
    "cht": {"description": "CHT: BSW init, magnitude removal, CH3-L3p top-k regrowth, "
                           "percolation, topological early stop at overlap 0.9",
            "init": "bsw", "removal": "magnitude", "regrowth": "ch3_l3p", "percolation": True,
            "early_stop": 0.9},
    "chts": {"description": "CHTs: BRF init, Eq. 2 soft removal, soft CH2-L3n regrowth, "
                            "historical weights, percolation",
             "init": "brf", "removal": "soft", "alpha": 1.0, "regrowth": "ch2_l3n_soft",
             "new_weights": "historical", "percolation": True},
    "chtss": {"description": "CHTss: CHTs with sigmoid density decay, pruning by "
                             "relative importance",
              "init": "brf", "removal": "soft", "alpha": 1.0, "regrowth": "ch2_l3n_soft",
              "new_weights": "historical", "percolation": True,
              "schedule": "sigmoid", "prune": "ri"},
    "chts_ri": {"description": "CHTs with relative-importance soft removal (Eq. 2 with "
                               "alpha=0), the variant the paper prefers on Fashion-MNIST",
                "init": "brf", "removal": "soft", "alpha": 0.0, "regrowth": "ch2_l3n_soft",
                "new_weights": "historical", "percolation": True},
    "chtss_ri": {"description": "CHTss with relative-importance soft removal (alpha=0)",
                 "init": "brf", "removal": "soft", "alpha": 0.0, "regrowth": "ch2_l3n_soft",
                 "new_weights": "historical", "percolation": True,
                 "schedule": "sigmoid", "prune": "ri"},
}

METHODS = tuple(PRESETS)

#: retired method names, still accepted (with a DeprecationWarning) so that saved runs load;
#: they are listed nowhere else
_RETIRED = {"dense": "fc"}


def canonical_method(method: Any, name: str = "method") -> str:
    """The preset name for ``method``: lower case, a retired alias replaced by its name.

    ``"dense"`` was the adapter's name for what the runner, the paper and the
    results tables call ``fc``; it still works and warns.

    >>> canonical_method("CHTs")
    'chts'
    """
    if not isinstance(method, str):
        raise TypeError(f"{name}={method!r} must be a string; choose one of {', '.join(METHODS)}")
    key = method.lower()
    if key in _RETIRED:
        warnings.warn(f"{name}={method!r} is a deprecated alias of {_RETIRED[key]!r}; "
                      f"use {_RETIRED[key]!r}", DeprecationWarning, stacklevel=3)
        return _RETIRED[key]
    return key


def resolve_method(method: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """Merge ``overrides`` into preset ``method`` and validate every component.

    >>> cfg = resolve_method("chts", {"regrowth": "ch3_l3p", "T": 0.5})
    >>> cfg["regrowth"], cfg["T"], cfg["removal"]
    ('ch3_l3p', (0.5, 0.5), 'soft')
    >>> resolve_method("chts", {"removel": "ri"})
    Traceback (most recent call last):
    ...
    ValueError: unknown option 'removel' for method 'chts'; allowed: ...
    """
    method = check_choice(canonical_method(method), "method", METHODS)
    cfg = dict(_DEFAULTS)
    cfg.update({k: v for k, v in PRESETS[method].items() if k != "description"})
    for key, val in overrides.items():
        if key not in _DEFAULTS:
            raise ValueError(
                f"unknown option {key!r} for method {method!r}; allowed: "
                + ", ".join(sorted(_DEFAULTS))
            )
        cfg[key] = val
    for key, choices in COMPONENTS.items():
        check_choice(cfg[key], key, choices)
    cfg["r"] = check_unit_interval(cfg["r"], "r")
    cfg["beta"] = check_unit_interval(cfg["beta"], "beta")
    cfg["alpha"] = check_unit_interval(cfg["alpha"], "alpha")
    cfg["gamma"] = check_range(cfg["gamma"], "gamma", 0.0, math.inf, lo_open=True, hi_open=True)
    cfg["zeta"] = check_range(cfg["zeta"], "zeta", 0.0, 1.0, hi_open=True)
    t = cfg["T"]
    t = (t, t) if isinstance(t, numbers.Real) and not isinstance(t, bool) else tuple(t)
    if len(t) != 2:
        raise ValueError(f"T={cfg['T']!r} must be a number or a (start, end) pair")
    cfg["T"] = tuple(check_range(x, "T", 0.0, math.inf, lo_open=True, hi_open=True) for x in t)
    cfg["k"] = check_range(cfg["k"], "k", 0.0, math.inf, lo_open=True, hi_open=True)
    cfg["initial_density"] = check_density(cfg["initial_density"], "initial_density")
    for key in ("decay_start", "decay_end", "delta_end", "update_until"):
        cfg[key] = check_range(cfg[key], key, 0.0, 1.0)
    if cfg["decay_end"] < cfg["decay_start"]:
        raise ValueError(
            f"decay_end={cfg['decay_end']!r} must be >= decay_start={cfg['decay_start']!r}"
        )
    d = cfg["delta"]
    d = (d, d) if isinstance(d, numbers.Real) and not isinstance(d, bool) else tuple(d)
    if len(d) != 2:
        raise ValueError(f"delta={cfg['delta']!r} must be a number or a (start, end) pair")
    cfg["delta"] = tuple(check_range(x, "delta", 0.0, 1.0, lo_open=True, hi_open=True) for x in d)
    cfg["half_length"] = bool(cfg["half_length"])
    cfg["percolation"] = bool(cfg["percolation"])
    cfg["shard"] = bool(cfg["shard"])
    cfg["update_replaces_step"] = bool(cfg["update_replaces_step"])
    if cfg["early_stop"] is not None:
        cfg["early_stop"] = check_range(cfg["early_stop"], "early_stop", 0.0, 1.0, lo_open=True)
    cfg["method"] = method
    return cfg


def preset_table() -> str:
    """The presets as a markdown table (used in ``docs/training-loop.md``).

    >>> print(preset_table().splitlines()[0][:40])
    | method | init | removal | regrowth | s
    """
    head = ("| method | init | removal | regrowth | schedule | zeta | new weights | percolation "
            "| early stop | reregrown | update replaces step |")
    rows = [head, "|" + "---|" * 11]
    for name in METHODS:
        if name == "fc":
            rows.append("| fc | dense | - | - | - | - | - | - | - | - | - |")
            continue
        c = resolve_method(name, {})
        removal = c["removal"] + (f" (alpha={c['alpha']:g})" if c["removal"] == "soft" else "")
        sched = c["schedule"] + ("" if c["schedule"] == "constant" else f", prune={c['prune']}")
        zeta = f"{c['zeta']:g} {c['zeta_schedule']}"
        rows.append(f"| {name} | {c['init']} | {removal} | {c['regrowth']} | {sched} | {zeta} "
                    f"| {c['new_weights']} | {'yes' if c['percolation'] else 'no'} "
                    f"| {'-' if c['early_stop'] is None else c['early_stop']} "
                    f"| {c['reregrown']} | {'yes' if c['update_replaces_step'] else 'no'} |")
    return "\n".join(rows)
