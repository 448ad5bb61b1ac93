"""Per-phase solving and reconfiguration-aware planning across the phases of an RL step."""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from rfabric.circuits import Circuit, CircuitAssignment, CircuitSchedule, PhaseDecision, check_assignment
from rfabric.config import to_plain
from rfabric.errors import ConfigError, SolverError
from rfabric.topology import Topology
from rfabric.traffic_matrix import TrafficMatrix
from rfabric.workload import Workload
from solver.backends import MipOutcome
from solver.decompose import Realisation, previous_counts, realise
from solver.direct import plan_direct
from solver.formulation import (
    Domain,
    Problem,
    domain_bytes,
    domain_level,
    domains,
    formulate,
    formulate_ocs,
    make_problem,
    ocs_columns,
    pairs_to_sym,
)
from solver.heuristics import evaluate_alpha, greedy, node_bound, objective
from solver.options import SAFETY_NET_NOTE, TIME_LIMIT_S, SolverOptions, pulp_solver_name
from solver.result import DomainResult, SolveResult, combine_alpha, rel_gap, worst_termination

log = logging.getLogger(__name__)

_TOL = 1e-9


# ------------------------------------------------------------------------------------------------
# Cache


@dataclass(frozen=True, slots=True, eq=False)
class _Entry:
    x: np.ndarray
    z: np.ndarray
    termination: str
    stage: str
    bound: float
    heuristic_alpha: float
    rows: int
    cols: int
    nonzeros: int
    message: str
    alt: tuple[np.ndarray, np.ndarray] | None = None  # the heuristic's counts when the MILP's won
    alpha: float = float("nan")  # alpha of (x, z) when known (saves re-solving the transit routing LP)
    split: tuple[Any, np.ndarray] | None = None  # per-OCS split of (x, z) (sparse Y, dense U: solver.ocs_split)


@dataclass
class SolveCache:
    """Solved circuit counts by a signature of the (quantised, normalised) problem; LRU, explicit object.

    Demands are normalised by their own busiest node, so a phase that repeats with the same pattern (every
    training step, every weight sync) hits even when its byte counts drift within ``quantise``.
    """

    max_entries: int = 256
    hits: int = 0
    misses: int = 0
    _store: OrderedDict[str, _Entry] = field(default_factory=OrderedDict)

    def get(self, key: str) -> _Entry | None:
        e = self._store.get(key)
        if e is None:
            self.misses += 1
            return None
        self._store.move_to_end(key)
        self.hits += 1
        return e

    def put(self, key: str, entry: _Entry) -> None:
        self._store[key] = entry
        self._store.move_to_end(key)
        while len(self._store) > self.max_entries:
            self._store.popitem(last=False)

    def __len__(self) -> int:
        return len(self._store)


def signature(p: Problem, options: SolverOptions) -> str:
    """Hash of a domain problem, quantised to ``options.quantise`` of its largest demand."""
    h = hashlib.sha256()
    d = p.domain
    h.update(repr((d.name, d.ocs, d.lower_ports, d.upper_ports, d.circuit_bps)).encode())
    big = max(float(p.demand.max(initial=0.0)), float(p.ext_out.max(initial=0.0)), float(p.ext_in.max(initial=0.0)))
    step = options.quantise * big if options.quantise > 0 and big > 0 else 0.0
    for arr in (p.demand, p.ext_out, p.ext_in):
        q = np.rint(arr / step).astype(np.int64) if step > 0 else arr
        h.update(np.ascontiguousarray(q).tobytes())
    for arr in (p.eps_out, p.eps_in, p.budget):
        h.update(np.ascontiguousarray(arr).tobytes())
    track = p.x_prev is not None and (p.penalty > 0 or p.max_changed >= 0)
    if track:
        h.update(np.ascontiguousarray(p.x_prev).tobytes())
        h.update(np.ascontiguousarray(p.z_prev if p.z_prev is not None else np.zeros(p.n)).tobytes())
    opts = (options.backend, options.pulp_solver, options.model, options.mip_gap, options.node_limit,
            options.reconfig_penalty if track else 0.0, options.max_changed if track else -1, options.min_alpha,
            options.time_limit_s, options.seed, options.ocs_max_columns)
    h.update(repr(opts).encode())
    return h.hexdigest()


# ------------------------------------------------------------------------------------------------
# One domain


def _mip(form: Any, start: np.ndarray | None, options: SolverOptions, seed: int) -> MipOutcome:
    if options.backend == "highs":
        from solver.backends import highs

        return highs.solve(form, start=start, time_limit_s=options.time_limit_s, mip_gap=options.mip_gap,
                           node_limit=options.node_limit, seed=seed, threads=options.threads)
    from solver.backends import pulp as pulp_backend

    return pulp_backend.solve(form, solver_name=pulp_solver_name(options), start=start,
                              time_limit_s=options.time_limit_s, mip_gap=options.mip_gap, threads=options.threads,
                              node_limit=options.node_limit)


def _exact_net(options: SolverOptions) -> str:
    log.warning("the exact realisation step was stopped by the wall-clock safety net (solver.time_limit_s = %g s): "
                "the circuits may differ between runs", options.time_limit_s)
    return (f"the exact realisation step stopped by the {SAFETY_NET_NOTE} (solver.time_limit_s = "
            f"{options.time_limit_s:g} s): may differ between runs")


