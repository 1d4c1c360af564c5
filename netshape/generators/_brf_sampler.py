"""Exact distance-weighted sampling for BRF at a cost in proportion to the links.

Output ``j`` needs ``k_j`` distinct inputs drawn by successive sampling
without replacement with weights ``w_i = (1 + d_ij)^(-alpha)``. Successive
sampling equals "the ``k_j`` smallest exponential keys ``E_i / w_i``"
(Efraimidis–Spirakis). Computing a key for every input costs ``n_in * n_out``;
instead the ring is split around each output's centre:

* **inside** — inputs at integer offset ``|o| <= H`` from the input holding the
  centre: their keys are drawn explicitly (``log E + alpha log(1 + d)``);
* **outside** — every other input. A key ``E_i / w_i`` is the first arrival
  time of a Poisson process of rate ``w_i``, so the outside keys below a
  horizon ``T`` are the first arrivals of one Poisson process of total rate
  ``sum w_i`` on ``[0, T]``: draw the arrival count, labels from a shared
  envelope ``(u + 1/2)^(-alpha) >= w`` over the offset ``u = |o|`` (thinned by
  ``w / envelope``) and uniform arrival times; keep each input's first arrival.

If the ``k_j``-th smallest known key is below ``T`` every key that can compete
is known and the draw is exact; otherwise ``T`` is doubled and the process
extended on ``(T, 2T]`` (independent increments). ``H`` and ``T`` only change
the cost, never the distribution; they come from the expected number of keys
below a horizon on the shared profile. Everything is in log space, so steep
profiles (small ``r``) neither underflow nor overflow.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["sample_receptive_fields"]

_CHUNK_CELLS = 1 << 19  # outputs are processed in chunks of about this many key cells
#: cost of one outside arrival in explicit keys (Poisson count, label search, thinning,
#: first-arrival dedupe); measured on 4096 x 16384 at 5 %, r = 0.25
_ARRIVAL_COST = 8.0
#: outputs below which neighbouring degree groups are merged (see _degree_groups)
_MIN_GROUP_ROWS = 1024


def _offsets(n_in: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct ring offsets ``u = 0..n_in//2`` and how many inputs sit at each."""
    half = n_in // 2
    u = np.arange(half + 1, dtype=np.float64)
    mult = np.full(half + 1, 2.0)
    mult[0] = 1.0
    if n_in % 2 == 0 and half > 0:
        mult[half] = 1.0
    return u, mult


def _log_suffix_sum(logv: np.ndarray) -> np.ndarray:
    """``out[h] = log(sum(exp(logv[h:])))``, with ``out[len] = -inf``."""
    rev = np.logaddexp.accumulate(logv[::-1])[::-1]
    return np.concatenate([rev, [-np.inf]])


def _horizons(k: np.ndarray, alpha: float, u: np.ndarray, mult: np.ndarray) -> np.ndarray:
    """Log horizon per output: where the expected count of keys below it is ``k + 3 sqrt(k) + 2``.

    Uses the symmetric profile (centre on an input); the extension loop covers
    the error this makes for off-centre outputs.
    """
    # coarse representative offsets keep this O(4096) even for huge layers
    if u.size > 4096:
        pick = np.unique(np.round(np.geomspace(1, u.size - 1, 4096)).astype(np.int64))
        pick = np.concatenate([[0], pick])
        bounds = np.concatenate([pick, [u.size]])
        mult = np.add.reduceat(mult, bounds[:-1])
        u = u[pick]
    logw = -alpha * np.log1p(u)
    total = float(mult.sum())
    lo = -np.log(np.sum(mult * np.exp(logw - logw.max()))) - logw.max() - math.log(4 * total)
    hi = -logw.min() + math.log(64.0)
    grid = np.linspace(lo, hi, 256)
    with np.errstate(over="ignore"):
        g = (mult * -np.expm1(-np.exp(grid[:, None] + logw[None, :]))).sum(axis=1)
    g = np.maximum.accumulate(g)
    target = k + 3.0 * np.sqrt(k) + 2.0
    target = np.minimum(target, g[-1])
    return np.interp(target, g, grid)


