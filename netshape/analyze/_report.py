"""``netshape analyze``: read a checkpoint or run directory, measure, write a report.

Everything is read and computed before anything is written; every file is
written atomically. Layers are biadjacencies ``(n_in, n_out)`` (checkpoint
masks transposed).
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._fs import atomic_path, atomic_write_text, csv_text, read_csv

__all__ = ["Analysis", "analyze_source", "find_inputs", "write_report"]

_CKPT_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".safetensors", ".npz")
_SNAP = re.compile(r"^update_(\d+)\.npz$")


def find_inputs(source: str | Path) -> tuple[Path | None, list[tuple[int, Path]]]:
    """``(checkpoint or None, [(update number, snapshot path), ...])`` for a file or run dir.

    A run directory holds ``checkpoint.pt`` (or exactly one ``*.pt``, ``*.pth``,
    ``*.bin``, ``*.ckpt``, ``*.safetensors``, ``*.npz`` file) and optionally
    ``snapshots/update_NNNNNN.npz``; a directory of ``update_*.npz`` files
    is a snapshot directory on its own.
    """
    src = Path(source)
    if not src.exists():
        raise FileNotFoundError(f"{str(src)!r} does not exist; pass a checkpoint file or a run "
                                "directory")
    if src.is_file():
        return src, []
    snap_dir = src / "snapshots" if (src / "snapshots").is_dir() else src
    snaps = sorted((int(m.group(1)), p) for p in snap_dir.iterdir()
                   if p.is_file() and (m := _SNAP.match(p.name)))
    ckpt = None
    for name in ("checkpoint.pt", "checkpoint.safetensors", "checkpoint.npz"):
        if (src / name).is_file():
            ckpt = src / name
            break
    if ckpt is None:
        cands = sorted(p for p in src.iterdir() if p.is_file() and p.suffix in _CKPT_SUFFIXES
                       and not _SNAP.match(p.name))
        if len(cands) > 1:
            names = ", ".join(p.name for p in cands)
            raise ValueError(f"{str(src)!r} holds several checkpoints ({names}); pass one file, "
                             "or name it checkpoint.pt")
        ckpt = cands[0] if cands else None
    if ckpt is None and not snaps:
        raise FileNotFoundError(
            f"{str(src)!r} has no checkpoint (checkpoint.pt, *.pt, *.safetensors, *.npz) and no "
            "snapshots/update_*.npz; nothing to analyse"
        )
    return ckpt, snaps


@dataclass
class Analysis:
    """Everything the report shows (computed before anything is written)."""

    source: str
    layers: OrderedDict
    chain: bool
    rows: list[dict[str, Any]]
    summary: dict[str, Any]
    curves: dict[str, Any] = field(default_factory=dict)
    history: dict[str, list[float]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _fmt(v: Any) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _power_law(A: Any, side: str) -> tuple[float | None, float | None, float | None]:
    from ..metrics import fit_power_law

    try:
        f = fit_power_law(A, side=side)
    except ValueError:  # too few or constant degrees: no fit, said as n/a
        return None, None, None
    if not f.converged:  # no power law in any tail: an exponent would mislead
        return None, None, f.ks
    return f.alpha, f.sigma, f.ks


def _layer_rows(layers: OrderedDict, report: Any, chain: bool,
                pairs: list[tuple] | None) -> list[dict[str, Any]]:
    from ..metrics import degree_stats, hub_alignment

    names = list(layers)
    if chain:
        nxt = dict(zip(names, names[1:]))  # noqa: B905 - offset pairs
    else:
        nxt = {a: b for kind, a, b, *_ in (pairs or ()) if kind == "chain"}
    rows = []
    for i, (name, A) in enumerate(layers.items()):
        s = degree_stats(A)
        a_in, s_in, ks_in = _power_law(A, "in")
        a_out, s_out, ks_out = _power_law(A, "out")
        row = {"layer": name, "n_in": s.shape[0], "n_out": s.shape[1], "links": s.links,
               "density": s.density, "dead_in": s.inputs.dead, "dead_out": s.outputs.dead,
               "deg_in_mean": s.inputs.mean, "deg_in_max": s.inputs.max,
               "deg_out_mean": s.outputs.mean, "deg_out_max": s.outputs.max,
               "alpha_in": a_in, "sigma_in": s_in, "ks_in": ks_in,
               "alpha_out": a_out, "sigma_out": s_out, "ks_out": ks_out,
               "perc_links_removed": None, "perc_neurons_removed": None, "hub_alignment_next": None}
        if report is not None:
            r = report.layers[i if chain else name]
            row["perc_links_removed"] = r.links_removed
            row["perc_neurons_removed"] = r.outputs_removed
        if name in nxt:
            row["hub_alignment_next"] = hub_alignment(A, layers[nxt[name]])
        rows.append(row)
    return rows


def infer_pairs(layers: OrderedDict) -> list[tuple]:
    """Percolation pairs from layer names and shapes, by the rules of ``netshape.torch``.

    q/k and gate/up are coupled; v -> out_proj/o_proj, up/gate -> down, fc1 -> fc2,
    linear1 -> linear2 are chained; other consecutive siblings whose shapes chain
    (an MLP) are chained. See :mod:`netshape.percolation._pairs`.
    """
    from ..percolation._pairs import infer_pairs as _infer

    return _infer((name, int(A.shape[0]), int(A.shape[1])) for name, A in layers.items())


_HISTORY = ("density", "itop", "anp", "test_acc")


def read_history(path: Path) -> dict[str, list[float]]:
    """Per-epoch ``step`` + density/ITOP/ANP/accuracy columns of a run's ``metrics.csv``."""
    try:
        rows = read_csv(path, lambda _, v: v)
    except OSError as exc:
        raise ValueError(f"{str(path)!r} is not a readable CSV file: {exc}") from exc
    out: dict[str, list[float]] = {}
    for key in ("step", *_HISTORY):
        try:
            vals = [float(r[key]) for r in rows]
        except (KeyError, TypeError, ValueError):
            continue  # a column that is missing or not numeric is simply not plotted
        if vals and all(math.isfinite(v) for v in vals):
            out[key] = vals
    return out if "step" in out and len(out) > 1 else {}