def _net(out: MipOutcome, options: SolverOptions, what: str) -> str:
    """The note a result carries when the wall-clock safety net stopped ``what`` ("" otherwise)."""
    if not out.timed_out:
        return ""
    log.warning("%s stopped by the wall-clock safety net (solver.time_limit_s = %g s): the result may differ "
                "between runs", what, options.time_limit_s)
    return f"{what} stopped by the {SAFETY_NET_NOTE} (solver.time_limit_s = {options.time_limit_s:g} s): may differ between runs"


def _uncarried(p: Problem) -> str:
    """Why a positive alpha is impossible: nodes with load but neither ports nor electrical capacity."""
    bad = []
    for load, eps in ((p.load_out, p.eps_out), (p.load_in, p.eps_in)):
        dead = (load > 0) & (eps + p.budget <= 0)
        bad += [p.domain.nodes[i] for i in np.flatnonzero(dead).tolist()]
    names = ", ".join(sorted(set(bad))[:6]) or "some nodes"
    return f"traffic of {names} has neither OCS ports nor an always-on electrical path in domain {p.domain.name}"


def within_ports(p: Problem, x: np.ndarray, z: np.ndarray) -> bool:
    """Whether counts respect every node's ports and the upper budget (a solver's values are checked)."""
    x = np.asarray(x)
    z = np.asarray(z)
    return bool(x.min(initial=0) >= 0 and z.min(initial=0) >= 0 and np.all(x.sum(axis=1) + z <= p.budget)
                and int(z.sum()) <= max(p.upper, 0))


def _counts(p: Problem, options: SolverOptions, seed: int) -> _Entry:
    """Circuit counts for one domain problem: heuristic, then the MILP (unless greedy).

    ``bound`` is always a valid upper bound on the objective: the node bound, tightened only by the MILP's
    own dual bound (never by its incumbent).
    """
    if options.model == "transit":
        from solver.transit import solve_transit

        hyb = _counts(p, replace(options, model="hybrid"), seed)
        tr = solve_transit(p, (hyb.x, hyb.z), seed=seed, time_limit_s=options.time_limit_s)
        return _Entry(tr.x, tr.z, tr.termination, "transit", tr.bound, hyb.heuristic_alpha, tr.rows, tr.cols,
                      tr.nonzeros, tr.message, alpha=tr.alpha)
    nb = node_bound(p)
    xh, zh = greedy(p)
    obj_h, a_h, _ = objective(p, xh, zh)
    best_x, best_z, best_obj, stage = xh, zh, obj_h, "heuristic"
    rows = cols = nnz = 0
    message = ""
    bound = nb
    if p.min_alpha > 0 and nb < p.min_alpha * (1 - 1e-9):
        return _Entry(xh, zh, "infeasible", stage, nb, a_h, 0, 0, 0,
                      f"alpha <= {nb:.4g} (proven bound) < min_alpha {p.min_alpha:g}")
    if nb <= 0:
        return _Entry(xh, zh, "infeasible", stage, 0.0, a_h, 0, 0, 0, _uncarried(p))
    if obj_h >= nb * (1 - 1e-7):
        return _Entry(xh, zh, "optimal", stage, nb, a_h, 0, 0, 0, "heuristic meets the proven bound")
    if options.backend == "greedy":
        note = (f"heuristic alpha {a_h:.4g} is below min_alpha {p.min_alpha:g} (not proven infeasible: use a "
                "MILP backend)") if a_h < p.min_alpha else ""
        return _Entry(xh, zh, "heuristic", stage, nb, a_h, 0, 0, 0, note)
    form = formulate(p, nb)
    rows, cols, nnz = form.num_rows, form.num_cols, form.nonzeros
    start = None
    if a_h >= p.min_alpha:
        start = form.vector(max(a_h * (1 - 1e-9), p.min_alpha), xh, zh, demand=p.demand)
    out = _mip(form, start, options, seed)
    termination = out.status
    message = out.message
    net = _net(out, options, "the MILP")
    if out.status == "infeasible" and start is not None:  # the MIP start is a feasible point: not a proof
        termination = "limit"
        message = f"solver reported infeasible although the heuristic's start is feasible ({out.message})"
    if termination == "limit":
        if start is not None:
            termination = "feasible"
            message = f"MILP stopped without a better solution ({message}); returning the heuristic"
        else:
            termination = "error"
            message = (f"MILP stopped without a solution ({message}); the heuristic's alpha {a_h:.4g} is below "
                       f"min_alpha {p.min_alpha:g} (not proven infeasible)")
    if out.values is not None:
        xv = out.values[form.cols["x"]]
        zv = np.rint(out.values[form.cols["z"]]).astype(np.int64)
        xm = pairs_to_sym(xv, form.pi, form.pj, p.n)
        zm = np.maximum(zv, 0)
        obj_m, _, ok = objective(p, xm, zm)
        if ok and within_ports(p, xm, zm) and obj_m > best_obj + 1e-12:
            best_x, best_z, best_obj, stage = xm, zm, obj_m, "milp"
    if termination in ("optimal", "feasible") and math.isfinite(out.bound):
        bound = min(nb, out.bound)
    if termination == "error":
        message = f"MILP failed ({message}); returning the heuristic"
    elif termination == "infeasible":
        message = f"no assignment reaches min_alpha {p.min_alpha:g} (solver: {out.message}); returning the heuristic"
    if termination == "optimal" and best_obj <= 1e-12 and p.penalty == 0:
        termination = "infeasible"
        message = ("no assignment carries this traffic concurrently (best alpha 0): some node pairs with demand "
                   "can get neither a circuit nor an electrical path" + ("; try model: transit"
                                                                         if not np.any(p.eps_out) else ""))
    alt = (xh, zh) if stage == "milp" else None
    if net:
        message = f"{message}; {net}" if message else net
    return _Entry(best_x, best_z, termination, stage, bound, a_h, rows, cols, nnz, message, alt)


