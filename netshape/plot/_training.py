"""Curves over training: ITOP rate, removal/regrowth overlap, any per-update series.

Every function takes ``ax=None`` (a new figure when None), returns the Axes
and never calls ``show()``. Needs the ``plot`` extra (matplotlib).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ._layout import integer_ticks, new_axes

__all__ = ["itop_curve", "overlap_curve", "training_curves"]


def _axes(ax: Any) -> Any:
    return ax if ax is not None else new_axes((5.5, 3.5))


def _series(values: Any, name: str) -> dict[str, np.ndarray]:
    if isinstance(values, Mapping):
        out = {str(k): np.asarray(v, dtype=np.float64).ravel() for k, v in values.items()}
    elif isinstance(values, (Sequence, np.ndarray)) and not isinstance(values, str):
        out = {"": np.asarray(values, dtype=np.float64).ravel()}
    else:
        raise TypeError(f"{name} must be a sequence of numbers or a mapping label -> sequence; "
                        f"got {type(values).__name__}")
    for k, v in out.items():
        if v.size == 0:
            raise ValueError(f"{name}{f'[{k!r}]' if k else ''} is empty; nothing to plot")
        if not np.all(np.isfinite(v)):
            raise ValueError(f"{name}{f'[{k!r}]' if k else ''} contains NaN or inf")
    return out


def _x(steps: Any, n: int) -> np.ndarray:
    if steps is None:
        return np.arange(n)
    x = np.asarray(steps, dtype=np.float64).ravel()
    if x.size != n:
        raise ValueError(f"steps has {x.size} values but the series has {n}")
    return x


def _lines(series: dict[str, np.ndarray], steps: Any, ax: Any, percent: bool,
           label: str | None) -> Any:
    xs = []
    for name, y in series.items():
        x = _x(steps, y.size)
        xs.append(x)
        ax.plot(x, 100 * y if percent else y, marker="o" if y.size < 30 else None,
                ms=3, label=name or label)
    if all(np.array_equal(x, np.round(x)) for x in xs):  # update / step counts: whole ticks
        integer_ticks(ax.xaxis)
    if any(series) or label:
        ax.legend(frameon=False, fontsize="small")
    ax.grid(alpha=0.3)
    return ax


def itop_curve(rates: Any, *, steps: Any = None, ax: Any = None, label: str | None = None,
               xlabel: str = "topology update") -> Any:
    """Plot the ITOP rate (|union of masks so far| / possible links) against training progress.

    Parameters
    ----------
    rates : sequence of float in [0, 1], or mapping label -> sequence
        One curve, or one per layer / run.
    steps : sequence, optional
        x values (default 0, 1, ...).
    ax : matplotlib Axes, optional
    label, xlabel : str

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> ax = itop_curve([0.05, 0.08, 0.1], steps=[0, 100, 200])
    >>> ax.get_ylabel()
    'ITOP rate (%)'
    """
    ax = _axes(ax)
    _lines(_series(rates, "rates"), steps, ax, True, label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("ITOP rate (%)")
    ax.set_ylim(bottom=0)
    return ax


def overlap_curve(overlaps: Any, *, steps: Any = None, ax: Any = None,
                  threshold: float | None = None, label: str | None = None,
                  xlabel: str = "topology update") -> Any:
    """Plot the removal/regrowth overlap :math:`|\\tilde A_t \\cap A^*_t| / |A^*_t|`.

    Values near 1 mean the method removes and regrows the same links (an
    epitopological local minimum, paper Definition 1); ``threshold`` draws the
    :math:`\\theta` line.

    Examples
    --------
    >>> ax = overlap_curve({"fc1": [0.1, 0.5, 0.9]}, threshold=0.9)
    >>> bool(ax.get_ylim()[1] >= 100)
    True
    """
    ax = _axes(ax)
    _lines(_series(overlaps, "overlaps"), steps, ax, True, label)
    if threshold is not None:
        ax.axhline(100 * float(threshold), color="0.4", ls="--", lw=1,
                   label=f"θ = {float(threshold):g}")
        ax.legend(frameon=False, fontsize="small")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(r"overlap $|\tilde A \cap A^*|\,/\,|A^*|$ (%)")
    ax.set_ylim(-2, 102)
    return ax


def training_curves(history: Mapping[str, Any], *, steps: Any = None, ax: Any = None,
                    keys: Sequence[str] | None = None, xlabel: str = "topology update",
                    percent: bool | None = None) -> Any:
    """Plot several per-update series on one Axes (e.g. density, ITOP, overlap, ANP).

    Rates are shown in %, as in every other netshape figure: by default
    (``percent=None``) when every series lies in [0, 1].

    Parameters
    ----------
    history : mapping name -> sequence
        For example the per-update values of ``dst.stats()`` collected over a
        run, or the columns of a run's ``metrics.csv``; a ``"step"`` entry is
        used as x when ``steps`` is not given.
    keys : sequence of str, optional
        Which series to draw (default: all but ``"step"``).
    percent : bool, optional
        Draw the values times 100 with a "%" axis label; default: when all
        values lie in [0, 1] (rates), else the plain values.

    Examples
    --------
    >>> ax = training_curves({"step": [0, 1, 2], "density": [0.5, 0.3, 0.1],
    ...                       "itop": [0.5, 0.6, 0.65]})
    >>> [t.get_text() for t in ax.get_legend().get_texts()], ax.get_ylabel()
    (['density', 'itop'], 'rate (%)')
    """
    if not isinstance(history, Mapping):
        raise TypeError(f"history must be a mapping name -> sequence; got {type(history).__name__}")
    if steps is None and "step" in history:
        steps = history["step"]
    names = [k for k in history if k != "step"] if keys is None else list(keys)
    missing = [k for k in names if k not in history]
    if missing:
        raise ValueError(f"keys {missing!r} are not in history (has {list(history)!r})")
    if not names:
        raise ValueError("history has no series to plot")
    series = _series({k: history[k] for k in names}, "history")
    if percent is None:
        percent = all(bool(np.all((v >= 0) & (v <= 1))) for v in series.values())
    ax = _axes(ax)
    _lines(series, steps, ax, bool(percent), None)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("rate (%)" if percent else "value")
    if percent:
        ax.set_ylim(bottom=0)
    return ax
