"""Play a whole workload (an RL step of phase steps) under a circuit schedule.

Timeline of one RL step (times from the step's start):

* Phase steps run in order. Phase ``i`` starts (``start_s``) when phase ``i-1`` ends; its flows may start
  after its compute window (``comm_start_s = start_s + compute_before_s``); it ends (``end_s``) when its
  last flow finishes plus ``compute_after_s``.
* Circuits: phase ``i`` runs on ``schedule.assignments[i]``. If it differs from the previous phase's
  assignment, the reconfiguration starts when the previous phase ends (``start_s``): removed circuits go
  dark at once, added ones come up ``topology.ocs_reconfig_s`` later, unchanged circuits and the
  electrical fabric keep working. Flows do not wait for the circuits: they start on what is up and are
  re-routed when the new circuits arrive. ``reconfig_s`` is the dark time, ``reconfig_exposed_s`` the part
  of it after ``comm_start_s`` (not hidden by the compute window), capped at the phase's end.
* The step is periodic: before phase 0 the fabric holds the *last* phase's assignment (the previous RL
  step ended with it), so the step time includes the wrap-around reconfiguration.
* ``repeat`` ``r``: the phase runs ``r`` times back to back; circuits change only before the first run.
  When the first run was slowed by an exposed reconfiguration, a second, steady run (same circuits
  throughout) is simulated and the phase lasts ``first + (r - 1) * steady``; otherwise ``r * first``.
  ``end_s`` is ``start_s`` plus the *mean* run, so ``PhaseTiming.duration_s`` is the phase's total time.
  Flow times, utilisation and bytes are those of the first run (bytes are per run).
* ``options.steps`` RL steps are simulated back to back (each identical with the periodic start; cached
  runs are reused), and ``iteration_time_s`` is the mean step time **per RL step**: a workload of one
  weight-sync period of ``K`` RL steps (``sync_every: K``) is divided by ``K``.
* This is the ``sync`` schedule (``workload.schedule.mode``); pipelined schedules are played by
  :mod:`rfabric.sim.pipeline` (:func:`simulate` dispatches on the workload's schedule).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import numpy as np

from rfabric.circuits import CircuitAssignment, CircuitSchedule
from rfabric.errors import SimulationError
from rfabric.sim.engine import FlowTrace, run_flows
from rfabric.sim.options import SimConfig
from rfabric.sim.pipeline import CLUSTER_OF_PHASE, simulate_pipeline, step_structure
from rfabric.sim.result import PhaseTiming, SimulationResult
from rfabric.sim.routing import Fabric
from rfabric.topology import Topology
from rfabric.workload import Workload


def _assignments(topology: Topology, workload: Workload, schedule: CircuitSchedule | None) -> list[CircuitAssignment]:
    n = len(workload.phases)
    if schedule is None or not len(schedule.assignments):
        return [CircuitAssignment()] * n
    if len(schedule.assignments) != n:
        raise SimulationError(f"the schedule has {len(schedule.assignments)} assignments for {n} phase steps")
    out = list(schedule.assignments)
    if not topology.reconfigurable and len({a.circuits for a in out}) > 1:
        raise SimulationError(f"topology '{topology.name}' is not reconfigurable but the schedule changes circuits")
    return out


def simulate(topology: Topology, workload: Workload, schedule: CircuitSchedule | None, *,
             options: SimConfig | None = None, seed: int = 0, progress: Callable[[str], None] | None = None,
             epoch_circuits: Mapping[tuple[str, ...], CircuitAssignment] | None = None) -> SimulationResult:
    """Simulate ``options.steps`` RL steps of ``workload`` on ``topology`` under ``schedule``.

    ``topology`` is the physical fabric (OCS nodes allowed). Sequential (``sync``) schedule: ``schedule`` has
    one assignment per phase step (None or empty for fabrics without OCS); see the module docstring for the
    timeline. Pipelined schedules (:mod:`rfabric.sim.pipeline`): the fabric starts with
    ``schedule.assignments[-1]`` (the periodic wrap-around) and switches to ``epoch_circuits[keys]`` when an
    epoch with those active phases begins. ``progress``: called with one line per simulated phase or run
    (the library itself never prints).

    Example: one phase of a single 1 GB flow on 400 Gb/s NICs with 10 ms of compute before it and
    ``repeat=2`` lasts 2 x (10 + 20) ms = 60 ms (without link latency).
    """
    wall0 = time.perf_counter()
    opts = options or SimConfig()
    if workload.schedule.pipelined:
        start = schedule.assignments[-1] if schedule is not None and len(schedule.assignments) else None
        table = epoch_circuits if epoch_circuits is not None else _epoch_table(schedule)
        return simulate_pipeline(topology, workload, options=opts, seed=seed, circuits=start,
                                 epoch_circuits=table, progress=progress)
    try:
        structure = step_structure(workload)
    except SimulationError:  # a weight sync before other phases: a sequential step of its own shape
        structure = None
    rl_steps = structure.sync_every if structure is not None else 1
    assigns = _assignments(topology, workload, schedule)
    fabric = Fabric.build(topology, assigns, routing=opts.routing)
    reconf = float(topology.ocs_reconfig_s)
    cache: dict[tuple[int, tuple, tuple, bool], tuple[FlowTrace, float]] = {}
    events = solves = 0

    def run(i: int, prev: CircuitAssignment, cur: CircuitAssignment, steady: bool) -> tuple[FlowTrace, float]:
        """(trace, comm offset) of phase i started at time 0 after ``prev`` (or steady on ``cur``)."""
        nonlocal events, solves
        key = (i, prev.circuits, cur.circuits, steady)
        if key not in cache:
            ph = workload.phases[i]
            comm = ph.compute_before_s
            if steady or prev.circuits == cur.circuits:
                tr = run_flows(fabric, ph.flows, assignment=cur, changes=(), options=opts, seed=seed, start_s=comm)
            else:
                tr = run_flows(fabric, ph.flows, assignment=prev, changes=((0.0, cur),), options=opts, seed=seed,
                               start_s=comm)
            events += tr.events
            solves += tr.solves
            cache[key] = (tr, comm)
        return cache[key]

    timings: list[PhaseTiming] = []
    flow_start: dict[str, np.ndarray] = {}
    flow_finish: dict[str, np.ndarray] = {}
    ut_t: list[np.ndarray] = []
    ut_v: list[np.ndarray] = []
    names: tuple[str, ...] = fabric.group_names
    reconfig_total = 0.0
    t = 0.0
    step_times: list[float] = []
    n_ph = len(workload.phases)
    for step in range(opts.steps):
        step_start = t
        for i, ph in enumerate(workload.phases):
            prev, cur = assigns[i - 1], assigns[i]
            _, added = prev.changed(cur)
            changed = len(added) if topology.reconfigurable else 0
            tr, comm = run(i, prev, cur, False)
            first_end = max(tr.end_s, comm) + ph.compute_after_s
            dark = reconf if changed else 0.0
            exposed = max(0.0, min(dark, first_end - ph.compute_after_s) - comm) if dark else 0.0
            total = first_end * ph.repeat
            if ph.repeat > 1 and exposed > 0:
                st, _ = run(i, cur, cur, True)
                total = first_end + (ph.repeat - 1) * (max(st.end_s, comm) + ph.compute_after_s)
            if step == 0:
                b = {k: float(v) for k, v in tr.bytes_by_medium.items()}
                timings.append(PhaseTiming(name=ph.name, phase=ph.phase, start_s=t, comm_start_s=t + comm,
                                           end_s=t + total / ph.repeat, repeat=ph.repeat, reconfig_s=dark,
                                           reconfig_exposed_s=exposed, circuits_changed=changed, bytes_by_medium=b,
                                           flows=len(ph.flows)))
                flow_start[ph.name] = tr.start_s + t
                flow_finish[ph.name] = tr.finish_s + t
                ut_t.append(tr.util_times_s + t)
                ut_v.append(tr.util)
                reconfig_total += dark
            t += total
            if progress is not None:
                progress(f"step {step + 1}/{opts.steps} phase {i + 1}/{n_ph} {ph.name}: "
                         f"{total:.6g} s simulated, {tr.events} events")
        step_times.append(t - step_start)
    iteration = float(np.mean(step_times)) / rl_steps if step_times else 0.0
    busy = _busy(timings, structure is not None)
    times = np.concatenate(ut_t) if ut_t else np.zeros(0)
    util = np.concatenate(ut_v, axis=0) if ut_v else np.zeros((0, len(names)))
    if names:
        keep = util.max(axis=0) > 0 if util.size else np.zeros(len(names), dtype=bool)
        names = tuple(n for n, k in zip(names, keep, strict=True) if k)
        util = util[:, keep]
    return SimulationResult(
        fabric=topology.name, iteration_time_s=iteration, phases=tuple(timings), flow_start_s=flow_start,
        flow_finish_s=flow_finish, link_util_times_s=times, link_util=util, link_names=names,
        reconfig_time_s=reconfig_total, events=events, solves=solves, wall_time_s=time.perf_counter() - wall0,
        extra={"step_times_s": step_times, "rl_steps_per_period": rl_steps, "mode": "sync", **busy, "ecmp": opts.ecmp, "merge_tolerance": opts.merge_tolerance,
               "link_latency": opts.link_latency})


def _epoch_table(schedule: CircuitSchedule | None) -> dict[tuple[str, ...], CircuitAssignment] | None:
    """Assignments keyed by their epoch's active phases (``schedule.meta['epochs']``, see
    :func:`rfabric.api.plan_epochs`); None for one assignment throughout. A per-phase schedule whose
    assignments differ cannot drive a pipelined step: :class:`SimulationError`."""
    if schedule is None or not len(schedule.assignments):
        return None
    epochs = schedule.meta.get("epochs") if isinstance(schedule.meta, Mapping) else None
    if epochs is not None:
        if len(epochs) != len(schedule.assignments):  # type: ignore[arg-type]
            raise SimulationError(f"the schedule has {len(schedule.assignments)} assignments for "
                                  f"{len(epochs)} epochs")  # type: ignore[arg-type]
        return {tuple(k): a for k, a in zip(epochs, schedule.assignments, strict=True)}  # type: ignore[call-overload]
    if len({a.circuits for a in schedule.assignments}) > 1:
        raise SimulationError("a per-phase circuit schedule cannot drive a pipelined step (its phases overlap): "
                              "plan circuits per epoch (rfabric.api.plan_circuits / plan_and_simulate) or use "
                              "workload.schedule.mode: sync")
    return None


def _busy(timings: list[PhaseTiming], rl: bool) -> dict[str, object]:
    """Each pool's busy fraction of the sequential step (the weight sync occupies both) and the critical pool."""
    total = sum(p.duration_s for p in timings)
    if not rl or total <= 0:
        return {}
    work = {"trainer": 0.0, "rollout": 0.0}
    for p in timings:
        c = CLUSTER_OF_PHASE.get(p.phase, "trainer")
        for pool in (("trainer", "rollout") if c == "sync" else (c,)):
            work[pool] += p.duration_s
    t, r = work["trainer"] / total, work["rollout"] / total
    return {"trainer_busy_frac": t, "rollout_busy_frac": r,
            "critical_cluster": "trainer" if t > r + 1e-9 else "rollout" if r > t + 1e-9 else "both",
            "overlap_frac": 0.0}


__all__ = ["simulate"]