def _counts_ocs(p: Problem, options: SolverOptions, seed: int, bound: float,
                starts: list[Realisation]) -> tuple[MipOutcome, Any | None]:
    """The per-OCS MILP (:func:`solver.formulation.formulate_ocs`), warm-started with the best realisation.

    Not started (status ``limit``, no values, no formulation) when it would have more than
    ``options.ocs_max_columns`` integer per-OCS columns: the deterministic bound on its work.
    """
    cols = ocs_columns(p)
    if 0 < options.ocs_max_columns < cols:
        return MipOutcome(status="limit", values=None, objective=float("nan"), bound=float("nan"), wall_time_s=0.0,
                          message=f"not started: {cols} per-OCS columns > solver.ocs_max_columns "
                          f"{options.ocs_max_columns}"), None
    form = formulate_ocs(p, bound if math.isfinite(bound) else None)
    best = None
    for r in starts:
        if r.split is None:
            continue
        o, a, ok = objective(p, r.x, r.z)
        if ok and a >= p.min_alpha and (best is None or o > best[0]):
            best = (o, a, r)
    start = None
    if best is not None:
        cap = float(form.col_hi[0]) if math.isfinite(form.col_hi[0]) else best[1]
        start = form.vector(min(max(best[1] * (1 - 1e-9), p.min_alpha), cap), best[2].x, best[2].z,
                            demand=p.demand, split=best[2].split)
    return _mip(form, start, options, seed), form


def alpha_of(p: Problem, x: np.ndarray, z: np.ndarray | None, model: str = "hybrid", *,
             time_limit_s: float = TIME_LIMIT_S) -> float:
    """Alpha of counts ``x``/``z`` under the routing of ``model`` (hybrid: direct + spill; transit: + 1 relay,
    an exact routing LP run under ``time_limit_s``)."""
    if model == "transit":
        from solver.transit import transit_alpha

        return transit_alpha(p, x, z, time_limit_s=time_limit_s)
    return evaluate_alpha(p, x, z)


def cached_counts(p: Problem, options: SolverOptions, cache: SolveCache | None, seed: int) -> _Entry:
    key = signature(p, options) if cache is not None else ""
    entry = cache.get(key) if cache is not None else None
    if entry is None:
        entry = _counts(p, options, seed)
        if cache is not None:
            cache.put(key, entry)
    return entry


