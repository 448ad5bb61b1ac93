"""Numpy heuristics for the circuit-count problem: an exact evaluator of alpha and a greedy that never fails.

The greedy works in *rounds*: each round solves one assignment problem (scipy ``linear_sum_assignment``)
on the residual circuit need of every node pair whose two nodes still have free ports, and adds the
chosen circuits. A permutation touches every node at most twice, so a round is a 2-factor-like layer
and ``max(budget)`` rounds fill every port; ties fall into cycles rather than piling onto low node ids,
which is what makes the result good on uniform (all-to-all) traffic. Several target alphas are tried and
the best evaluated one wins. Leftover ports go to upper-tier circuits (they add electrical capacity).

>>> import numpy as np
>>> from solver.formulation import make_problem
>>> ring = np.roll(np.eye(4), 1, axis=1) * 1e9   # node i sends 1 GB to node i+1
>>> p = make_problem(toy_domain(4, ports=1), ring, np.zeros(4), np.zeros(4))
>>> x, z = greedy(p)                             # 1 port per node, no electrical path: a 4-ring cannot close
>>> float(evaluate_alpha(p, x, z))
0.0
>>> p = make_problem(toy_domain(4, ports=2, host_bps=200e9), ring, np.zeros(4), np.zeros(4))
>>> x, z = greedy(p)                             # 2 ports: the ring closes, one 100G circuit per 200G node
>>> x[0].tolist(), float(evaluate_alpha(p, x, z))
([0, 1, 0, 1], 0.5)
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Callable

import numpy as np
from scipy.optimize import linear_sum_assignment

from solver.formulation import Domain, Problem


def bisect_alpha(ok: Callable[[float], bool], lo: float, hi: float, *, iters: int, rtol: float) -> tuple[float, float]:
    """Bisection on a monotone feasibility test: ``ok(lo)`` holds, ``ok(hi)`` does not; returns the final
    (largest feasible, smallest infeasible) pair after ``iters`` halvings or once within ``rtol``."""
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if ok(mid):
            lo = mid
        else:
            hi = mid
        if hi - lo <= rtol * max(hi, 1e-300):
            break
    return lo, hi

#: alphas already evaluated, per problem (dropped with it) and by a digest of the exact inputs: the planner
#: scores the same counts several times (greedy, objective, realised alpha), each a bisection over ``n x n``
_ALPHA_MEMO: weakref.WeakKeyDictionary[Problem, dict[bytes, float]] = weakref.WeakKeyDictionary()
_ALPHA_MEMO_SIZE = 32


def evaluate_alpha(p: Problem, x: np.ndarray, z: np.ndarray | None = None, *, iters: int = 64) -> float:
    """The largest alpha that circuit counts ``x`` (symmetric) and upper circuits ``z`` carry.

    Exact up to bisection precision (returns a feasible value): node ``i`` must fit
    ``sum_j max(alpha D[i,j] - x[i,j], 0) + alpha ext_out[i] <= E_out[i] + z[i]`` and the same inbound.
    ``inf`` when the problem has no demand. Remembered per problem for the same ``(x, z, iters)``, bit for bit.
    """
    if p.empty:
        return float("inf")
    xf = np.ascontiguousarray(x, dtype=np.float64)
    zz = np.zeros(p.n) if z is None else np.ascontiguousarray(z, dtype=np.float64)
    h = hashlib.blake2b(digest_size=20)
    h.update(repr((xf.shape, zz.shape, iters)).encode())
    h.update(xf.tobytes())
    h.update(zz.tobytes())
    key = h.digest()
    memo = _ALPHA_MEMO.get(p)
    if memo is None:
        memo = _ALPHA_MEMO[p] = {}
    got = memo.get(key)
    if got is None:
        got = _evaluate_alpha(p, xf, zz, iters)
        if len(memo) >= _ALPHA_MEMO_SIZE:
            memo.pop(next(iter(memo)))
        memo[key] = got
    return got


def _evaluate_alpha(p: Problem, xf: np.ndarray, zz: np.ndarray, iters: int) -> float:
    D = p.demand
    cap_out = p.eps_out + zz
    cap_in = p.eps_in + zz

    def ok(a: float) -> bool:
        spill = np.maximum(a * D - xf, 0.0)
        return bool(np.all(spill.sum(axis=1) + a * p.ext_out <= cap_out * (1 + 1e-12))
                    and np.all(spill.sum(axis=0) + a * p.ext_in <= cap_in * (1 + 1e-12)))

    hi = p.alpha_cap()
    if not np.isfinite(hi):
        return float("inf")
    if ok(hi):
        return float(hi)
    if not ok(0.0):
        return 0.0
    return bisect_alpha(ok, 0.0, hi, iters=iters, rtol=1e-12)[0]


def changed_circuits(p: Problem, x: np.ndarray, z: np.ndarray) -> int:
    """Circuits added against the previous counts (0 without a previous assignment)."""
    if p.x_prev is None:
        return 0
    iu = np.triu_indices(p.n, k=1)
    dx = np.maximum(np.asarray(x)[iu] - p.x_prev[iu], 0).sum()
    zp = p.z_prev if p.z_prev is not None else np.zeros(p.n)
    return int(dx + np.maximum(np.asarray(z) - zp, 0).sum())


def objective(p: Problem, x: np.ndarray, z: np.ndarray) -> tuple[float, float, bool]:
    """(objective, alpha, within the change cap) of a candidate."""
    a = evaluate_alpha(p, x, z)
    ch = changed_circuits(p, x, z)
    ok = p.max_changed < 0 or p.x_prev is None or ch <= p.max_changed
    pen = p.penalty * ch if p.x_prev is not None else 0.0
    return a - pen, a, ok


def _rounds(weights: np.ndarray, free: np.ndarray, x: np.ndarray) -> None:
    """Add circuits (in place) round by round where ``weights - x`` is positive and both ends are free."""
    n = weights.shape[0]
    off_diag = ~np.eye(n, dtype=bool)
    for _ in range(int(free.max(initial=0)) + 2):
        live = free > 0
        R = weights - x
        mask = off_diag & live[:, None] & live[None, :] & (R > 0)
        if not mask.any():
            return
        W = np.where(mask, R, 0.0)
        rows, cols = linear_sum_assignment(W, maximize=True)
        gain = W[rows, cols]
        sel = gain > 0
        rows, cols, gain = rows[sel], cols[sel], gain[sel]
        order = np.argsort(-gain, kind="stable")
        added = 0
        done: set[tuple[int, int]] = set()
        for a, b in zip(rows[order].tolist(), cols[order].tolist(), strict=True):
            pair = (min(a, b), max(a, b))
            if pair in done:  # one circuit per pair per round: a 2-cycle must not eat both nodes' ports
                continue
            done.add(pair)
            if free[a] > 0 and free[b] > 0 and weights[a, b] - x[a, b] > 0:
                x[a, b] += 1
                x[b, a] += 1
                free[a] -= 1
                free[b] -= 1
                added += 1
        if not added:
            return


def _fill_upper(p: Problem, free: np.ndarray, alpha: float) -> np.ndarray:
    """Upper-tier circuits from free ports, neediest nodes first, within the upper budget."""
    z = np.zeros(p.n, dtype=np.int64)
    if p.upper <= 0 or not free.any():
        return z
    need = np.maximum(alpha * p.load_out - p.eps_out, alpha * p.load_in - p.eps_in)
    order = np.lexsort((np.arange(p.n), -need))
    give = free[order]
    cum = np.cumsum(give)
    take = np.clip(p.upper - (cum - give), 0, give)
    z[order] = take
    return z


def build(p: Problem, target: float, *, fill: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Counts aimed at carrying ``target * demand`` directly, leftover ports filled."""
    n = p.n
    S = np.maximum(p.demand, p.demand.T)
    x = np.zeros((n, n), dtype=np.int64)
    free = p.budget.astype(np.int64).copy()
    _rounds(target * S, free, x)
    z = _fill_upper(p, free, target)
    free -= z
    if fill and free.any():  # ports nobody above needs: more direct capacity where there is demand
        _rounds(np.where(S > 0, 4.0 * target * S + 1.0, 0.0), free, x)
    return x, z


