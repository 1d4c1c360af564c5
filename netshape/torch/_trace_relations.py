"""From traced channel couplings to percolation relations (see :mod:`netshape.torch.dataflow`)."""

from __future__ import annotations

import warnings

import numpy as np

from ..percolation._units import head_units

__all__ = ["compile_relations"]


def _components(n: int, edges: list[np.ndarray]) -> np.ndarray:
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    e = np.concatenate(edges) if edges else np.zeros((0, 2), dtype=np.int64)
    g = sp.coo_array((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n))
    return connected_components(g, directed=False)[1]


def _canon(u: np.ndarray) -> np.ndarray:
    """Unit ids relabelled 0, 1, ... in order of first appearance."""
    if not u.size:
        return u
    _, first, inv = np.unique(u, return_index=True, return_inverse=True)
    return np.argsort(np.argsort(first))[inv.reshape(-1)]


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool((_canon(a) == _canon(b)).all())


def _head_spec(kind: str, na: int, nb: int, ua: np.ndarray, ub: np.ndarray,
               head_dim: int | None) -> dict | None:
    """The head form of a unit map, when one reproduces it exactly."""
    both = np.concatenate([ua, ub])
    for d in ([head_dim] if head_dim else []) + [x for x in range(1, min(na, nb) + 1)
                                                  if na % x == 0 and nb % x == 0]:
        H, G = (na // d, nb // d) if kind == "couple" else (nb // d, na // d)
        if G == 0 or H % G:
            continue
        rotaries = [(0, "half")] + ([(r, s) for r in range(2, d + 1, 2)
                                     for s in ("half", "interleaved")] if kind == "couple" else [])
        for r, style in rotaries:
            q, k = head_units(H, G, d, r, style)
            cand = np.concatenate([q, k] if kind == "couple" else [k, q])
            if _same_partition(cand, both):
                spec = {"heads": H, "kv_heads": G, "head_dim": d}
                if r:
                    spec.update(rotary_dim=r, rotary=style)
                return spec
    return None


def compile_relations(slots, offset, owner, tracer, consumed, known) -> list[tuple]:
    n = len(owner)
    comp = _components(n, tracer.couple + tracer.join)
    # a sum or product carries all the channels it joins: one of them read elsewhere is all read
    escaped = np.isin(comp, comp[tracer.escaped])
    name = [s.name for s in slots]
    rng = {s.name: np.arange(offset[s.name], offset[s.name] + s.n_out) for s in slots}
    skipped: list[str] = []
    rels: list[tuple[int, tuple]] = []
    # couples: slot pairs joined by a product (or q @ k^T)
    coupled: set[tuple[int, int]] = set()
    for e in tracer.couple:
        o = np.sort(owner[e], axis=1)
        for i in np.unique(o[o[:, 0] == o[:, 1], 0]):
            skipped.append(f"{name[i]}: its own output channels meet in a product (a packed "
                           f"projection? declare it with packed={{{name[i]!r}: (...)}})")
        o = np.unique(o[o[:, 0] != o[:, 1]], axis=0)
        coupled.update((int(i), int(j)) for i, j in o)
    for i, j in sorted(coupled):
        a, b = name[i], name[j]
        ca, cb = comp[rng[a]], comp[rng[b]]
        members = np.isin(owner, [i, j])
        inside = np.isin(comp, np.concatenate([ca, cb]))
        if (inside & ~members).any():
            skipped.append(f"{a} / {b}: their coupled channels also mix with other layers")
            continue
        if escaped[rng[a]].any() or escaped[rng[b]].any():
            skipped.append(f"{a} / {b}: their outputs are also read outside the coupling")
            continue
        if not (set(ca) == set(cb)):
            skipped.append(f"{a} / {b}: some channels of one meet no channel of the other")
            continue
        if len(cb) > len(ca):  # the query side (more heads) comes first
            a, b, ca, cb = b, a, cb, ca
        if len(ca) == len(cb) and len(set(ca)) == len(ca) and bool((ca == cb).all()):
            rels.append((min(i, j), ("couple", a, b)))
            continue
        hd = next((v for (x, y), v in tracer.head_dim.items()
                   if {int(owner[x]), int(owner[y])} == {i, j}), None)
        spec = _head_spec("couple", len(ca), len(cb), ca, cb, hd)
        if spec is None:
            c = _canon(np.concatenate([ca, cb]))
            spec = {"units": {a: c[: len(ca)].tolist(), b: c[len(ca):].tolist()}}
        rels.append((min(i, j), ("couple", a, b, spec)))
    # chains: consumer rows that read producer channels, and nothing else
    for s in slots:
        rows = consumed.get(s.name)
        if rows is None:
            continue
        rows = rows.numpy()
        if (rows < 0).any():
            skipped.append(f"-> {s.name}: its input mixes traced channels with other data")
            continue
        producers = sorted({int(owner[r]) for r in rows} |
                           {int(owner[x]) for x in np.flatnonzero(np.isin(comp, comp[rows]))})
        for pi in producers:
            p = name[pi]
            if escaped[rng[p]].any():
                skipped.append(f"{p} -> {s.name}: {p}'s outputs are also read elsewhere "
                               "(e.g. a residual connection)")
                continue
            same = rows.shape == rng[p].shape
            if same and (bool((rows == rng[p]).all()) or len(producers) > 1 and
                         bool((comp[rows] == comp[rng[p]]).all())):
                rels.append((pi, ("chain", p, s.name)))
                continue
            if len(producers) > 1 or not np.isin(rows, rng[p]).all():
                skipped.append(f"{p} -> {s.name}: several producers with a channel map")
                continue
            if not np.isin(rng[p], rows).all():  # the rest goes somewhere the chain cannot see
                skipped.append(f"{p} -> {s.name}: only part of {p}'s outputs reach {s.name}")
                continue
            up, ur = np.arange(len(rng[p])), rows - offset[p]
            spec = _head_spec("chain", len(up), len(ur), up, ur, None)
            rels.append((pi, ("chain", p, s.name, spec or {"units": {p: up.tolist(),
                                                                      s.name: ur.tolist()}})))
    skipped = list(dict.fromkeys(skipped))
    unknown = sorted({f"{op} ({', '.join(sorted({name[owner[x]] for x in ids}))})"
                      for op, ids in tracer.unknown.items()})
    if skipped or unknown:
        msg = "percolation relations not inferred from the traced dataflow"
        if skipped:
            msg += ": " + "; ".join(skipped)
        if unknown:
            msg += "; outputs flow into ops the tracer does not follow: " + ", ".join(unknown)
        warnings.warn(msg + ". Pass pairs= to sparsify() to set them.", UserWarning,
                      stacklevel=3)
    seen, out = set(), []
    for _, r in sorted(rels, key=lambda x: x[0]) + [(0, r) for r in known]:
        key = repr(r)
        if key not in seen:
            seen.add(key)
            out.append(r)
    order = {s.name: i for i, s in enumerate(slots)}
    return sorted(out, key=lambda r: (order[r[1]], r[0] != "couple", order[r[2]]))