def solve_domain(p: Problem, options: SolverOptions, previous: CircuitAssignment | None = None, *,
                 cache: SolveCache | None = None, seed: int = 0,
                 hint: tuple[np.ndarray, np.ndarray, str] | None = None) -> tuple[DomainResult, tuple[Circuit, ...]]:
    """Solve one domain problem and realise it on OCS ports.

    A domain without traffic keeps its circuits, or, given a ``hint`` (counts of a later phase and its
    name), takes those: re-pointing an idle layer costs nothing now and saves a switch later.
    """
    t = time.perf_counter()
    dom = p.domain
    prev_here = _restrict(previous, dom)
    if p.empty:  # nothing crosses this layer: keep the circuits, or pre-position them for a later phase
        if hint is not None:
            r = realise(dom, hint[0], hint[1], prev_here, time_limit_s=options.time_limit_s,
                        node_limit=options.node_limit,
                        max_columns=options.ocs_max_columns)
            stage, msg = "lookahead", f"idle layer: circuits pre-positioned for phase '{hint[2]}'"
        elif prev_here is not None:
            r = realise(dom, *previous_counts(dom, prev_here), prev_here, time_limit_s=options.time_limit_s,
                        node_limit=options.node_limit,
                        max_columns=options.ocs_max_columns)
            stage, msg = "previous", "no traffic crosses this layer"
        else:
            r = None
            stage, msg = "none", "no traffic crosses this layer"
        if r is not None and r.timed_out:
            msg += "; " + _exact_net(options)
        circuits = r.circuits if r else ()
        xr = r.x if r else np.zeros((dom.n, dom.n), dtype=np.int64)
        zr = r.z if r else np.zeros(dom.n, dtype=np.int64)
        changed = len(set(circuits) - set(prev_here.circuits if prev_here else ()))
        return DomainResult(domain=dom.name, nodes=dom.nodes, termination="optimal", stage=stage,
                            alpha=float("nan"), alpha_model=float("nan"), bound=float("nan"), t0_s=0.0, x=xr, z=zr,
                            circuits=len(circuits), changed=changed, kept=r.kept if r else 0, dropped=0,
                            wall_time_s=time.perf_counter() - t, message=msg), circuits
    if dom.direct:  # no electrical path: engineered topology with host forwarding (solver.direct)
        x, circuits, msg = plan_direct(p)
        changed = len(set(circuits) - set(prev_here.circuits)) if prev_here is not None else len(circuits)
        return DomainResult(domain=dom.name, nodes=dom.nodes, termination="heuristic", stage="direct",
                            alpha=float("nan"), alpha_model=float("nan"), bound=float("nan"), t0_s=p.t0_s, x=x,
                            z=np.zeros(dom.n, dtype=np.int64), circuits=len(circuits), changed=changed,
                            kept=len(circuits) - changed, dropped=0, wall_time_s=time.perf_counter() - t,
                            message=msg), circuits
    key = signature(p, options) if cache is not None else ""
    entry = cache.get(key) if cache is not None else None
    cached = entry is not None
    if entry is None:
        entry = _counts(p, options, seed)
        if cache is not None:
            cache.put(key, entry)
    tl = options.time_limit_s
    nl, mc = options.node_limit, options.ocs_max_columns  # the exact step's deterministic work limits
    hybrid = options.model == "hybrid"

    def score(r: Realisation) -> float:
        return objective(p, r.x, r.z)[0] if hybrid else alpha_of(p, r.x, r.z, options.model, time_limit_s=tl)

    r = realise(dom, entry.x, entry.z, prev_here, weight=p.demand, time_limit_s=tl, split=entry.split, node_limit=nl, max_columns=mc)
    alpha_model = entry.alpha if np.isfinite(entry.alpha) else alpha_of(p, entry.x, entry.z, options.model, time_limit_s=tl)
    stage, termination, bound, msg = entry.stage, entry.termination, entry.bound, entry.message
    if r.dropped:  # the counts cannot be built port by port as requested: optimise over what can be built
        cands: list[tuple[Realisation, str]] = [(r, stage)]
        if entry.alt is not None:
            cands.append((realise(dom, entry.alt[0], entry.alt[1], prev_here, weight=p.demand, time_limit_s=tl, node_limit=nl, max_columns=mc),
                          "heuristic"))
        ocs_status, ocs_obj, ocs_net = "", float("nan"), ""
        if options.backend != "greedy" and hybrid and termination not in ("infeasible",):
            out, form = _counts_ocs(p, options, seed, bound, [c for c, _ in cands])
            ocs_status, ocs_obj = out.status, out.objective
            ocs_net = _net(out, options, "the per-OCS MILP")
            if out.values is not None and form is not None:
                xo = pairs_to_sym(out.values[form.cols["x"]], form.pi, form.pj, p.n)
                zo = np.maximum(np.rint(out.values[form.cols["z"]]).astype(np.int64), 0)
                r3 = realise(dom, xo, zo, prev_here, weight=p.demand, time_limit_s=tl, split=form.split_of(out.values),
                             node_limit=nl, max_columns=mc)
                cands.append((r3, "milp_ocs"))
            if out.status in ("optimal", "feasible") and math.isfinite(out.bound):
                bound = min(bound, out.bound)
        scored = [(score(c), -c.dropped, -i) for i, (c, _) in enumerate(cands)]  # ties: fewest dropped, first
        best_obj, _, neg_i = max(scored)
        best_i = -neg_i
        r, stage = cands[best_i]
        if ocs_status == "optimal" and best_obj >= ocs_obj - 1e-9:
            termination = "optimal"
        elif options.backend == "greedy" or termination == "heuristic":
            termination = "heuristic"
        elif termination != "infeasible":
            termination = "feasible"
        note = (f"the counts of stage '{entry.stage}' could not all be realised on OCS ports "
                f"({cands[0][0].reason or 'per-OCS port limits'})")
        if stage == "milp_ocs":
            note += f"; re-solved with per-OCS circuits ({ocs_status})"
        elif ocs_status:
            note += f"; the per-OCS MILP ({ocs_status}) found nothing better"
        if ocs_net:
            note += f"; {ocs_net}"
        msg = (msg + "; " if msg else "") + note
        if r.dropped:
            msg += f"; {r.dropped} circuit(s) dropped, {r.refilled} re-placed: {r.reason}"
        if cache is not None:  # a hit realises the chosen counts directly
            cache.put(key, replace(entry, x=r.x, z=r.z, termination=termination, stage=stage, bound=bound,
                                   message=msg, alt=None, alpha=float("nan"), split=r.split))
        alpha_model = alpha_of(p, r.x, r.z, options.model, time_limit_s=tl)
    alpha = alpha_model if not r.dropped and np.array_equal(r.x, entry.x) and np.array_equal(r.z, entry.z) \
        else alpha_of(p, r.x, r.z, options.model, time_limit_s=tl)
    if hybrid and termination == "optimal" and math.isfinite(bound):
        obj_r = objective(p, r.x, r.z)[0]
        if obj_r < bound - options.mip_gap * abs(bound) - 1e-5:  # never claim more than what was built
            termination = "feasible"
    changed = len(set(r.circuits) - set(prev_here.circuits)) if prev_here is not None else len(r.circuits)
    if r.timed_out and SAFETY_NET_NOTE not in msg:
        msg = (msg + "; " if msg else "") + _exact_net(options)
    if cached:
        msg = (msg + "; " if msg else "") + "cache hit"
    return DomainResult(domain=dom.name, nodes=dom.nodes, termination=termination, stage=stage, alpha=alpha,
                        alpha_model=alpha_model, bound=bound, t0_s=p.t0_s, x=r.x, z=r.z,
                        circuits=len(r.circuits), changed=changed, kept=r.kept, dropped=r.dropped, rows=entry.rows,
                        cols=entry.cols, nonzeros=entry.nonzeros, wall_time_s=time.perf_counter() - t,
                        heuristic_alpha=entry.heuristic_alpha, cached=cached, message=msg,
                        realisation=r.method), r.circuits