def greedy(p: Problem) -> tuple[np.ndarray, np.ndarray]:
    """The best of a few greedy constructions (and the previous counts, when given)."""
    best: tuple[float, np.ndarray, np.ndarray] | None = None
    n = p.n
    cands: list[tuple[np.ndarray, np.ndarray]] = [(np.zeros((n, n), dtype=np.int64), np.zeros(n, dtype=np.int64))]
    if p.x_prev is not None:
        zp = p.z_prev if p.z_prev is not None else np.zeros(n, dtype=np.int64)
        cands.append((np.asarray(p.x_prev, dtype=np.int64), np.asarray(zp, dtype=np.int64)))
    cap = p.alpha_cap()
    if p.empty or not np.isfinite(cap) or cap <= 0:
        targets: list[float] = []
    else:
        targets = [cap]
    tried: set[float] = set()
    while targets:
        t = targets.pop(0)
        key = round(t, 9)
        if key in tried or t <= 0:
            continue
        tried.add(key)
        x, z = build(p, t)
        cands.append((x, z))
        if len(tried) == 1:
            a = evaluate_alpha(p, x, z)
            if np.isfinite(a) and a > 0:
                targets += [a * f for f in (1.0, 1.2, 1.5, 2.0, 3.0)]
    for x, z in cands:
        obj, _, ok = objective(p, x, z)
        if ok and (best is None or obj > best[0] + 1e-12):
            best = (obj, x, z)
    assert best is not None  # the empty assignment is always a candidate within any cap
    return best[1], best[2]


