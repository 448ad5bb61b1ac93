"""Model B (``model: transit``): traffic may also be relayed through one intermediate node (two circuits).

The exact MILP has ~n^3 path variables and does not scale (see the design notes), so circuit counts come
from structured candidates, each scored by an exact routing LP over the paths that exist in it:

* the hybrid-direct counts (what the ``hybrid`` model picks),
* circulant backbones ``i <-> i +- o`` whose offsets ``o`` are chosen greedily to reach every node within
  two hops (diameter 2 with about ``2 sqrt(n)`` ports), with the ports they leave free filled by the
  hybrid greedy on the remaining demand.

Routing LP for fixed counts ``x``/``z`` (rates in circuits): maximise ``alpha`` with, per directed demand
``k = (s, t)``, ``direct[k] + sum_m relay[k, m] + spill[k] = alpha d[k]``; per directed circuit arc
``u -> v`` the direct and relayed flows on it ``<= x[u, v]``; per node the spill ``+ alpha ext <= E + z``.
The bound reported is the per-node capacity bound (valid with relaying too), so the gap is honest but loose.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from rfabric.errors import InvalidArgumentError
from solver.backends import MipOutcome, highs
from solver.formulation import Formulation, Problem
from solver.heuristics import _fill_upper, _rounds
from solver.options import TIME_LIMIT_S


@dataclass(frozen=True, slots=True, eq=False)
class TransitOutcome:
    x: np.ndarray
    z: np.ndarray
    alpha: float
    bound: float
    termination: str
    message: str
    rows: int
    cols: int
    nonzeros: int


def routing_lp(p: Problem, x: np.ndarray, z: np.ndarray) -> Formulation:
    """The routing LP of counts ``x``/``z`` as a (continuous) :class:`Formulation`."""
    n = p.n
    D = p.demand
    src, dst = np.nonzero(D > 0)
    K = src.size
    dk = D[src, dst]
    adj = np.asarray(x) > 0
    has_direct = adj[src, dst]
    # relay candidates: m with circuits s-m and m-t
    relay = adj[src, :] & adj[:, dst].T
    relay[np.arange(K), src] = False
    relay[np.arange(K), dst] = False
    rk, rm = np.nonzero(relay)
    R = rk.size
    kd = np.flatnonzero(has_direct)
    Kd = kd.size
    # columns: alpha | direct (Kd) | relay (R) | spill (K)
    c_dir, c_rel, c_sp = 1, 1 + Kd, 1 + Kd + R
    ncol = 1 + Kd + R + K
    # arcs u -> v, indexed u * n + v
    arc_dir = src[kd] * n + dst[kd]
    arc_r1 = src[rk] * n + rm
    arc_r2 = rm * n + dst[rk]
    arcs = np.unique(np.concatenate([arc_dir, arc_r1, arc_r2]))
    A_ = arcs.size
    pos = {"dir": np.searchsorted(arcs, arc_dir), "r1": np.searchsorted(arcs, arc_r1),
           "r2": np.searchsorted(arcs, arc_r2)}
    kk = np.arange(K)
    nn = np.arange(n)
    # demand rows (K): direct + relay + spill - d alpha = 0
    rows = [np.zeros(K, dtype=np.int64) + kk, kd, rk, kk]
    cols = [np.zeros(K, dtype=np.int64), c_dir + np.arange(Kd), c_rel + np.arange(R), c_sp + kk]
    vals = [-dk, np.ones(Kd), np.ones(R), np.ones(K)]
    r0 = K
    # arc rows (A_)
    rows += [r0 + pos["dir"], r0 + pos["r1"], r0 + pos["r2"]]
    cols += [c_dir + np.arange(Kd), c_rel + np.arange(R), c_rel + np.arange(R)]
    vals += [np.ones(Kd), np.ones(R), np.ones(R)]
    r1 = r0 + A_
    # spill rows (2n)
    rows += [r1 + src, r1 + n + dst, r1 + nn, r1 + n + nn]
    cols += [c_sp + kk, c_sp + kk, np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)]
    vals += [np.ones(K), np.ones(K), p.ext_out, p.ext_in]
    nrow = r1 + 2 * n
    A = sp.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(nrow, ncol)).tocsr()
    A.sum_duplicates()
    zz = np.asarray(z, dtype=np.float64)
    row_lo = np.concatenate([np.zeros(K), np.full(A_ + 2 * n, -np.inf)])
    row_hi = np.concatenate([np.zeros(K), np.asarray(x, dtype=np.float64).ravel()[arcs], p.eps_out + zz,
                             p.eps_in + zz])
    cost = np.zeros(ncol)
    cost[0] = 1.0
    col_hi = np.full(ncol, np.inf)
    cap = p.alpha_cap()
    col_hi[0] = cap if np.isfinite(cap) else np.inf
    return Formulation(cost=cost, A=A, row_lo=row_lo, row_hi=row_hi, col_lo=np.zeros(ncol), col_hi=col_hi,
                       integer=np.zeros(ncol, dtype=bool),
                       cols={"alpha": slice(0, 1), "direct": slice(c_dir, c_rel), "relay": slice(c_rel, c_sp),
                             "spill": slice(c_sp, ncol)},
                       rows={"demand": slice(0, K), "arc": slice(r0, r1), "spill_out": slice(r1, r1 + n),
                             "spill_in": slice(r1 + n, nrow)},
                       pi=np.zeros(0, dtype=np.int64), pj=np.zeros(0, dtype=np.int64), src=src, dst=dst, n=n)


def transit_alpha(p: Problem, x: np.ndarray, z: np.ndarray | None = None, *, time_limit_s: float = TIME_LIMIT_S) -> float:
    """The alpha counts ``x``/``z`` carry with direct, one-relay and electrical paths (exact LP)."""
    if p.empty:
        return float("inf")
    zz = np.zeros(p.n) if z is None else np.asarray(z)
    form = routing_lp(p, x, zz)
    return _lp_alpha(highs.solve(form, time_limit_s=time_limit_s))


def _lp_alpha(out: MipOutcome) -> float:
    """Alpha from a routing-LP run: interior point without crossover ends "Unknown" with a converged
    primal solution, which is accepted (HiGHS tolerances, ~1e-7 relative)."""
    if out.values is None or out.status in ("infeasible", "error"):
        return 0.0
    return float(max(out.values[0], 0.0))


def diameter2_offsets(n: int, count: int, rng: np.random.Generator, *, attempts: int = 16) -> list[int]:
    """Up to ``count`` circulant offsets in ``1..n//2`` covering every distance in <= 2 hops if they can.

    Randomised greedy (most newly covered distances first, ties in ``rng`` order), restarted up to
    ``attempts`` times; the first full cover wins, else the best partial one.
    """
    best: list[int] = []
    best_cov = -1
    for _ in range(attempts):
        offs, cov = _greedy_offsets(n, count, rng)
        if cov > best_cov:
            best, best_cov = offs, cov
        if cov >= n - 1:
            break
    return best


def _greedy_offsets(n: int, count: int, rng: np.random.Generator) -> tuple[list[int], int]:
    if n < 2 or count < 1:
        return [], 0
    dist = np.arange(1, n)
    chosen: list[int] = []
    covered = np.zeros(n, dtype=bool)
    covered[0] = True
    cands = np.arange(1, n // 2 + 1)
    while len(chosen) < count and len(chosen) < cands.size:
        best, best_gain = -1, -1
        order = rng.permutation(cands)
        for o in order.tolist():
            if o in chosen:
                continue
            s = np.array(chosen + [o])
            one = np.concatenate([s, -s]) % n
            two = (one[:, None] + one[None, :]).ravel() % n
            cov = covered.copy()
            cov[one] = True
            cov[two] = True
            gain = int(cov.sum())
            if gain > best_gain:
                best, best_gain = o, gain
        chosen.append(best)
        s = np.array(chosen)
        one = np.concatenate([s, -s]) % n
        covered[one] = True
        covered[((one[:, None] + one[None, :]).ravel()) % n] = True
        if covered[dist].all():
            break
    return sorted(chosen), int(covered[dist].sum())


def circulant(p: Problem, offsets: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Counts ``i <-> i + o`` for each offset, plus the hybrid greedy on the ports left free."""
    n = p.n
    x = np.zeros((n, n), dtype=np.int64)
    i = np.arange(n)
    for o in offsets:
        j = (i + o) % n
        x[i, j] += 1
        x[j, i] += 1
    free = p.budget.astype(np.int64) - x.sum(axis=1)
    if np.any(free < 0):
        raise InvalidArgumentError("circulant exceeds the port budget")
    S = np.maximum(p.demand, p.demand.T)
    cap = p.alpha_cap()
    target = cap if np.isfinite(cap) else 1.0
    _rounds(np.where(S > 0, target * S, 0.0), free, x)
    z = _fill_upper(p, free, target)
    return x, z