def direct_counts(topology: Topology, dom: Domain, circuits: tuple[Circuit, ...]) -> np.ndarray:
    """Symmetric node-pair circuit counts of ``circuits`` in a (large) direct-connect domain."""
    idx = {name: i for i, name in enumerate(dom.nodes)}
    x = np.zeros((dom.n, dom.n), dtype=np.int64)
    ends = CircuitAssignment(circuits=tuple(circuits)).endpoints(topology)
    if ends:
        a = np.fromiter((idx[u] for u, _ in ends), dtype=np.int64, count=len(ends))
        b = np.fromiter((idx[v] for _, v in ends), dtype=np.int64, count=len(ends))
        np.add.at(x, (a, b), 1)
        np.add.at(x, (b, a), 1)
    return x


def _restrict(assignment: CircuitAssignment | None, dom: Domain) -> CircuitAssignment | None:
    if assignment is None:
        return None
    names = set(dom.ocs)
    return CircuitAssignment.of(c for c in assignment.circuits if c.ocs in names)


# ------------------------------------------------------------------------------------------------
# One phase


def problems(topology: Topology, traffic: TrafficMatrix, options: SolverOptions,
             previous: CircuitAssignment | None = None) -> list[Problem]:
    """The normalised problem of every OCS domain of ``topology`` for ``traffic``."""
    out = []
    agg: dict[str, Any] = {}  # one aggregation per level for all domains
    for dom in domains(topology):
        level = domain_level(dom)
        if level not in agg:
            agg[level] = traffic.aggregate(topology, level)
        inner, eo, ei = domain_bytes(topology, dom, traffic, agg[level])
        p = make_problem(dom, inner, eo, ei, penalty=options.reconfig_penalty, max_changed=options.max_changed,
                         min_alpha=options.min_alpha)
        if previous is not None:
            p = p.with_previous(*previous_counts(dom, previous))
        out.append(p)
    return out


def _combine(topology: Topology, parts: list[tuple[DomainResult, tuple[Circuit, ...]]], backend: str, t0: float,
             extra: str = "") -> SolveResult:
    circuits = [c for _, cs in parts for c in cs]
    assignment = CircuitAssignment.of(circuits)
    check_assignment(topology, assignment)
    live = [d for d, _ in parts if d.t0_s > 0]
    alpha = combine_alpha([d.t0_s for d in live], [d.alpha for d in live])
    bound = combine_alpha([d.t0_s for d in live], [d.bound for d in live])
    term = worst_termination([d.termination for d, _ in parts])
    stages = {d.stage for d, _ in parts}
    stage = next((st for st in ("milp_ocs", "milp", "transit") if st in stages), "heuristic" if live else "none")
    msgs = [f"{d.domain}: {d.message}" for d, _ in parts if d.message and (d.t0_s > 0 or d.stage == "lookahead")]
    if extra:
        msgs.insert(0, extra)
    return SolveResult(assignment=assignment, termination=term, objective=alpha, bound=bound,
                       wall_time_s=time.perf_counter() - t0, backend=backend, stage=stage,
                       domains=tuple(d for d, _ in parts), message="; ".join(msgs))


def solve_phase(topology: Topology, traffic: TrafficMatrix, options: SolverOptions,
                previous: CircuitAssignment | None = None, *, cache: SolveCache | None = None,
                seed: int = 0, hints: dict[str, tuple[np.ndarray, np.ndarray, str]] | None = None,
                direct_demand: dict[str, np.ndarray] | None = None) -> SolveResult:
    """Circuits for one phase's traffic over every OCS of ``topology``.

    Each domain (core layer, each pod's aggregation layer) is solved on its own (``layers: sequential``):
    heuristic first, then the MILP of :mod:`solver.formulation` with the heuristic as MIP start, then the
    port-level realisation (:func:`solver.decompose.realise`: fast path, exact per-OCS step when it falls
    short), which keeps as many ``previous`` circuits as the counts allow. When the MILP's counts cannot
    be realised on the OCSes' ports, the domain is re-solved over per-OCS circuits
    (:func:`solver.formulation.formulate_ocs`, stage ``milp_ocs``) and the best *realised* candidate wins;
    alpha, termination and gap always describe the realised circuits. The result's assignment always
    passes :func:`rfabric.circuits.check_assignment`.
    """
    t0 = time.perf_counter()
    backend = options.backend if options.backend != "pulp" else f"pulp:{pulp_solver_name(options)}"
    if not topology.has_ocs:
        return SolveResult(assignment=CircuitAssignment(), termination="optimal", objective=float("nan"),
                           bound=float("nan"), wall_time_s=time.perf_counter() - t0, backend=backend, stage="none",
                           message="topology has no OCS")
    s = options.mixed_seed(seed)
    hints = hints or {}
    probs = problems(topology, traffic, options, previous)
    if direct_demand:  # direct-connect domains engineered for another demand (the step's per-phase maxima)
        probs = [replace(p, demand=direct_demand[p.domain.name]) if p.domain.name in direct_demand else p
                 for p in probs]
    parts = [solve_domain(p, options, previous, cache=cache, seed=s, hint=hints.get(p.domain.name))
             for p in probs]
    return _combine(topology, parts, backend, t0)


