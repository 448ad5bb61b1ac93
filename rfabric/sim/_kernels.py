"""The simulator's compiled kernels (numba when available, the same functions interpreted otherwise).

:func:`heap_maxmin` is progressive filling with a heap of links keyed by fair share. Exact and
``O(nnz log L)``: pop the link of smallest share ``rem / demand``; freeze its unfrozen flows at that share; lower ``rem`` and ``demand`` of every other link those flows cross and push their new
shares. Shares only grow, so a heap key is a lower bound of its link's share: a popped entry whose
share has grown is pushed back with the new key (lazy re-keying, at most one entry per link). Shares never fall below the current level (see
:mod:`rfabric.sim.maxmin`), so the popped share is the next saturation level.
Measured on this machine (2 cores): a vectorised numpy version needs one pass over all non-zeros per
bottleneck "wave" and took ~0.2 s per solve for 74 k flows with hash ECMP on a 16,384-GPU fat-tree;
this kernel needs a few ms. Without numba the same function runs interpreted (slow, but correct).

The other kernels here carry the event loop's per-event work (:mod:`rfabric.sim.engine` falls back to
numpy without numba): :func:`solve_rows` (gather, link compaction and transpose of one solve without
sorting the non-zeros), :func:`add_load`, :func:`next_drain`, :func:`advance`, :func:`drain_flows`,
:func:`split_due`, :func:`split_by_threshold`, :func:`flow_components`, and :func:`column_hashes` / :func:`same_rows` (redundant arcs).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

try:  # numba is a declared dependency; keep the simulator importable without it
    from numba import njit as _njit

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover
    HAVE_NUMBA = False

    def _njit(*args: Any, **kwargs: Any) -> Callable[..., Any]:  # type: ignore[no-redef]
        def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
            return fn
        return deco


@_njit(cache=True)
def _push(hk: np.ndarray, hv: np.ndarray, n: int, key: float, val: int) -> int:
    i = n
    hk[i] = key
    hv[i] = val
    while i > 0:
        p = (i - 1) // 2
        if hk[p] <= hk[i]:
            break
        hk[p], hk[i] = hk[i], hk[p]
        hv[p], hv[i] = hv[i], hv[p]
        i = p
    return n + 1


@_njit(cache=True)
def _pop(hk: np.ndarray, hv: np.ndarray, n: int) -> int:
    n -= 1
    hk[0] = hk[n]
    hv[0] = hv[n]
    i = 0
    while True:
        a = 2 * i + 1
        b = a + 1
        m = i
        if a < n and hk[a] < hk[m]:
            m = a
        if b < n and hk[b] < hk[m]:
            m = b
        if m == i:
            break
        hk[m], hk[i] = hk[i], hk[m]
        hv[m], hv[i] = hv[i], hv[m]
        i = m
    return n


@_njit(cache=True)
def heap_maxmin(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, t_indptr: np.ndarray,
                t_indices: np.ndarray, t_data: np.ndarray, cap: np.ndarray) -> tuple[np.ndarray, int]:
    """Max-min rates of the flows (CSR rows) given the same matrix as CSR of its transpose (links)."""
    nf = indptr.size - 1
    nl = t_indptr.size - 1
    rates = np.full(nf, np.inf)
    frozen = np.zeros(nf, dtype=np.bool_)
    rem = cap.astype(np.float64).copy()
    dem = np.zeros(nl)
    cnt = np.zeros(nl, dtype=np.int64)
    for f in range(nf):
        for k in range(indptr[f], indptr[f + 1]):
            dem[indices[k]] += data[k]
            cnt[indices[k]] += 1
    share = np.full(nl, np.inf)
    size = 0
    for lnk in range(nl):
        if cnt[lnk] > 0:
            size += 1
    cap_heap = size + 1
    hk = np.empty(cap_heap)
    hv = np.empty(cap_heap, dtype=np.int64)
    n = 0
    for lnk in range(nl):
        if cnt[lnk] > 0:
            share[lnk] = max(rem[lnk], 0.0) / dem[lnk]
            n = _push(hk, hv, n, share[lnk], lnk)
    pops = 0
    unfrozen = 0
    for f in range(nf):
        if indptr[f + 1] > indptr[f]:
            unfrozen += 1
    while n > 0 and unfrozen > 0:  # links left once every flow is frozen change nothing
        s = hk[0]
        lnk = hv[0]
        n = _pop(hk, hv, n)
        if cnt[lnk] == 0:
            continue
        if s != share[lnk]:  # the share grew since this entry was pushed: re-key lazily
            if n > 0 and share[lnk] >= hk[0]:
                n = _push(hk, hv, n, share[lnk], lnk)
                continue
            s = share[lnk]  # still strictly the smallest: pushing would pop it straight back
        pops += 1
        for k in range(t_indptr[lnk], t_indptr[lnk + 1]):
            f = t_indices[k]
            if frozen[f]:
                continue
            frozen[f] = True
            unfrozen -= 1
            rates[f] = s
            for j in range(indptr[f], indptr[f + 1]):
                m = indices[j]
                a = data[j]
                rem[m] -= a * s
                dem[m] -= a
                cnt[m] -= 1
                if m != lnk:
                    if cnt[m] > 0:
                        ns = max(rem[m], 0.0) / dem[m] if dem[m] > 0 else np.inf
                        share[m] = ns if ns > s else s  # never below the current level (rounding)
                    else:
                        share[m] = np.inf
        cnt[lnk] = 0
        share[lnk] = np.inf
    return rates, pops


@_njit(cache=True)
def solve_rows(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, rows: np.ndarray, cap: np.ndarray,
               mark: np.ndarray, fixed: np.ndarray, rate: np.ndarray) -> tuple[np.ndarray, int]:
    """:func:`heap_maxmin` on rows ``rows`` of a CSR matrix, its links compacted in ascending order.

    Same arithmetic as ``maxmin_rates_rows(*gather(rows), cap)`` (links numbered by ``np.unique``, the
    transpose in row order) without sorting all non-zeros: ``O(nnz + L log L)``. The capacity of a link
    is first lowered by the load of the rows ``fixed`` at rates ``rate`` (rows that keep their rates).
    ``mark`` is scratch of one entry per link, all ``-1`` on entry and again on return.
    """
    nf = rows.size
    ptr = np.zeros(nf + 1, dtype=np.int64)
    for i in range(nf):
        r = rows[i]
        ptr[i + 1] = ptr[i] + indptr[r + 1] - indptr[r]
    nnz = ptr[nf]
    glob = np.empty(nnz, dtype=np.int64)
    dat = np.empty(nnz)
    seen = np.empty(nnz, dtype=np.int64)
    nl = 0
    k = 0
    for i in range(nf):
        r = rows[i]
        for j in range(indptr[r], indptr[r + 1]):
            a = indices[j]
            glob[k] = a
            dat[k] = data[j]
            k += 1
            if mark[a] < 0:
                mark[a] = 0
                seen[nl] = a
                nl += 1
    if nl * 16 > mark.size:  # many links: one scan of the marks is cheaper than sorting them
        links = np.empty(nl, dtype=np.int64)
        q = 0
        for a in range(mark.size):
            if mark[a] >= 0:
                links[q] = a
                q += 1
    else:
        links = np.sort(seen[:nl])
    for i in range(nl):
        mark[links[i]] = i
    local = np.empty(nnz, dtype=np.int64)
    t_indptr = np.zeros(nl + 1, dtype=np.int64)
    for k in range(nnz):
        lk = mark[glob[k]]
        local[k] = lk
        t_indptr[lk + 1] += 1
    for i in range(nl):
        t_indptr[i + 1] += t_indptr[i]
    fill = t_indptr[:-1].copy()
    t_ind = np.empty(nnz, dtype=np.int64)
    t_dat = np.empty(nnz)
    for i in range(nf):
        for k in range(ptr[i], ptr[i + 1]):
            lk = local[k]
            p = fill[lk]
            t_ind[p] = i
            t_dat[p] = dat[k]
            fill[lk] = p + 1
    used = np.zeros(nl)
    for i in range(fixed.size):
        r = fixed[i]
        rr = rate[r]
        for j in range(indptr[r], indptr[r + 1]):
            lk = mark[indices[j]]
            if lk >= 0:
                used[lk] += data[j] * rr
    capl = np.empty(nl)
    for i in range(nl):
        capl[i] = cap[links[i]] - used[i]
        mark[links[i]] = -1
    return heap_maxmin(ptr, local, dat, t_indptr, t_ind, t_dat, capl)


@_njit(cache=True)
def add_load(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, rows: np.ndarray, rate: np.ndarray,
             sign: float, load: np.ndarray, group: np.ndarray, g_load: np.ndarray, inv_cap: np.ndarray) -> float:
    """Add ``sign`` times the load of ``rows`` (CSR weights times ``rate``) to ``load`` and ``g_load``.

    Entries are added in row order (as ``np.add.at`` would). Returns the largest ``load * inv_cap`` over
    the arcs hit after an addition (``sign > 0``; ``-inf`` when none or on a removal; NaN ignored).
    """
    for i in range(rows.size):
        r = rows[i]
        rr = rate[r]
        for j in range(indptr[r], indptr[r + 1]):
            a = indices[j]
            v = data[j] * rr * sign
            load[a] += v
            g = group[a]
            if g >= 0:
                g_load[g] += v
    peak = -np.inf
    if sign < 0:
        return peak
    for i in range(rows.size):
        r = rows[i]
        for j in range(indptr[r], indptr[r + 1]):
            a = indices[j]
            x = load[a] * inv_cap[a]
            if x > peak:
                peak = x
    return peak


@_njit(cache=True)
def split_by_threshold(act: np.ndarray, label: np.ndarray, rate: np.ndarray, lab_thr: np.ndarray,
                       sub: np.ndarray, fixed: np.ndarray) -> tuple[int, int]:
    """Flows of ``act`` whose component has a finite threshold: to ``sub`` if ``rate >= threshold``,
    else to ``fixed`` (both in ``act`` order); returns their numbers."""
    ns = 0
    nk = 0
    for i in range(act.size):
        f = act[i]
        th = lab_thr[label[f]]
        if th < np.inf:
            if rate[f] < th:
                fixed[nk] = f
                nk += 1
            else:
                sub[ns] = f
                ns += 1
    return ns, nk


@_njit(cache=True)
def split_due(idx: np.ndarray, when: np.ndarray, t: float, due: np.ndarray) -> tuple[int, int, float]:
    """Move the entries with ``when <= t`` to ``due`` and compact the others at the front of ``idx`` and
    ``when`` (order kept); returns (due count, kept count, smallest kept ``when`` or ``inf``)."""
    nd = 0
    nk = 0
    m = np.inf
    for i in range(idx.size):
        w = when[i]
        if w <= t:
            due[nd] = idx[i]
            nd += 1
        else:
            idx[nk] = idx[i]
            when[nk] = w
            nk += 1
            if w < m:
                m = w
    return nd, nk, m


@_njit(cache=True)
def drain_flows(idx: np.ndarray, when: float, use_lat: bool, latency: np.ndarray, optical: np.ndarray,
                rem: np.ndarray, rate: np.ndarray, lat_used: np.ndarray, finish: np.ndarray, opt_share: np.ndarray,
                sg: np.ndarray, sg_finish: np.ndarray, sg_left: np.ndarray) -> np.ndarray:
    """Book-keeping of flows ``idx`` drained at ``when``; returns the stage groups they completed (sorted)."""
    done = np.empty(idx.size, dtype=np.int64)
    nd = 0
    for i in range(idx.size):
        f = idx[i]
        rem[f] = 0.0
        rate[f] = 0.0
        lat = latency[f] if use_lat else 0.0
        lat_used[f] = lat
        fin = when + lat
        finish[f] = fin
        opt_share[f] = optical[f]
        g = sg[f]
        if fin > sg_finish[g]:
            sg_finish[g] = fin
        sg_left[g] -= 1
        if sg_left[g] == 0:
            done[nd] = g
            nd += 1
    return np.sort(done[:nd])


@_njit(cache=True)
def _find(parent: np.ndarray, x: int) -> int:
    r = x
    while parent[r] != r:
        r = parent[r]
    while parent[x] != r:  # path compression
        nxt = parent[x]
        parent[x] = r
        x = nxt
    return r


@_njit(cache=True)
def flow_components(indptr: np.ndarray, indices: np.ndarray, n_arcs: int, ea: np.ndarray, eb: np.ndarray
                    ) -> np.ndarray:
    """Connected components of flows (CSR rows) joined by shared arcs and by the flow pairs ``ea``-``eb``.

    Returns a label per flow, numbered ``0..k-1`` in order of each component's first flow.
    """
    nf = indptr.size - 1
    parent = np.arange(nf + n_arcs)
    for f in range(nf):
        for k in range(indptr[f], indptr[f + 1]):
            a = _find(parent, f)
            b = _find(parent, nf + indices[k])
            if a != b:
                parent[b] = a
    for i in range(ea.size):
        a = _find(parent, ea[i])
        b = _find(parent, eb[i])
        if a != b:
            parent[b] = a
    lab = np.full(nf + n_arcs, -1, dtype=np.int64)
    out = np.empty(nf, dtype=np.int64)
    k = 0
    for f in range(nf):
        r = _find(parent, f)
        if lab[r] < 0:
            lab[r] = k
            k += 1
        out[f] = lab[r]
    return out


@_njit(cache=True)
def next_drain(act: np.ndarray, rate: np.ndarray, rem: np.ndarray) -> float:
    """Smallest ``rem / rate`` over the flows ``act`` of positive rate (``inf`` if none)."""
    m = np.inf
    for i in range(act.size):
        f = act[i]
        ra = rate[f]
        if ra > 0:
            x = rem[f] / ra
            if x < m:
                m = x
    return m


@_njit(cache=True, inline="always")
def move_one(r: float, ra: float, dt: float, drain_now: bool, t: float, c: float, eps: float, t_drain: float,
             start_f: float) -> tuple[float, bool]:
    """Bytes one flow moves in ``dt`` (``rem`` ``r``, rate ``ra``) and whether it drains now (then all of
    ``r``): due when ``t + r / ra <= c + eps * (t_drain - start_f)``, ``c`` the drain instant with its
    exact-mode slack. The one place of this arithmetic, inlined into :func:`advance` and the compiled loop's
    ``_advance`` so both move every flow with the same operations in the same order."""
    x = ra * dt
    moved = x if (x < r or x != x) else r
    if drain_now:
        ttd = r / ra if ra > 0 else np.inf
        if t + ttd <= c + eps * (t_drain - start_f):
            return r, True
    return moved, False


@_njit(cache=True, inline="always")
def count_bytes(b: float, on_nvlink: bool, optical_share: float, nv: float, op: float, el: float
                ) -> tuple[float, float, float]:
    """Add the ``b`` bytes one flow moved to the running NVLink / optical / electrical totals (``nv``, ``op``,
    ``el``): all on NVLink inside a server, else split by the flow's optical share. Inlined, like
    :func:`move_one`, into both advance kernels."""
    if on_nvlink:
        return nv + b, op, el
    return nv, op + b * optical_share, el + b * (1.0 - optical_share)


@_njit(cache=True)
def advance(act: np.ndarray, rate: np.ndarray, rem: np.ndarray, t: float, dt: float, drain_now: bool,
            t_drain: float, exact: float, eps: float, start: np.ndarray, mult: np.ndarray, nvlink: np.ndarray,
            optical: np.ndarray, gone: np.ndarray) -> tuple[int, float, float, float]:
    """Move every flow of ``act`` by ``dt`` at its rate; at a drain instant drain the ones due.

    A flow is due when ``t + rem / rate <= t_drain + exact * (t_drain - t) + eps * (t_drain - start)``
    (it then moves all its bytes). Writes the due flows, in ``act`` order, to ``gone`` and returns
    (their number, bytes moved on NVLink, optical and electrical bytes).
    """
    c = t_drain + exact * (t_drain - t)
    nd = 0
    nv = 0.0
    op = 0.0
    el = 0.0
    for i in range(act.size):
        f = act[i]
        r = rem[f]
        moved, due = move_one(r, rate[f], dt, drain_now, t, c, eps, t_drain, start[f])
        if due:
            gone[nd] = f
            nd += 1
        rem[f] = r - moved
        nv, op, el = count_bytes(moved * mult[f], nvlink[f], optical[f], nv, op, el)
    return nd, nv, op, el


@_njit(cache=True)
def column_hashes(t_indptr: np.ndarray, t_indices: np.ndarray, t_bits: np.ndarray) -> np.ndarray:
    """A 64-bit hash of every row of a CSR matrix (its column indices and the bit patterns of its values)."""
    n = t_indptr.size - 1
    out = np.empty(n, dtype=np.uint64)
    for i in range(n):
        h = np.uint64(0x9E3779B97F4A7C15) ^ np.uint64(t_indptr[i + 1] - t_indptr[i])
        for k in range(t_indptr[i], t_indptr[i + 1]):
            h = (h ^ np.uint64(t_indices[k])) * np.uint64(0x100000001B3)
            h = (h ^ t_bits[k]) * np.uint64(0xBF58476D1CE4E5B9)
            h ^= h >> np.uint64(29)
        out[i] = h
    return out


@_njit(cache=True)
def same_rows(t_indptr: np.ndarray, t_indices: np.ndarray, t_data: np.ndarray, order: np.ndarray,
              keys: np.ndarray) -> np.ndarray:
    """Representative of every row: the first row in ``order`` equal to it (candidates share ``keys``)."""
    n = t_indptr.size - 1
    rep = np.arange(n)
    i = 0
    while i < order.size:
        j = i + 1
        while j < order.size and keys[order[j]] == keys[order[i]]:
            j += 1
        for p in range(i + 1, j):  # a run of equal hashes: compare exactly against earlier representatives
            b = order[p]
            for q in range(i, p):
                a = order[q]
                if rep[a] != a:
                    continue
                la = t_indptr[a + 1] - t_indptr[a]
                if la != t_indptr[b + 1] - t_indptr[b]:
                    continue
                eq = True
                for k in range(la):
                    if (t_indices[t_indptr[a] + k] != t_indices[t_indptr[b] + k]
                            or t_data[t_indptr[a] + k] != t_data[t_indptr[b] + k]):
                        eq = False
                        break
                if eq:
                    rep[b] = a
                    break
        i = j
    return rep


__all__ = ["heap_maxmin", "solve_rows", "add_load", "split_by_threshold", "split_due", "drain_flows", "flow_components", "next_drain", "advance", "column_hashes", "same_rows",
           "HAVE_NUMBA"]