def _anp_both(groups: list[Any]) -> dict[str, float]:
    """``anp`` and ``anp_hidden`` (as :func:`netshape.metrics.anp`) from one percolated count."""
    out = {}
    for key, gs in (("anp", groups), ("anp_hidden", [g for g in groups if g.kind == "hidden"])):
        total = sum(g.total for g in gs)
        out[key] = sum(g.active for g in gs) / total if total else 0.0
    return out


def analyze_source(source: str | Path, *, progress: bool = True) -> Analysis:
    """Read and measure a checkpoint or run directory; writes nothing."""
    import warnings

    from tqdm.auto import tqdm

    from ..io import read_checkpoint
    from ..metrics import active_neurons, cap, snapshot_curves
    from ..percolation import percolate

    ckpt, snap_paths = find_inputs(source)
    notes: list[str] = []
    snaps: list[tuple[int, OrderedDict]] = []
    if snap_paths:
        from ..io import load_topology

        for step, p in tqdm(snap_paths, desc="snapshots", disable=not progress or None):
            data = load_topology(p)
            snaps.append((step, OrderedDict(data) if isinstance(data, dict)
                          else OrderedDict([("layer", data)])))
        names = list(snaps[0][1])
        for step, s in snaps:
            if list(s) != names or [A.shape for A in s.values()] != [
                    A.shape for A in snaps[0][1].values()]:
                raise ValueError(f"snapshot update_{step:06d}.npz has layers {list(s)} with "
                                 f"other names or shapes than the first snapshot ({names})")
    if ckpt is not None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            layers = read_checkpoint(ckpt)
        notes += [str(w.message) for w in caught]
        what = str(ckpt)
    else:
        step, layers = snaps[-1]
        what = f"{source} (last snapshot, update {step})"
        notes.append(f"no checkpoint found; the final topology is snapshot update_{step:06d}.npz")
    names = list(layers)
    pairs = infer_pairs(layers)
    consecutive = [("chain", a, b) for a, b in zip(names, names[1:])]  # noqa: B905
    chain = len(names) > 1 and sorted(pairs) == sorted(consecutive)
    if not pairs and len(names) > 1:
        notes.append("no relation between the layers was found from their names and shapes "
                     "(q/k, gate/up, v->o, fc1->fc2, consecutive chaining shapes), so "
                     "percolation, ANP and CAP are not computed")
    report = None
    summary: dict[str, Any] = {"layers": len(layers),
                               "links": sum(A.nnz for A in layers.values()),
                               "possible": sum(A.shape[0] * A.shape[1] for A in layers.values()),
                               "pairs": None if chain else pairs}
    summary["density"] = summary["links"] / summary["possible"]
    if chain:
        seq = list(layers.values())
        perc, report = percolate(seq)
        c = cap(seq)
        summary.update(cap_paths=c.paths, cap_log10=c.log10,
                       **_anp_both(active_neurons(perc, percolated=True)),
                       perc_links_removed=report.links_removed, perc_sweeps=report.iterations)
    elif pairs:
        perc, report = percolate(layers, pairs=pairs)
        summary.update(**_anp_both(active_neurons(perc, pairs=pairs, percolated=True)),
                       perc_links_removed=report.links_removed, perc_sweeps=report.iterations)
    rows = _layer_rows(layers, report, chain, pairs)
    curves = snapshot_curves(snaps) if snaps else {}
    src = Path(source)
    history = read_history(src / "metrics.csv") if (src / "metrics.csv").is_file() else {}
    return Analysis(source=what, layers=layers, chain=chain, rows=rows, summary=summary,
                    curves=curves, history=history, warnings=notes)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name)).strip("._") or "layer"