def direct_demand(topology: Topology, workload: Workload, options: SolverOptions) -> dict[str, np.ndarray]:
    """Per direct-connect domain: the elementwise maximum over phases of each phase's normalised demand.

    A phase's demand is normalised to circuits at its own line-rate time (``alpha = 1``), so the maximum
    asks, per server pair, for the circuits the most demanding phase needs to run at line rate: a short
    blocking phase (weight sync) weighs as much as a long one, not in proportion to its bytes.
    """
    if not any(d.direct for d in domains(topology)):
        return {}
    out: dict[str, np.ndarray] = {}
    for ph in workload.phases:
        for p in problems(topology, ph.traffic, options):
            if p.domain.direct and not p.empty:
                name = p.domain.name
                out[name] = np.maximum(out[name], p.demand) if name in out else p.demand
    return out


def evaluate(topology: Topology, traffic: TrafficMatrix, assignment: CircuitAssignment,
             options: SolverOptions | None = None) -> SolveResult:
    """The alpha ``assignment`` gives ``traffic`` (no solving; ``stage`` "previous")."""
    t0 = time.perf_counter()
    opts = options or SolverOptions()
    parts = []
    for p in problems(topology, traffic, opts):
        dom = p.domain
        mine = _restrict(assignment, dom)
        cs = mine.circuits if mine else ()
        if dom.direct:  # multi-hop (host forwarding): alpha not modelled; counts without the per-OCS split
            x = direct_counts(topology, dom, cs)
            z = np.zeros(dom.n, dtype=np.int64)
            a = float("nan")
        else:
            x, z = previous_counts(dom, assignment)
            a = alpha_of(p, x, z, opts.model, time_limit_s=opts.time_limit_s) if not p.empty else float("nan")
        parts.append((DomainResult(domain=dom.name, nodes=dom.nodes, termination="optimal", stage="previous",
                                   alpha=a, alpha_model=a, bound=float("nan"), t0_s=p.t0_s, x=x, z=z,
                                   circuits=len(cs), changed=0, kept=len(cs), dropped=0), cs))
    res = _combine(topology, parts, "evaluate", t0)
    return replace(res, stage="previous", termination="optimal")


def phase_time_s(result: SolveResult) -> float:
    """Completion time of the phase's traffic in the solver's fluid view (slowest domain)."""
    times = [d.time_s for d in result.domains if d.t0_s > 0]
    return max(times) if times else 0.0


# ------------------------------------------------------------------------------------------------
# A whole step


def _decision(name: str, action: str, res: SolveResult, changed: int, reason: str, solve_time: float,
              backend: str, termination: str | None = None) -> PhaseDecision:
    return PhaseDecision(phase=name, action=action, circuits=len(res.assignment), changed=changed, reason=reason,
                         alpha=res.objective, bound=res.bound, gap=rel_gap(res.objective, res.bound),
                         solve_time_s=solve_time, backend=backend, termination=termination or res.termination)