def solve_transit(p: Problem, hybrid: tuple[np.ndarray, np.ndarray], *, seed: int = 0,
                  time_limit_s: float = TIME_LIMIT_S) -> TransitOutcome:
    """Best of the hybrid counts and circulant backbones under one-relay routing."""
    rng = np.random.default_rng(seed)
    cands: list[tuple[str, np.ndarray, np.ndarray]] = [("hybrid", hybrid[0], hybrid[1])]
    bmin = int(p.budget.min()) if p.n else 0
    tried: set[tuple[int, ...]] = set()
    for q in sorted({bmin // 2, bmin // 4} - {0}, reverse=True):
        offs = tuple(diameter2_offsets(p.n, q, rng))
        if offs and offs not in tried:
            tried.add(offs)
            cands.append((f"circulant{list(offs)}", *circulant(p, list(offs))))
    best = None
    size = (0, 0, 0)
    for name, x, z in cands:
        form = routing_lp(p, x, z)
        out = highs.solve(form, time_limit_s=time_limit_s)
        a = _lp_alpha(out)
        if best is None or a > best[0] + 1e-12:
            best = (a, name, x, z)
            size = (form.num_rows, form.num_cols, form.nonzeros)
    assert best is not None
    a, name, x, z = best
    bound = p.alpha_cap()
    term = "optimal" if a >= bound * (1 - 1e-7) else "heuristic"
    return TransitOutcome(x=x, z=z, alpha=a, bound=bound, termination=term,
                          message=f"transit: best candidate {name} of {len(cands)}", rows=size[0], cols=size[1],
                          nonzeros=size[2])
