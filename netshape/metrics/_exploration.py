"""Topological exploration over training: ITOP rate and removal/regrowth overlap.

A layer is a biadjacency ``A`` of shape ``(n_in, n_out)`` (a
``torch.nn.Linear`` mask is ``A.T``; the rates do not depend on orientation
as long as every mask of a layer has the same one).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from .._backend import array_family, to_numpy
from .._validation import as_biadjacency, as_layers

__all__ = ["ITOPTracker", "itop", "overlap_rate", "snapshot_curves"]

_BIT = np.array([128, 64, 32, 16, 8, 4, 2, 1], dtype=np.uint8)  # np.packbits bit order


def _popcount(packed: np.ndarray) -> int:
    if hasattr(np, "bitwise_count"):
        return int(np.bitwise_count(packed).sum(dtype=np.int64))
    return int(np.unpackbits(packed).sum(dtype=np.int64))  # numpy < 2.0


def _as_layers(mask: Any, name: str) -> tuple[str, list[Any], list[sp.csr_array]]:
    """``("single"|"mapping"|"sequence", keys, canonical layers)``."""
    return as_layers(mask, name, single=True)


class ITOPTracker:
    """Running union of the masks seen during training (in-time over-parameterisation).

    .. math:: \\mathrm{ITOP}_t = \\frac{|A_0 \\cup A_1 \\cup \\dots \\cup A_t|}{n_{in}\\, n_{out}}

    :meth:`update` takes one layer, a sequence of layers or a mapping
    ``name -> layer`` (any family: scipy, numpy, torch, CuPy); every later
    update must have the same layers and shapes. The union is stored as a
    packed bitset (one bit per possible link), so a 4096 x 11008 layer costs
    5.6 MB.

    Attributes
    ----------
    rate : float
        Total over all layers: sum of union sizes / sum of possible links.
    rates : dict
        Per-layer rate (key ``None`` for a single layer).
    union : scipy.sparse.csr_array or dict or list
        The union of links seen so far, in the container kind of the updates.
    n_updates : int

    Examples
    --------
    >>> import numpy as np
    >>> t = ITOPTracker()
    >>> t.update(np.array([[1, 0], [0, 0]]))
    >>> t.update(np.array([[0, 1], [0, 0]]))
    >>> t.rate, t.n_updates
    (0.5, 2)
    """

    def __init__(self) -> None:
        self._mode: str | None = None
        self._keys: list[Any] = []
        self._shapes: list[tuple[int, int]] = []
        self._bits: list[np.ndarray] = []
        self.n_updates = 0

    def update(self, mask: Any) -> None:
        """Add the links of ``mask`` (one layer, a sequence or a mapping) to the union."""
        mode, keys, layers = _as_layers(mask, "mask")
        shapes = [tuple(int(s) for s in L.shape) for L in layers]
        if self._mode is None:
            self._mode, self._keys, self._shapes = mode, keys, shapes
            self._bits = [np.zeros((s[0] * s[1] + 7) // 8, dtype=np.uint8) for s in shapes]
        elif (mode, keys, shapes) != (self._mode, self._keys, self._shapes):
            raise ValueError(
                f"mask has layers {keys!r} with shapes {shapes} but this tracker holds "
                f"{self._keys!r} with shapes {self._shapes}; every update must have the same layers"
            )
        for bits, L in zip(self._bits, layers, strict=True):
            rows = np.repeat(np.arange(L.shape[0], dtype=np.int64), np.diff(L.indptr))
            flat = rows * L.shape[1] + L.indices
            np.bitwise_or.at(bits, flat >> 3, _BIT[flat & 7])
        self.n_updates += 1

    def _counts(self) -> list[int]:
        return [_popcount(b) for b in self._bits]

    @property
    def rates(self) -> dict[Any, float]:
        return {k: c / (s[0] * s[1]) for k, c, s in
                zip(self._keys, self._counts(), self._shapes, strict=True)}

    @property
    def rate(self) -> float:
        if self._mode is None:
            return 0.0
        return sum(self._counts()) / sum(s[0] * s[1] for s in self._shapes)

    @property
    def union(self) -> Any:
        out = []
        for bits, (n_in, n_out) in zip(self._bits, self._shapes, strict=True):
            flat = np.flatnonzero(np.unpackbits(bits, count=n_in * n_out))
            out.append(sp.csr_array((np.ones(flat.size, dtype=bool), (flat // n_out, flat % n_out)),
                                    shape=(n_in, n_out)))
        if self._mode == "mapping":
            return dict(zip(self._keys, out, strict=True))
        if self._mode == "sequence":
            return out
        return out[0] if out else None

    def state_dict(self) -> dict[str, Any]:
        """Plain Python values and numpy arrays (packed bits), e.g. for ``torch.save``."""
        return {"mode": self._mode, "keys": list(self._keys), "n_updates": self.n_updates,
                "shapes": np.asarray(self._shapes, dtype=np.int64).reshape(-1, 2),
                "bits": [b.copy() for b in self._bits]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore from :meth:`state_dict` (arrays may come back as torch tensors)."""
        try:
            mode, keys, n = state["mode"], list(state["keys"]), int(state["n_updates"])
            shapes = [tuple(int(v) for v in row) for row in np.asarray(to_numpy(state["shapes"]))]
            bits = [np.asarray(to_numpy(b), dtype=np.uint8).copy() for b in state["bits"]]
        except (KeyError, TypeError) as exc:
            raise ValueError(f"state is not an ITOPTracker state_dict: {exc!r}") from exc
        if mode not in (None, "single", "mapping", "sequence") or len(bits) != len(shapes):
            raise ValueError(f"state is not an ITOPTracker state_dict (mode={mode!r})")
        for b, s in zip(bits, shapes, strict=True):
            if b.shape != ((s[0] * s[1] + 7) // 8,):
                raise ValueError(f"state has a bitset of shape {b.shape} for a layer {s}")
        self._mode, self._keys, self._shapes, self._bits, self.n_updates = (
            mode, keys, shapes, bits, n)


def itop(masks: Iterable[Any]) -> float:
    """ITOP rate of a sequence of masks: |union of all masks| / possible links.

    Each item is one layer, a sequence of layers or a mapping (see
    :class:`ITOPTracker`); for several layers this is the total rate.

    >>> import numpy as np
    >>> itop([np.eye(2), np.eye(2), np.ones((2, 2))])
    1.0
    """
    t = ITOPTracker()
    for m in masks:
        t.update(m)
    if t.n_updates == 0:
        raise ValueError("masks is empty; itop needs at least one mask")
    return t.rate


def _as_link_set(x: Any, name: str) -> tuple[str, Any]:
    """("mask", csr) for masks; ("index", sorted unique int64 keys) for index arrays."""
    if isinstance(x, tuple) and len(x) == 2:
        rows, cols = (np.asarray(to_numpy(v)).ravel() for v in x)
        if rows.shape != cols.shape or (rows.size and not np.issubdtype(rows.dtype, np.integer)):
            raise ValueError(f"{name} as (rows, cols) needs two integer arrays of equal length")
        if rows.size and (rows.min() < 0 or cols.min() < 0):
            raise ValueError(f"{name} has a negative index")
        return "coords", (rows.astype(np.int64), cols.astype(np.int64))
    fam = array_family(x)
    arr = to_numpy(x) if fam != "other" else np.asarray(x)
    if not sp.issparse(arr) and np.ndim(arr) == 1:
        arr = np.asarray(arr)
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"{name} is 1-D with dtype {arr.dtype}; 1-D input must hold integer "
                            "flat indices (pass a 2-D mask for boolean masks)")
        if arr.size and arr.min() < 0:
            raise ValueError(f"{name} has a negative index ({int(arr.min())})")
        return "index", np.unique(arr.astype(np.int64))
    return "mask", as_biadjacency(arr, name=name)