def plan_schedule(topology: Topology, workload: Workload, options: SolverOptions, *, seed: int,
                  fixed: CircuitAssignment | None = None, cache: SolveCache | None = None) -> CircuitSchedule:
    """One circuit assignment per phase step of ``workload`` (aligned with ``workload.phases``).

    * No OCS: empty assignments, action ``none``.
    * Not reconfigurable (``static_ocs``), ``reconfig: never`` or a ``fixed`` assignment: ONE assignment
      for all phases -- ``fixed``, or solved on the whole step's traffic weighted by phase repeats --
      action ``static``. A ``static_ocs`` whose ``circuit_template`` is a named template needs the caller
      to pass that template as ``fixed`` (this package does not import ``topologies``).
    * Otherwise phase by phase, starting from the previous phase's circuits (``reconfig``):
      ``always`` takes the new solution; ``auto`` takes it when the idle window before the phase (the
      previous phase's ``compute_after_s`` + this one's ``compute_before_s``) covers
      ``topology.ocs_reconfig_s``, or when the fluid-model time saved over the phase's repeats exceeds the
      switching delay left exposed; else the circuits are kept. Every decision is recorded with its
      reason; a "kept" decision is labelled ``feasible`` with the solver's bound for the phase.
    * Wrap-around: steps repeat, so the transition from the last phase to the first phase of the next
      step is planned too (:func:`_wrap_around`): phase 0 is planned again from the last phase's circuits
      until the schedule is periodic; ``meta["wrap_around"]`` records the passes and whether it closed.
      Decision 0 describes that transition (the first step's initial configuration is ``assignments[0]``
      set up before the job, or the last phase's circuits if the caller starts every step from them).
    """
    t_all = time.perf_counter()
    n = len(workload.phases)
    backend = options.backend if options.backend != "pulp" else f"pulp:{pulp_solver_name(options)}"
    cache = cache if cache is not None else (SolveCache() if options.cache else None)
    meta: dict[str, Any] = {"options": to_plain(options), "seed": seed, "layers": options.layers,
                            "model": options.model}
    if not topology.has_ocs:
        empty = CircuitAssignment()
        nothing = tuple(PhaseDecision(phase=p.name, action="none", circuits=0, changed=0,
                                      reason="topology has no OCS") for p in workload.phases)
        return CircuitSchedule(assignments=(empty,) * n, decisions=nothing, meta=meta)
    template = topology.circuit_template
    if fixed is None and not topology.reconfigurable and template != "solver":
        raise SolverError(f"static OCS topology '{topology.name}' uses circuit_template '{template}': pass "
                          "that template's assignment as plan_schedule(..., fixed=...)")
    if fixed is not None or not topology.reconfigurable or options.reconfig == "never":
        return _plan_static(topology, workload, options, seed=seed, fixed=fixed, cache=cache, meta=meta,
                            backend=backend, t_all=t_all)
    rs = topology.ocs_reconfig_s
    s = options.mixed_seed(seed)
    probs = [problems(topology, ph.traffic, options) for ph in workload.phases]
    phases = workload.phases

    def step(i: int, prev: CircuitAssignment | None) -> tuple[CircuitAssignment, PhaseDecision]:
        """Plan phase ``i`` starting from ``prev`` (the circuits in place when it begins)."""
        ph = phases[i]
        tr = ph.traffic
        hints: dict[str, tuple[np.ndarray, np.ndarray, str]] = {}
        for d, q in enumerate(probs[i]):
            if not q.empty:
                continue
            for j in [*range(i + 1, n), *range(0, i)]:  # the next phase (cyclically) that uses this layer
                if not probs[j][d].empty:
                    e = cached_counts(probs[j][d], options, cache, s)
                    hints[q.domain.name] = (e.x, e.z, phases[j].name)
                    break
        res = solve_phase(topology, tr, options, previous=prev, cache=cache, seed=seed, hints=hints)
        st = res.wall_time_s
        bound = res.bound
        if prev is None:
            chosen, action = res, "reconfigured"
            changed = len(res.assignment)
            reason = "initial configuration (set before the job starts)"
        else:
            removed, added = prev.changed(res.assignment)
            changed = len(added)
            window = phases[i - 1].compute_after_s + ph.compute_before_s  # i - 1 = -1: the last phase
            idle_ocs = {o for q in probs[i] if q.empty for o in q.domain.ocs}
            # the alternative to re-pointing: keep the busy layers, still pre-position the idle ones
            alt = CircuitAssignment.of([c for c in prev.circuits if c.ocs not in idle_ocs]
                                       + [c for c in res.assignment.circuits if c.ocs in idle_ocs])
            if changed == 0 and not removed:
                chosen, action, reason = res, "kept", "the solver's circuits equal the current ones"
            elif options.reconfig == "always":
                chosen, action, reason = res, "reconfigured", "reconfig: always"
            elif window >= rs:
                chosen, action = res, "reconfigured"
                reason = f"idle window {window:.4g} s covers the switching time {rs:.4g} s"
            elif alt == res.assignment:
                chosen, action = res, "reconfigured"
                reason = "only layers without traffic in this phase change (pre-positioned for a later phase)"
            else:
                keep = evaluate(topology, tr, alt, options)
                t_keep, t_new = phase_time_s(keep), phase_time_s(res)
                exposed = rs - window
                gain = ph.repeat * (t_keep - t_new)
                if gain > exposed:
                    chosen, action = res, "reconfigured"
                    reason = (f"idle window {window:.4g} s < switching time {rs:.4g} s, but the time saved "
                              f"({gain:.4g} s over {ph.repeat} repeat(s)) exceeds the exposed delay {exposed:.4g} s")
                else:
                    chosen, action = keep, "kept"
                    changed = len(prev.changed(alt)[1])
                    reason = (f"idle window {window:.4g} s < switching time {rs:.4g} s and the time saved "
                              f"({gain:.4g} s) does not pay the exposed delay {exposed:.4g} s")
        check_assignment(topology, chosen.assignment)
        # kept circuits are a decision, not an optimum: "feasible" against the solver's bound for the phase
        term = res.termination if chosen is res else "feasible"
        dec = _decision(ph.name, action, chosen, changed, reason + (f"; {res.message}" if res.message else ""),
                        st, backend, term)
        if chosen is not res:
            dec = replace(dec, bound=bound, gap=rel_gap(chosen.objective, bound))
        return chosen.assignment, dec

    assignments: list[CircuitAssignment] = []
    decisions: list[PhaseDecision] = []
    prev: CircuitAssignment | None = None
    for i in range(n):
        a, dec = step(i, prev)
        assignments.append(a)
        decisions.append(dec)
        prev = a
    meta["wrap_around"] = _wrap_around(step, assignments, decisions, [ph.name for ph in phases])
    meta.update({"cache_hits": cache.hits if cache else 0, "cache_misses": cache.misses if cache else 0,
                 "safety_net_fired": sum(SAFETY_NET_NOTE in d.reason for d in decisions),
                 "wall_time_s": time.perf_counter() - t_all})
    return CircuitSchedule(assignments=tuple(assignments), decisions=tuple(decisions), meta=meta)


