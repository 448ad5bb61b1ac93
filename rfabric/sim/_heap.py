"""Progressive filling with a heap of links keyed by fair share, compiled with numba when available.

Exact and ``O(nnz log L)``: pop the link of smallest share ``rem / demand``; freeze its unfrozen flows
at that share; lower ``rem`` and ``demand`` of every other link those flows cross and push their new
shares. Shares only grow, so a heap key is a lower bound of its link's share: a popped entry whose
share has grown is pushed back with the new key (lazy re-keying, at most one entry per link). Shares never fall below the current level (see
:mod:`rfabric.sim.maxmin`), so the popped share is the next saturation level.
Measured on this machine (2 cores): a vectorised numpy version needs one pass over all non-zeros per
bottleneck "wave" and took ~0.2 s per solve for 74 k flows with hash ECMP on a 16,384-GPU fat-tree;
this kernel needs a few ms. Without numba the same function runs interpreted (slow, but correct).
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
    while n > 0:
        s = hk[0]
        lnk = hv[0]
        n = _pop(hk, hv, n)
        if cnt[lnk] == 0:
            continue
        if s != share[lnk]:  # the share grew since this entry was pushed: re-key lazily
            n = _push(hk, hv, n, share[lnk], lnk)
            continue
        pops += 1
        for k in range(t_indptr[lnk], t_indptr[lnk + 1]):
            f = t_indices[k]
            if frozen[f]:
                continue
            frozen[f] = True
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


__all__ = ["heap_maxmin", "HAVE_NUMBA"]