def _save(fig: Any, path: Path) -> None:
    from .._backend import require

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    require("matplotlib.pyplot").close(fig)


def _table(rows: list[dict[str, Any]], cols: list[tuple[str, str]]) -> str:
    head = "| " + " | ".join(t for _, t in cols) + " |"
    sep = "|" + "|".join("---" for _ in cols) + "|"
    body = ["| " + " | ".join(_fmt(r[k]) for k, _ in cols) + " |" for r in rows]
    return "\n".join([head, sep, *body])


def _plots(an: Analysis, out: Path) -> list[tuple[str, str]]:
    """Write the PNGs; return (title, file name) pairs for the report."""
    from .._backend import require

    plt = require("matplotlib.pyplot")
    from .. import plot

    made = []
    for name, A in an.layers.items():
        for kind, func in (("adjacency", plot.adjacency), ("degrees", plot.degree_distribution)):
            fig, ax = plt.subplots(figsize=(4.5, 3.5), layout="constrained")
            func(A, ax=ax, **({"side": "both"} if kind == "degrees" else {}))
            ax.set_title(f"{name}: {A.shape[0]}x{A.shape[1]}, {A.nnz} links", fontsize="small")
            fname = f"{kind}_{_safe(name)}.png"
            _save(fig, out / fname)
            made.append((f"{kind} — {name}", fname))
    c = an.curves
    if c:
        fig, ax = plt.subplots(figsize=(5.5, 3.5), layout="constrained")
        series = dict(c["itop_per_layer"]) if len(c["itop_per_layer"]) > 1 else {}
        series["total"] = c["itop"]
        plot.itop_curve(series, steps=c["step"], ax=ax, xlabel="update")
        _save(fig, out / "itop.png")
        made.append(("ITOP over training", "itop.png"))
        if c["overlap"]:
            fig, ax = plt.subplots(figsize=(5.5, 3.5), layout="constrained")
            plot.overlap_curve(c["overlap"], steps=c["overlap_step"], ax=ax, xlabel="update",
                               label="re-growth overlap")
            _save(fig, out / "overlap.png")
            made.append(("Re-growth overlap between snapshots", "overlap.png"))
    if an.history:
        fig, ax = plt.subplots(figsize=(5.5, 3.5), layout="constrained")
        plot.training_curves(an.history, ax=ax, xlabel="training step")
        _save(fig, out / "training.png")
        made.append(("Training run (metrics.csv): density, ITOP, ANP, test accuracy",
                     "training.png"))
    return made


