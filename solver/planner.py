"""Per-domain and per-phase circuit solving: the fast path, the exact steps and their combination.

The cache of solved domains is :mod:`solver.cache`, planning a whole step is :mod:`solver.schedule`, writing a
phase's model is :mod:`solver.export`.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import replace
from typing import Any

import numpy as np

from rfabric.circuits import Circuit, CircuitAssignment, check_assignment
from rfabric.topology import Topology
from rfabric.traffic_matrix import TrafficMatrix
from rfabric.workload import Workload
from solver.backends import MipOutcome
from solver.cache import CachedCounts, SolveCache, signature
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
from solver.result import DomainResult, SolveResult, combine_alpha, worst_termination

log = logging.getLogger(__name__)

_TOL = 1e-9


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


def _counts(p: Problem, options: SolverOptions, seed: int) -> CachedCounts:
    """Circuit counts for one domain problem: heuristic, then the MILP (unless greedy).

    ``bound`` is always a valid upper bound on the objective: the node bound, tightened only by the MILP's
    own dual bound (never by its incumbent).
    """
    if options.model == "transit":
        from solver.transit import solve_transit

        hyb = _counts(p, replace(options, model="hybrid"), seed)
        tr = solve_transit(p, (hyb.x, hyb.z), seed=seed, time_limit_s=options.time_limit_s)
        return CachedCounts(tr.x, tr.z, tr.termination, "transit", tr.bound, hyb.heuristic_alpha, tr.rows, tr.cols,
                      tr.nonzeros, tr.message, alpha=tr.alpha)
    nb = node_bound(p)
    xh, zh = greedy(p)
    obj_h, a_h, _ = objective(p, xh, zh)
    best_x, best_z, best_obj, stage = xh, zh, obj_h, "heuristic"
    rows = cols = nnz = 0
    message = ""
    bound = nb
    if p.min_alpha > 0 and nb < p.min_alpha * (1 - 1e-9):
        return CachedCounts(xh, zh, "infeasible", stage, nb, a_h, 0, 0, 0,
                      f"alpha <= {nb:.4g} (proven bound) < min_alpha {p.min_alpha:g}")
    if nb <= 0:
        return CachedCounts(xh, zh, "infeasible", stage, 0.0, a_h, 0, 0, 0, _uncarried(p))
    if obj_h >= nb * (1 - 1e-7):
        return CachedCounts(xh, zh, "optimal", stage, nb, a_h, 0, 0, 0, "heuristic meets the proven bound")
    if options.backend == "greedy":
        note = (f"heuristic alpha {a_h:.4g} is below min_alpha {p.min_alpha:g} (not proven infeasible: use a "
                "MILP backend)") if a_h < p.min_alpha else ""
        return CachedCounts(xh, zh, "heuristic", stage, nb, a_h, 0, 0, 0, note)
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
    return CachedCounts(best_x, best_z, termination, stage, bound, a_h, rows, cols, nnz, message, alt)


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


def cached_counts(p: Problem, options: SolverOptions, cache: SolveCache | None, seed: int) -> CachedCounts:
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
             previous: CircuitAssignment | None = None, *, base: list[Problem] | None = None) -> list[Problem]:
    """The normalised problem of every OCS domain of ``topology`` for ``traffic``.

    ``base``: this function's result for the same topology, traffic and options without ``previous``
    (a caller planning one phase from several starting points builds them once).
    """
    if base is not None:
        if previous is None:
            return list(base)
        return [p.with_previous(*previous_counts(p.domain, previous)) for p in base]
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
                direct_demand: dict[str, np.ndarray] | None = None, base: list[Problem] | None = None) -> SolveResult:
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
    probs = problems(topology, traffic, options, previous, base=base)
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
             options: SolverOptions | None = None, *, base: list[Problem] | None = None) -> SolveResult:
    """The alpha ``assignment`` gives ``traffic`` (no solving; ``stage`` "previous"); ``base`` as in
    :func:`problems`."""
    t0 = time.perf_counter()
    opts = options or SolverOptions()
    parts = []
    for p in problems(topology, traffic, opts, base=base):
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
