"""``netshape analyze``: read a checkpoint or run directory, measure, write a report.

Everything is read and computed before anything is written; every file is
written atomically. Layers are biadjacencies ``(n_in, n_out)`` (checkpoint
masks transposed).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._fs import atomic_write_text, csv_text
from ._figures import write_figures
from ._inputs import MASKS_FILE, find_inputs, read_history, read_snapshots

__all__ = ["Analysis", "analyze_source", "find_inputs", "read_history", "write_report"]

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


def _power_law(A: Any, side: str) -> tuple[float | None, float | None, float | None, str]:
    """(alpha, sigma, KS, verdict); alpha and sigma are None where no power law is supported."""
    from ..metrics import fit_power_law

    try:
        f = fit_power_law(A, side=side)
    except ValueError:  # too few or constant degrees: no fit, said as n/a
        return None, None, None, "n/a"
    if f.verdict == "no power law":  # an exponent with error bars would mislead
        return None, None, f.ks, f.verdict
    return f.alpha, f.sigma, f.ks, f.verdict


def _layer_rows(layers: OrderedDict, report: Any, chain: bool,
                pairs: list[tuple] | None) -> list[dict[str, Any]]:
    from ..metrics import degree_stats, hub_alignment

    names = list(layers)
    if chain:
        nxt = dict(zip(names, names[1:]))  # noqa: B905 - offset pairs
    else:
        # plain chains only: a unit chain (GQA v -> o) does not pair channels one to one
        nxt = {r[1]: r[2] for r in (pairs or ()) if r[0] == "chain" and len(r) == 3}
    rows = []
    for name, A in layers.items():
        s = degree_stats(A)
        a_in, s_in, ks_in, v_in = _power_law(A, "in")
        a_out, s_out, ks_out, v_out = _power_law(A, "out")
        row = {"layer": name, "n_in": s.shape[0], "n_out": s.shape[1], "links": s.links,
               "density": s.density, "dead_in": s.inputs.dead, "dead_out": s.outputs.dead,
               "deg_in_mean": s.inputs.mean, "deg_in_max": s.inputs.max,
               "deg_out_mean": s.outputs.mean, "deg_out_max": s.outputs.max,
               "power_law_in": v_in, "alpha_in": a_in, "sigma_in": s_in, "ks_in": ks_in,
               "power_law_out": v_out, "alpha_out": a_out, "sigma_out": s_out,
               "ks_out": ks_out,
               "perc_links_removed": None, "perc_neurons_removed": None, "hub_alignment_next": None}
        if report is not None:
            r = report.layers[name]
            row["perc_links_removed"] = r.links_removed
            row["perc_neurons_removed"] = r.outputs_removed
        if name in nxt:
            row["hub_alignment_next"] = hub_alignment(A, layers[nxt[name]])
        rows.append(row)
    return rows




def stored_pairs(path: Path | None) -> list[tuple] | None:
    """The relations saved in an exported masks file's metadata, or None."""
    if path is None or path.name != MASKS_FILE:
        return None
    import json

    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = json.loads((f.metadata() or {}).get("netshape", "null"))
    except Exception:  # noqa: BLE001 - unreadable metadata: fall back to the names
        return None
    pairs = meta.get("pairs") if isinstance(meta, dict) else None
    return [tuple(r) for r in pairs] if isinstance(pairs, list) else None


def infer_pairs(layers: OrderedDict) -> list[tuple]:
    """Percolation pairs from layer names and shapes, by the rules of ``netshape.torch``.

    q/k and gate/up are coupled; v -> out_proj/o_proj, up/gate -> down, fc1 -> fc2,
    linear1 -> linear2 are chained; consecutive indexed siblings (``net.0``,
    ``net.2``: an ``nn.Sequential``) whose shapes chain are chained. See
    :mod:`netshape.percolation._pairs`. An exported directory stores its traced relations.
    """
    from ..percolation._pairs import infer_pairs as _infer

    # chained by shape alone only as children of a container (names ending in an index, as
    # nn.Sequential gives): siblings such as BERT's query/key/value read one input in parallel
    return _infer((name, int(A.shape[0]), int(A.shape[1]), name.rsplit(".", 1)[-1].isdigit())
                  for name, A in layers.items())


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

    from ..io import read_checkpoint
    from ..metrics import active_neurons, cap, snapshot_curves
    from ..percolation import percolate

    ckpt, snap_paths = find_inputs(source)
    notes: list[str] = []
    snaps = read_snapshots(snap_paths, progress=progress)
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
    pairs = stored_pairs(ckpt)
    if pairs is None:
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
        # percolated by name (the chain as explicit pairs): the report names the same layers
        # as the table, snapshots and dst.masks, never list positions
        perc, report = percolate(layers, pairs=consecutive)
        c = cap(list(layers.values()))
        summary.update(cap_paths=c.paths, cap_log10=c.log10,
                       **_anp_both(active_neurons(perc, pairs=consecutive, percolated=True)),
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


def _table(rows: list[dict[str, Any]], cols: list[tuple[str, str]]) -> str:
    head = "| " + " | ".join(t for _, t in cols) + " |"
    sep = "|" + "|".join("---" for _ in cols) + "|"
    body = ["| " + " | ".join(_fmt(r[k]) for k, _ in cols) + " |" for r in rows]
    return "\n".join([head, sep, *body])


_COLS = [("layer", "layer"), ("n_in", "n_in"), ("n_out", "n_out"), ("links", "links"),
         ("density", "density"), ("dead_in", "dead in"), ("dead_out", "dead out"),
         ("deg_in_mean", "mean deg in"), ("deg_in_max", "max deg in"),
         ("deg_out_mean", "mean deg out"), ("deg_out_max", "max deg out"),
         ("power_law_in", "power law in"), ("alpha_in", "α in"), ("sigma_in", "± σ"),
         ("power_law_out", "power law out"), ("alpha_out", "α out"), ("sigma_out", "± σ"),
         ("perc_links_removed", "percolation: links removed"),
         ("perc_neurons_removed", "percolation: outputs removed"),
         ("hub_alignment_next", "hub alignment with next")]


def _csv(rows: list[dict[str, Any]], keys: list[str]) -> str:
    return csv_text(rows, keys, cell=lambda v: "" if v is None else v)


def write_report(an: Analysis, out: Path, *, plots: bool = True) -> Path:
    """Write ``report.md``, ``layers.csv``, PNGs and ``curves.csv`` into ``out``."""
    figures = write_figures(an, out) if plots else []
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
              "power law: what the degree distribution of the layer's input (in) or output "
              "(out) neurons supports, from likelihood-ratio tests against lognormal and "
              "exponential tails (p < 0.1): *power law* (better than both), *no power law* "
              "(an alternative is significantly better, or no tail fits), *inconclusive*. "
              "α: the discrete power-law exponent ± its standard error, shown unless the "
              "verdict is *no power law*; n/a when too few neurons have links. KS distances "
              "of the fits are in `layers.csv`.", ""]
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