_COLS = [("layer", "layer"), ("n_in", "n_in"), ("n_out", "n_out"), ("links", "links"),
         ("density", "density"), ("dead_in", "dead in"), ("dead_out", "dead out"),
         ("deg_in_mean", "mean deg in"), ("deg_in_max", "max deg in"),
         ("deg_out_mean", "mean deg out"), ("deg_out_max", "max deg out"),
         ("alpha_in", "α in"), ("sigma_in", "± σ"), ("alpha_out", "α out"), ("sigma_out", "± σ"),
         ("perc_links_removed", "percolation: links removed"),
         ("perc_neurons_removed", "percolation: outputs removed"),
         ("hub_alignment_next", "hub alignment with next")]


def _csv(rows: list[dict[str, Any]], keys: list[str]) -> str:
    return csv_text(rows, keys, cell=lambda v: "" if v is None else v)


def write_report(an: Analysis, out: Path, *, plots: bool = True) -> Path:
    """Write ``report.md``, ``layers.csv``, PNGs and ``curves.csv`` into ``out``."""
    figures = _plots(an, out) if plots else []
    keys = [k for k, _ in _COLS]
    keys[keys.index("sigma_in") + 1:keys.index("sigma_in") + 1] = ["ks_in"]
    keys[keys.index("sigma_out") + 1:keys.index("sigma_out") + 1] = ["ks_out"]
    atomic_write_text(out / "layers.csv", _csv(an.rows, keys))
    c = an.curves
    if c:
        ov = dict(zip(c["overlap_step"], c["overlap"], strict=True))
        rows = [{"step": s, "density": d, "itop": i, "regrowth_overlap": ov.get(s)}
                for s, d, i in zip(c["step"], c["density"], c["itop"], strict=True)]
        atomic_write_text(out / "curves.csv",
                          _csv(rows, ["step", "density", "itop", "regrowth_overlap"]))
    s = an.summary
    lines = [f"# netshape analysis: `{an.source}`", "",
             f"{s['layers']} layer(s), {s['links']} links of {s['possible']} possible "
             f"(density {s['density']:.4g}). Layers are biadjacencies (n_in, n_out): "
             "checkpoint masks transposed.", ""]
    if an.chain:
        cap_txt = (f"{s['cap_paths']:.6g}" if math.isfinite(s["cap_paths"])
                   else f"10^{s['cap_log10']:.2f}")
        lines += ["## Network", "",
                  "- treated as a chain (each layer's outputs feed the next layer)",
                  f"- credit assignment paths (complete input-to-output paths): {cap_txt} "
                  f"(log10 = {s['cap_log10']:.4g})"]
    elif s.get("pairs"):
        rel = "; ".join(f"{p[0]} {', '.join(map(str, p[1:]))}" for p in s["pairs"])
        lines += ["## Network", "",
                  f"- layer relations inferred from names (as netshape.torch does): {rel}",
                  "- CAP is computed for chains only"]
    if "anp" in s:
        lines += [f"- active neurons after percolation (ANP): {s['anp']:.4g} of all neurons, "
                  f"{s['anp_hidden']:.4g} of hidden neurons",
                  f"- percolation would remove {s['perc_links_removed']} link(s) "
                  f"({s['perc_sweeps']} sweep(s) to the fixed point)", ""]
    lines += ["## Layers", "", _table(an.rows, _COLS), "",
              "α: discrete power-law exponent of the degree distribution of the layer's input "
              "(in) or output (out) neurons, ± its standard error; n/a when too few neurons "
              "have links or the fit does not converge (no power law in any tail). KS "
              "distances of the fits are in `layers.csv`.", ""]
    if c:
        lines += ["## Over training", "",
                  f"{len(c['step'])} snapshot(s), updates {c['step'][0]}–{c['step'][-1]}; "
                  f"ITOP at the last snapshot {c['itop'][-1]:.4g} (a lower bound: links that "
                  "lived only between snapshots are not seen). The re-growth overlap is the "
                  "share of links grown back at a snapshot that had been removed at the one "
                  "before. Values in `curves.csv`.", ""]
    if figures:
        lines += ["## Figures", ""]
        lines += [f"### {title}\n\n![{title}]({fname})\n" for title, fname in figures]
    if an.warnings:
        lines += ["## Notes", ""] + [f"- {w}" for w in dict.fromkeys(an.warnings)] + [""]
    path = out / "report.md"
    atomic_write_text(path, "\n".join(lines))
    return path