#: passes over the step that close the cycle last phase -> first phase (see :func:`_wrap_around`)
WRAP_PASSES = 3


def _wrap_around(step: Any, assignments: list[CircuitAssignment], decisions: list[PhaseDecision],
                 names: list[str]) -> dict[str, Any]:
    """Plan the transition from the last phase of one step to the first phase of the next (in place).

    RL steps repeat, and the simulator starts every step from the last phase's circuits, so phase 0 is
    planned again starting from the last phase's assignment (the same rules as any other transition, with
    the idle window ``last.compute_after_s + first.compute_before_s``). If that changes phase 0's circuits,
    phases 1.. are planned again from them, and so on until the schedule is periodic (phase 0 planned from
    the last phase gives phase 0 again) or :data:`WRAP_PASSES` passes are spent. Decision 0 then describes
    the wrap-around transition; the first pass's "initial configuration" only seeded the cycle.
    """
    n = len(assignments)
    if n < 2:
        return {"from_phase": names[-1] if names else "", "to_phase": names[0] if names else "", "passes": 0,
                "converged": True, "action": decisions[0].action if decisions else "none", "changed": 0,
                "note": "one phase: the circuits carry over from step to step unchanged"}
    converged = False
    passes = 0
    for passes in range(1, WRAP_PASSES + 1):  # noqa: B007 - the count is reported
        a0, d0 = step(0, assignments[-1])
        same = a0 == assignments[0]
        assignments[0] = a0
        decisions[0] = replace(d0, reason=f"wrap-around from phase '{names[-1]}' of the previous step: {d0.reason}")
        if same:
            converged = True
            break
        for i in range(1, n):
            a, dec = step(i, assignments[i - 1])
            assignments[i] = a
            decisions[i] = dec
    d0 = decisions[0]
    return {"from_phase": names[-1], "to_phase": names[0], "passes": passes, "converged": converged,
            "action": d0.action, "changed": d0.changed,
            "note": ("periodic: phase 0 planned from the last phase's circuits reproduces itself" if converged else
                     f"not periodic after {passes} passes: phase 0 was planned from the last phase of the "
                     "previous pass")}


def _plan_static(topology: Topology, workload: Workload, options: SolverOptions, *, seed: int,
                 fixed: CircuitAssignment | None, cache: SolveCache | None, meta: dict[str, Any], backend: str,
                 t_all: float) -> CircuitSchedule:
    why = ("topology is not reconfigurable (static OCS)" if not topology.reconfigurable
           else "reconfig: never" if fixed is None else "fixed assignment given")
    solve_time = 0.0
    fired = 0
    if fixed is not None:
        check_assignment(topology, fixed)
        chosen = fixed
        how = "the given assignment"
        term = "optimal"
    else:
        total: TrafficMatrix | None = None
        for ph in workload.phases:
            t = ph.traffic.scaled(float(ph.repeat))
            total = t if total is None else total + t
        if total is None:
            total = TrafficMatrix.from_pairs(workload.num_gpus, [], [], [])
        res = solve_phase(topology, total, options, cache=cache, seed=seed,
                          direct_demand=direct_demand(topology, workload, options))
        chosen = res.assignment
        solve_time = res.wall_time_s
        how = f"solved once on the whole step's traffic (alpha {res.objective:.4g} on it)"
        term = res.termination
        fired = int(SAFETY_NET_NOTE in res.message)
    decisions = []
    for ph in workload.phases:
        ev = evaluate(topology, ph.traffic, chosen, options)
        decisions.append(_decision(ph.name, "static", ev, 0, f"{why}: {how}", solve_time, backend, term))
        solve_time = 0.0
    meta.update({"cache_hits": cache.hits if cache else 0, "cache_misses": cache.misses if cache else 0,
                 "safety_net_fired": fired, "wall_time_s": time.perf_counter() - t_all})
    return CircuitSchedule(assignments=(chosen,) * len(workload.phases), decisions=tuple(decisions), meta=meta)


# ------------------------------------------------------------------------------------------------
# Export


def export_model(topology: Topology, traffic: TrafficMatrix, options: SolverOptions, path: str | Path) -> list[Path]:
    """Write the MILP of every OCS domain with traffic as LP or MPS (by ``path``'s suffix) through PuLP.

    One domain: ``path`` itself; several: ``<stem>.<domain><suffix>`` beside it. Returns the files written.
    """
    p = Path(path)
    if p.suffix.lower() not in (".lp", ".mps"):
        raise ConfigError("--export", "model files end in .lp or .mps", str(path))
    from solver.backends.pulp import write_model

    live = [q for q in problems(topology, traffic, options) if not q.empty]
    if not live:
        raise ConfigError("--phase", "this phase sends no traffic across any OCS layer: there is no model to write",
                          traffic.phase)
    out = []
    for q in live:
        target = p if len(live) == 1 else p.with_name(f"{p.stem}.{q.domain.name}{p.suffix}")
        out.append(write_model(formulate(q, node_bound(q)), target))
    return out