def toy_domain(n: int, *, ports: int = 1, ocs: int = 1, eps_bps: float = 0.0, circuit_bps: float = 100e9,
               host_bps: float = 100e9, upper_ports: int = 0) -> Domain:
    """A synthetic domain: ``n`` nodes with ``ports`` ports on each of ``ocs`` OCSes (for tests, benchmarks).

    OCS ``k`` numbers node ``i``'s ports ``i*ports .. i*ports+ports-1``; upper ports follow.
    """
    lower = tuple(tuple(tuple(range(i * ports, (i + 1) * ports)) for i in range(n)) for _ in range(ocs))
    upper = tuple(tuple(range(n * ports, n * ports + upper_ports)) for _ in range(ocs))
    return Domain(name="toy", layer="core", pod=-1, nodes=tuple(f"pod{i}" for i in range(n)),
                  ocs=tuple(f"ocs.core.{k}" for k in range(ocs)), lower_ports=lower, upper_ports=upper,
                  circuit_bps=circuit_bps, eps_out_bps=np.full(n, eps_bps), eps_in_bps=np.full(n, eps_bps),
                  host_bps=np.full(n, host_bps), group_ids=tuple(range(n)))


def node_bound(p: Problem, *, iters: int = 60) -> float:
    """A valid upper bound on alpha from each node alone (exact for uniform all-to-all traffic).

    Node ``i`` with ``B`` ports can cover at most: one unit of its outbound demand per *full* circuit
    (``floor(alpha d_ij)`` of them per pair), one per upper circuit (at most ``min(B, U)``), and the
    fractional parts ``alpha d_ij - floor(alpha d_ij)`` of the pairs that get one more circuit, largest first.
    Whatever is not covered spills onto ``E_out[i]`` (likewise inbound). The largest alpha every node passes
    bounds the MILP; it is much tighter than the LP relaxation when a node has more partners than ports.
    """
    if p.empty:
        return float("inf")
    cap = p.alpha_cap()
    if not np.isfinite(cap):
        return cap
    B = p.budget.astype(np.float64)
    U = float(p.upper)
    zcap = np.minimum(B, U)

    def ok(a: float) -> bool:
        for D, ext, eps in ((p.demand, p.ext_out, p.eps_out), (p.demand.T, p.ext_in, p.eps_in)):
            ad = a * D
            full = np.floor(ad)
            F = full.sum(axis=1)
            whole = np.minimum(B, F + zcap)
            rest = np.maximum(B - whole, 0.0).astype(np.int64)
            frac = -np.sort(-(ad - full), axis=1)
            cum = np.concatenate([np.zeros((p.n, 1)), np.cumsum(frac, axis=1)], axis=1)
            part = cum[np.arange(p.n), np.minimum(rest, p.n)]
            load = ad.sum(axis=1) + a * ext
            if np.any(load - whole - part > eps * (1 + 1e-9) + 1e-9):
                return False
        return True

    if ok(cap):
        return cap
    return bisect_alpha(ok, 0.0, cap, iters=iters, rtol=1e-9)[1]