def overlap_rate(removed: Any, regrown: Any) -> float:
    """Share of regrown links that were just removed: :math:`|\\tilde A_t \\cap A^*_t| / |A^*_t|`.

    The epitopological-local-minimum measure (paper section 3.1, Definition 1):
    values near 1 mean the update removes and regrows the same links.

    Parameters
    ----------
    removed, regrown : masks or index arrays
        Either two boolean masks of one shape (any family; any nonzero is a
        link), two 1-D integer arrays of flat indices, two ``(rows, cols)``
        tuples, or two mappings ``name -> mask`` with the same keys (then the
        overlap is pooled over all layers).

    Returns
    -------
    float in [0, 1]; **0.0 when nothing was regrown** (no regrown link can
    overlap anything; never NaN).

    Examples
    --------
    >>> import numpy as np
    >>> overlap_rate(np.array([[1, 1], [0, 0]]), np.array([[1, 0], [0, 1]]))
    0.5
    >>> overlap_rate(np.array([3, 5]), np.array([5, 7, 9, 11]))
    0.25
    >>> overlap_rate(np.array([3]), np.array([], dtype=int))
    0.0
    """
    if isinstance(removed, Mapping) or isinstance(regrown, Mapping):
        if not (isinstance(removed, Mapping) and isinstance(regrown, Mapping)) or \
                set(removed) != set(regrown):
            raise ValueError("removed and regrown must both be mappings with the same keys")
        inter = total = 0
        for k in regrown:
            i, n = _overlap_counts(removed[k], regrown[k], f"removed[{k!r}]", f"regrown[{k!r}]")
            inter, total = inter + i, total + n
        return inter / total if total else 0.0
    inter, total = _overlap_counts(removed, regrown, "removed", "regrown")
    return inter / total if total else 0.0


