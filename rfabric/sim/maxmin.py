"""Exact max-min fair rates by progressive filling, vectorised over flows and links.

The problem: flows ``f`` with weighted incidence ``a[f, l] >= 0`` (a flow's rate ``r_f`` puts
``a[f, l] * r_f`` on link ``l``: ``a`` is the multiplicity of the flow group times the share of its
route that crosses ``l``) and link capacities ``c_l``. Max-min fairness raises every unfrozen rate
together; a link saturates when ``sum_f a[f, l] r_f = c_l`` and freezes the flows crossing it.

Instead of one "level" per iteration (which collapses with per-flow ECMP: thousands of distinct levels),
each iteration freezes every *locally minimal* link at once. With the link fair share
``s_l = rem_l / sum_{f unfrozen} a[f, l]``, a link is locally minimal when no flow crossing it crosses a
link of smaller share. Shares only grow as flows freeze below them (freezing ``A`` units of demand at
level ``t <= s_m`` gives ``(s_m N - t A) / (N - A) >= s_m``), so a locally minimal link saturates at
exactly its current share in the sequential algorithm too: freezing them all at once is exact, and the
number of iterations is the depth of the bottleneck dependency chain, not the number of levels. Each
iteration is a few sparse mat-vecs and segment minima: ``O(nnz)``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from rfabric.errors import InternalError, InvalidArgumentError
from rfabric.sim._kernels import HAVE_NUMBA, heap_maxmin


def _segment_min(values: np.ndarray, indptr: np.ndarray) -> np.ndarray:
    """Minimum of ``values[indptr[i]:indptr[i+1]]`` per segment (``inf`` for empty segments)."""
    n = indptr.size - 1
    out = np.full(n, np.inf)
    if values.size == 0:
        return out
    nonempty = indptr[1:] > indptr[:-1]
    starts = indptr[:-1][nonempty]
    out[nonempty] = np.minimum.reduceat(values, starts)
    return out


def maxmin_rates(incidence: sp.csr_matrix, capacity_bps: np.ndarray, *, method: str = "auto") -> tuple[np.ndarray, int]:
    """Max-min fair rate of every row of ``incidence`` (flows x links) under ``capacity_bps``.

    Rows with no entries (flows that cross no capacity-limited link) get ``inf``. Returns
    ``(rates, iterations)`` (waves, or bottleneck links popped for the heap).
    ``method``: ``"waves"`` (vectorised numpy, below), ``"heap"`` (:mod:`rfabric.sim._kernels`, numba) or
    ``"auto"`` (the heap when numba is installed). Both are exact and agree to rounding.

    >>> a = sp.csr_matrix(np.array([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 1.0]]))
    >>> r, _ = maxmin_rates(a, np.array([10.0, 6.0, 9.0]))
    >>> r.tolist()
    [3.0, 7.0, 3.0]
    """
    a = sp.csr_matrix(incidence, dtype=np.float64)
    a.sum_duplicates()
    nf, nl = a.shape
    if method not in ("auto", "heap", "waves"):
        raise InvalidArgumentError(f"unknown max-min method {method!r}")
    if method == "heap" or (method == "auto" and HAVE_NUMBA):
        at = a.T.tocsr()
        r, pops = heap_maxmin(a.indptr.astype(np.int64), a.indices.astype(np.int64), a.data, at.indptr.astype(np.int64),
                              at.indices.astype(np.int64), at.data, np.asarray(capacity_bps, dtype=np.float64))
        return r, int(pops)
    rates = np.full(nf, np.inf)
    if nf == 0:
        return rates, 0
    at = a.T.tocsr()  # links x flows
    rem = np.asarray(capacity_bps, dtype=np.float64).copy()
    active = np.diff(a.indptr) > 0
    rates[active] = np.nan
    frozen_rate = np.zeros(nf)
    it = 0
    while active.any():
        it += 1
        act_f = active.astype(np.float64)
        demand = at @ act_f  # sum of unfrozen a per link
        share = np.full(nl, np.inf)
        busy = demand > 0
        share[busy] = np.maximum(rem[busy], 0.0) / demand[busy]
        flow_min = _segment_min(share[a.indices], a.indptr)
        flow_min[~active] = np.inf
        link_min = _segment_min(flow_min[at.indices], at.indptr)
        bottleneck = busy & (share <= link_min)
        hit = (a @ bottleneck.astype(np.float64)) > 0
        freeze = active & hit
        if not freeze.any():  # cannot happen: the link of globally smallest share is always a bottleneck
            raise InternalError("max-min filling made no progress")
        frozen_rate[:] = 0.0
        frozen_rate[freeze] = flow_min[freeze]
        rates[freeze] = flow_min[freeze]
        rem -= at @ frozen_rate
        active &= ~freeze
    return rates, it


def maxmin_rates_rows(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, capacity: np.ndarray, *,
                     method: str = "auto") -> tuple[np.ndarray, int]:
    """:func:`maxmin_rates` on raw CSR arrays, touching only the links the rows use.

    The columns are compacted first, so the cost is ``O(nnz log nnz)`` whatever the number of links
    (the simulator solves small components of a large fabric thousands of times).
    """
    nf = indptr.size - 1
    if nf == 0:
        return np.zeros(0), 0
    links, local = np.unique(indices, return_inverse=True)
    cap = np.asarray(capacity, dtype=np.float64)[links]
    if method == "waves" or (method == "auto" and not HAVE_NUMBA):
        a = sp.csr_matrix((data, local, indptr), shape=(nf, links.size))
        return maxmin_rates(a, cap, method="waves")
    if method not in ("auto", "heap"):
        raise InvalidArgumentError(f"unknown max-min method {method!r}")
    row = np.repeat(np.arange(nf, dtype=np.int64), np.diff(indptr))
    order = np.argsort(local, kind="stable")
    t_indptr = np.zeros(links.size + 1, dtype=np.int64)
    np.cumsum(np.bincount(local, minlength=links.size), out=t_indptr[1:])
    r, pops = heap_maxmin(indptr.astype(np.int64), local.astype(np.int64), data, t_indptr, row[order], data[order], cap)
    return r, int(pops)


__all__ = ["maxmin_rates", "maxmin_rates_rows"]