def _choose_half_width(n_out: int, n_in: int, log_t: np.ndarray, log_env_out: np.ndarray) -> int:
    """Inside half-width ``H`` minimising explicit keys plus expected outside arrivals."""
    h_max = (n_in - 1) // 2
    hs = np.arange(h_max + 1)
    lse_t = float(np.logaddexp.reduce(log_t))
    with np.errstate(over="ignore"):
        cost = n_out * (2.0 * hs + 1) + _ARRIVAL_COST * np.exp(lse_t + log_env_out[hs + 1])
    best = int(np.argmin(cost))
    # "everything inside" when that is no dearer: no outside process at all
    if n_out * n_in <= cost[best]:
        return -1
    return best


class _Outside:
    """The shared envelope over signed offsets ``|o| > H`` (one table for every output)."""

    def __init__(self, n_in: int, h: int, alpha: float, log_env_out: np.ndarray):
        half = n_in // 2
        pos = np.arange(h + 1, half + 1, dtype=np.int64)
        neg = -np.arange(h + 1, (n_in - 1) // 2 + 1, dtype=np.int64)
        self.off = np.concatenate([pos, neg])
        u = np.abs(self.off).astype(np.float64)
        self.log_rate = float(log_env_out[h + 1])
        self.cdf = np.cumsum(np.exp(-alpha * np.log(u + 0.5) - self.log_rate))
        self.log_env = -alpha * np.log(u + 0.5)
        # guide table (the cutpoint method): bucket b of the uniform draw starts its
        # search at the first offset whose cdf exceeds the bucket's lower edge
        self.buckets = 2 * self.cdf.size
        edges = np.arange(self.buckets) * (self.cdf[-1] / self.buckets)
        self.guide = np.searchsorted(self.cdf, edges * (1.0 - 1e-12), side="right")

    def label(self, x: np.ndarray) -> np.ndarray:
        """``searchsorted(cdf, x * cdf[-1], side="right")`` clipped to the table (``x`` in [0, 1)).

        Starts at the guide entry and steps forward; the expected number of
        steps is below one, against a binary search's dozen.
        """
        cdf, last = self.cdf, self.cdf.size - 1
        target = x * cdf[-1]
        b = np.minimum((x * self.buckets).astype(np.int64), self.buckets - 1)
        idx = np.minimum(self.guide[b], last)
        todo = np.flatnonzero(cdf[idx] <= target)
        while todo.size:
            nxt = idx[todo] + 1
            np.minimum(nxt, last, out=nxt)
            idx[todo] = nxt
            todo = todo[(nxt < last) & (cdf[nxt] <= target[todo])]
        return idx

    def arrivals(self, rows, log_t0, log_t1, base, frac_of, alpha, n_in, gen):
        """Accepted arrivals on ``(T0, T1]``: ``(row, input, log time)``, grouped by row."""
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            ratio = np.exp(log_t0 - log_t1)  # T0 / T1, 0 on the first pass
            lam = np.exp(log_t1 + np.log1p(-ratio) + self.log_rate)
        cnt = gen.poisson(lam)
        r = np.repeat(rows, cnt)
        n = r.size
        if n == 0:
            return r, r.copy(), np.empty(0)
        pick = self.label(gen.random(n))
        off = self.off[pick]
        xx = np.abs(off + 0.5 - frac_of[r])
        dd = np.minimum(xx, n_in - xx)
        # thinning: keep with probability w / envelope = exp(-alpha log(1+d) - log env)
        accept = np.log(gen.random(n)) < -alpha * np.log1p(dd) - self.log_env[pick]
        u = gen.random(n)
        r, off, u = r[accept], off[accept], u[accept]
        # given the count, arrival times are uniform on (T0, T1]
        rep = np.repeat(ratio, cnt)[accept]
        with np.errstate(divide="ignore"):
            logt = np.repeat(log_t1, cnt)[accept] + np.log(rep + u * (1.0 - rep))
        return r, (base[r] + off) % n_in, logt


def _grouped_to_padded(rows, vals, n_rows, fill):
    """Row-grouped flat values to a padded ``(n_rows, width)`` matrix."""
    counts = np.bincount(rows, minlength=n_rows)
    mat = np.full((n_rows, int(counts.max(initial=0))), fill, dtype=vals.dtype)
    if rows.size:
        start = np.zeros(n_rows, np.int64)
        np.cumsum(counts[:-1], out=start[1:])
        mat[rows, np.arange(rows.size) - start[rows]] = vals
    return mat


def _first_arrivals(rows, items, logt, n_rows, n_in):
    """Padded ``(keys, items)`` per row of the arrivals, each input kept at its earliest one.

    Later arrivals of an input keep their slot with key ``+inf`` and item ``-1``,
    so the padded width is the largest arrival count of a row.
    """
    comb = rows * n_in + items
    # by row, then input; equal entries carry equal items and times, so stability is moot
    order = np.argsort(comb)
    comb, rows, items, logt = comb[order], rows[order], items[order], logt[order]
    if comb.size:
        new = np.empty(comb.size, dtype=bool)
        new[0] = True
        np.not_equal(comb[1:], comb[:-1], out=new[1:])
        group = np.cumsum(new) - 1
        earliest = np.minimum.reduceat(logt, np.flatnonzero(new))[group] == logt
        # one earliest arrival per input (the first of them, should two times be equal)
        firsts = np.flatnonzero(earliest)
        keep = np.zeros(comb.size, dtype=bool)
        keep[firsts[np.concatenate([[True], group[firsts[1:]] != group[firsts[:-1]]])]] = True
        logt[~keep] = np.inf
        items[~keep] = -1
    return (_grouped_to_padded(rows, logt, n_rows, np.inf),
            _grouped_to_padded(rows, items, n_rows, -1))


def _take_k(keys, items, k, gen, thr=None):
    """Items of the ``k[row]`` smallest keys per row, grouped by row.

    Equal keys at the cut (possible only when ``alpha`` is so large that the
    exponential noise is below float resolution, i.e. the r -> 0 limit) are
    broken uniformly at random, which is that limit's law.
    """
    if thr is None:
        thr = _kth(keys, k)
    mask = keys <= thr[:, None]
    bad = np.flatnonzero(mask.sum(axis=1) != k)
    if bad.size:
        order = np.lexsort((gen.random(keys[bad].shape), keys[bad]), axis=-1)
        fix = np.zeros(order.shape, dtype=bool)
        np.put_along_axis(fix, order, np.arange(order.shape[1])[None, :] < k[bad, None], axis=1)
        mask[bad] = fix
    return items[mask]


def _kth(keys, k):
    """k-th smallest key per row; +inf where a row knows fewer than k keys, -inf for k = 0.

    One in-place partition at a shared rank serves every row: a row of degree
    ``k`` is prefixed by ``kmax - k`` keys of ``-inf`` and ``k - kmin`` of
    ``+inf``, so its ``kmax``-th smallest padded key is its own ``k``-th smallest.
    The degrees of a group differ by a few links, so the padding is narrow, and
    one selection replaces one per distinct degree.
    """
    n, width = keys.shape
    out = np.full(n, -np.inf)
    out[k > width] = np.inf
    use = (k > 0) & (k <= width)
    if not use.any():
        return out
    rows = np.flatnonzero(use)
    kr = k[rows]
    kmin, kmax = int(kr.min()), int(kr.max())
    pad = kmax - kmin
    buf = np.empty((rows.size, pad + width))
    buf[:, pad:] = keys if rows.size == n else keys[rows]
    if pad:
        buf[:, :pad] = np.inf
        buf[:, :pad][np.arange(pad)[None, :] < (kmax - kr)[:, None]] = -np.inf
    buf.partition(kmax - 1, axis=1)
    out[rows] = buf[:, kmax - 1]
    return out


def _degree_groups(k: np.ndarray) -> np.ndarray:
    """Group label per output: degrees within a factor ``2^(1/4)``, small groups merged.

    A group shares one inside window (sized for its degrees) and pays a fixed
    cost for its tables and chunks, so neighbouring groups with few outputs
    (uniform degrees spread the small ones thin) are merged up to
    ``_MIN_GROUP_ROWS`` outputs.
    """
    fine = np.floor(4.0 * np.log2(k + 1.0)).astype(np.int64)
    labels, counts = np.unique(fine, return_counts=True)
    merged = np.empty(labels.size, dtype=np.int64)
    current, rows = 0, 0
    for i, c in enumerate(counts.tolist()):
        if rows >= _MIN_GROUP_ROWS:  # the open group is big enough: start the next one
            current, rows = current + 1, 0
        merged[i] = current
        rows += c
    return merged[np.searchsorted(labels, fine)]


def sample_receptive_fields(n_in: int, n_out: int, k: np.ndarray, alpha: float,
                            gen: np.random.Generator, *, half_width: int | None = None
                            ) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``k[j]`` distinct inputs for every output ``j``; return ``(counts, inputs)``.

    ``inputs`` lists output 0's inputs, then output 1's, ...; ``counts == k``.
    ``half_width`` forces ``H`` (tests use it to exercise the outside process;
    ``-1`` means every input inside).
    Outputs are handled in groups of similar degree (each with its own inside
    width), so uniform degrees do not pad every row to the largest one.
    """
    k = np.asarray(k, dtype=np.int64)
    u, mult = _offsets(n_in)
    log_env = np.log(mult) - alpha * np.log(u + 0.5)
    log_env_out = _log_suffix_sum(log_env)  # [h] = log total envelope rate of offsets u >= h
    log_t = _horizons(k.astype(np.float64), alpha, u, mult)
    # centre c_j = (2j+1) n_in / (2 n_out) = base_j + frac_j, base_j an input index
    j = np.arange(n_out, dtype=np.int64)
    num = (2 * j + 1) * n_in
    base = num // (2 * n_out)
    resid = num % (2 * n_out)
    res_vals, res_inv = np.unique(resid, return_inverse=True)
    frac_vals = res_vals / (2.0 * n_out)
    frac_of = frac_vals[res_inv]

    # beyond this, (1/2)^alpha * n_in < 1e-300: inputs past twice the degree cannot compete,
    # and keys are kept as log(1+d) + log(E)/alpha so they stay finite
    steep = alpha > 1000.0
    out = np.empty(int(k.sum()), dtype=np.int64)
    start = np.zeros(n_out, dtype=np.int64)
    np.cumsum(k[:-1], out=start[1:])
    group = _degree_groups(k)
    for g in np.unique(group):
        jg = np.flatnonzero(group == g)
        # outputs with the same centre fraction share inside weights: keep them adjacent
        jg = jg[np.argsort(res_inv[jg], kind="stable")]
        if half_width is not None:
            h = int(half_width)
        elif steep:
            h = min((n_in - 1) // 2, 2 * int(k[jg].max()) + 2)
        else:
            h = _choose_half_width(jg.size, n_in, log_t[jg], log_env_out)
        if h >= 0 and 2 * h + 2 >= n_in:
            h = -1  # at most one input would stay outside: score them all
        if h < 0:
            o = np.arange(-((n_in - 1) // 2), n_in // 2 + 1, dtype=np.int64)
            outside = None
        else:
            o = np.arange(-h, h + 1, dtype=np.int64)
            use_out = 2 * h + 1 < n_in and not steep
            outside = _Outside(n_in, h, alpha, log_env_out) if use_out else None
        y = np.abs(o[None, :] + 0.5 - frac_vals[:, None])
        inside_cost = np.log1p(np.minimum(y, n_in - y))  # (distinct fractions, L)
        e_scale = 1.0 / alpha if steep else 1.0
        if not steep:
            inside_cost *= alpha
        chunk = max(1, _CHUNK_CELLS // max(1, o.size))
        for c0 in range(0, jg.size, chunk):
            js = jg[c0:c0 + chunk]
            got = _chunk(js, k[js], o, base, res_inv, frac_of, inside_cost, log_t[js],
                         outside, alpha, n_in, gen, e_scale)
            firsts = np.repeat(start[js] - np.cumsum(k[js]) + k[js], k[js])
            out[firsts + np.arange(got.size)] = got
    return k.copy(), out


def _chunk(js, kj, o, base, res_inv, frac_of, inside_cost, hor, outside, alpha, n_in, gen,
           e_scale=1.0):
    """The ``k[j]`` inputs of each output ``j`` in ``js``, grouped by output."""
    if e_scale == 1.0 and outside is not None and inside_cost.max() + hor.max() < 600.0:
        return _chunk_linear(js, kj, o, base, res_inv, frac_of, inside_cost, hor, outside,
                             alpha, n_in, gen)
    nj = js.size
    keys = np.log(gen.standard_exponential((nj, o.size)))
    if e_scale != 1.0:
        keys *= e_scale
    keys += inside_cost[res_inv[js]]
    items = (base[js, None] + o[None, :]) % n_in
    if outside is None:
        return _take_k(keys, items, kj, gen)
    r, it, lt = outside.arrivals(np.arange(nj), np.full(nj, -np.inf), hor, base[js],
                                 frac_of[js], alpha, n_in, gen)
    ko, io = _first_arrivals(r, it, lt, nj, n_in)
    keys = np.concatenate([keys, ko], axis=1)
    items = np.concatenate([items, io], axis=1)
    return _select(keys, items, kj, hor, False, outside, base[js], frac_of[js], alpha, n_in,
                   gen)


def _chunk_linear(js, kj, o, base, res_inv, frac_of, inside_cost, hor, outside, alpha, n_in,
                  gen):
    """:func:`_chunk` with keys ``E / w`` kept linear (no logarithm per key).

    Used when every key that can matter is far from overflow; ordering keys by
    ``E / w`` or by ``log E - log w`` is the same draw. The rows whose horizon is
    too short fall back to the log-space extension.
    """
    nj, width = js.size, o.size
    r, it, lt = outside.arrivals(np.arange(nj), np.full(nj, -np.inf), hor, base[js],
                                 frac_of[js], alpha, n_in, gen)
    ko, io = _first_arrivals(r, it, lt, nj, n_in)
    keys = np.empty((nj, width + ko.shape[1]))
    items = np.empty(keys.shape, dtype=np.int64)
    np.exp(ko, out=keys[:, width:])
    items[:, width:] = io
    E = gen.standard_exponential((nj, width))
    inv_w = np.exp(inside_cost)
    cls = res_inv[js]
    cuts = np.flatnonzero(cls[1:] != cls[:-1]) + 1
    if cuts.size < 64:  # few centre fractions (the usual case): broadcast each block
        for a, b in zip(np.concatenate([[0], cuts]), np.concatenate([cuts, [nj]]), strict=True):
            np.multiply(E[a:b], inv_w[cls[a]], out=keys[a:b, :width])
    else:
        np.multiply(E, inv_w[cls], out=keys[:, :width])
    bj = base[js]
    np.add(bj[:, None], o[None, :], out=items[:, :width])
    # only windows that cross the ring's ends need the modulo (a few rows of many)
    wrap = np.flatnonzero((bj + o[0] < 0) | (bj + o[-1] >= n_in))
    if wrap.size:
        items[wrap, :width] %= n_in
    return _select(keys, items, kj, hor, True, outside, bj, frac_of[js], alpha, n_in, gen)


def _select(keys, items, kj, hor, linear, outside, base, frac_of, alpha, n_in, gen):
    """The ``kj`` smallest keys' items per row; rows whose k-th key lies past the horizon extend.

    ``linear`` says the keys are ``E / w`` rather than their logarithms (the
    horizon ``hor`` is always a logarithm).
    """
    thr = _kth(keys, kj)
    good = thr <= (np.exp(hor) if linear else hor)
    if good.all():
        return _take_k(keys, items, kj, gen, thr)
    out = np.empty(int(kj.sum()), dtype=np.int64)
    slot_good = np.repeat(good, kj)
    out[slot_good] = _take_k(keys[good], items[good], kj[good], gen, thr[good])
    bad = np.flatnonzero(~good)
    log_keys = keys[bad]
    if linear:
        with np.errstate(divide="ignore"):
            log_keys = np.log(log_keys)
    out[~slot_good] = _extend(kj[bad], log_keys, items[bad], hor[bad], outside, base[bad],
                              frac_of[bad], alpha, n_in, gen)
    return out


def _extend(kj, keys, items, hor, outside, base, frac_of, alpha, n_in, gen):
    """Rows whose k-th key lies past the horizon: extend the outside process to 2T, repeat."""
    nj = kj.size
    while True:
        new_hor = hor + math.log(2.0)
        rr, it, lt = outside.arrivals(np.arange(nj), hor, new_hor, base, frac_of, alpha, n_in,
                                      gen)
        # re-key the known items with the new arrivals: an input keeps its earliest time
        known = items >= 0
        rows_known = np.nonzero(known)[0]
        ko, io = _first_arrivals(np.concatenate([rows_known, rr]),
                                 np.concatenate([items[known], it]),
                                 np.concatenate([keys[known], lt]), nj, n_in)
        keys, items = ko, io
        hor = new_hor
        thr = _kth(keys, kj)
        if np.all(thr <= hor):
            return _take_k(keys, items, kj, gen, thr)