def _overlap_counts(removed: Any, regrown: Any, n1: str, n2: str) -> tuple[int, int]:
    k1, a = _as_link_set(removed, n1)
    k2, b = _as_link_set(regrown, n2)
    if k1 != k2:
        raise TypeError(f"{n1} is given as {k1}s and {n2} as {k2}s; pass both the same way")
    if k1 == "coords":
        width = int(max(a[1].max(initial=0), b[1].max(initial=0))) + 1
        a, b = (np.unique(r * width + c) for r, c in (a, b))
        k1 = "index"
    if k1 == "index":
        return int(np.intersect1d(a, b, assume_unique=True).size), int(b.size)
    if a.shape != b.shape:
        raise ValueError(f"{n1} has shape {a.shape} but {n2} has shape {b.shape}; "
                         "they must be masks of the same layer")
    return int(a.multiply(b).nnz), int(b.nnz)


def _minus(A: Any, B: Any) -> Any:
    """Links of ``A`` not in ``B`` (both canonical bool csr of one shape)."""
    a = A.astype(np.int8)
    return a - a.multiply(B.astype(np.int8))


def snapshot_curves(snaps: Sequence[tuple[int, Mapping[Any, Any]]]) -> dict[str, Any]:
    """ITOP, density and re-growth overlap over a sequence of topology snapshots.

    ``snaps`` is a list of ``(step, {name: layer})`` in training order (layers
    ``(n_in, n_out)``, any family; every snapshot has the same layers). Returns
    a dict with lists ``step``, ``itop``, ``density``, ``overlap``,
    ``overlap_step`` and ``itop_per_layer`` (name -> list).

    ITOP after snapshot ``t`` is the union of snapshots ``0..t`` (links that
    lived only between two snapshots are not seen, so it is a lower bound).
    A link removed and regrown within one update never shows in snapshots, so
    the overlap here is the *re-growth* overlap across snapshots:
    :math:`|(S_{t-1} \\setminus S_t) \\cap (S_{t+1} \\setminus S_t)| /
    |S_{t+1} \\setminus S_t|` — the share of links grown back at ``t+1`` that
    had been removed at ``t`` (0.0 when nothing was grown).

    Examples
    --------
    >>> import numpy as np
    >>> S = [np.array([[1, 1, 0, 0]]), np.array([[1, 0, 1, 0]]), np.array([[1, 1, 0, 1]])]
    >>> c = snapshot_curves([(i, {"a": s}) for i, s in enumerate(S)])
    >>> c["itop"], c["overlap"]
    ([0.5, 0.75, 1.0], [0.5])
    """
    tracker = ITOPTracker()
    steps, itop, density, overlap, overlap_steps = [], [], [], [], []
    per_layer: dict[str, list[float]] = {}
    snaps = [(step, {n: as_biadjacency(A, name=f"snapshot {step} layer {n!r}")
                      for n, A in layers.items()}) for step, layers in snaps]
    for k, (step, layers) in enumerate(snaps):
        tracker.update(layers)
        steps.append(step)
        itop.append(tracker.rate)
        for name, r in tracker.rates.items():
            per_layer.setdefault(str(name), []).append(r)
        density.append(sum(A.nnz for A in layers.values())
                       / sum(A.shape[0] * A.shape[1] for A in layers.values()))
        if k >= 2:
            prev, cur = snaps[k - 2][1], snaps[k - 1][1]
            removed = {n: _minus(prev[n], cur[n]) for n in layers}
            grown = {n: _minus(layers[n], cur[n]) for n in layers}
            overlap.append(overlap_rate(removed, grown))
            overlap_steps.append(step)
    return {"step": steps, "itop": itop, "density": density, "itop_per_layer": per_layer,
            "overlap": overlap, "overlap_step": overlap_steps}
