"""Reconfiguration-aware planning across the phases of an RL step: one circuit assignment per phase step
(keep / switch / static decisions, and the wrap-around pass that closes the step's cycle)."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import numpy as np

from rfabric.circuits import CircuitAssignment, CircuitSchedule, PhaseDecision, check_assignment
from rfabric.config import to_plain
from rfabric.errors import SolverError
from rfabric.topology import Topology
from rfabric.traffic_matrix import TrafficMatrix
from rfabric.workload import Workload
from solver.cache import SolveCache
from solver.options import SAFETY_NET_NOTE, SolverOptions, pulp_solver_name
from solver.planner import cached_counts, direct_demand, evaluate, problems, solve_phase
from solver.result import SolveResult, rel_gap


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
        res = solve_phase(topology, tr, options, previous=prev, cache=cache, seed=seed, hints=hints, base=probs[i])
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
                keep = evaluate(topology, tr, alt, options, base=probs[i])
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
