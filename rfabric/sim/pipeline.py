"""The RL step as a pipeline: phase instances of both clusters played concurrently on one fabric.

Disaggregated RL runs trainer GPUs and rollout GPUs as separate pools (``../shared/design/pipeline.md``).
With ``workload.schedule.mode`` ``one_step_off`` (verl ``recipe/one_step_off_policy``) or ``async``
(AReaL, arXiv 2505.24298) the rollout of later steps runs *while* earlier steps train, so the fabric carries
both pools' traffic in the same instants. This module turns a :class:`~rfabric.workload.Workload` (one
weight-sync period: ``K = sync_every`` rollout/train sub-steps, then the weight sync) into a dependency graph
of phase instances over several RL steps and plays all of them in **one** event-driven run
(:func:`rfabric.sim.engine.run_flows` with an :class:`~rfabric.sim.engine.InstanceGraph`): every flow active
at an instant, whichever cluster it belongs to, is in the same max-min solve.

The graph (RL steps ``i = 1 .. N``; ``k`` = staleness; ``R_j`` rollout of step ``j``, ``T_i`` training,
``S_i`` weight sync after steps that are multiples of ``K``; each is the chain of the workload's phases of
that cluster, in order):

* ``R_j`` after ``R_{j-1}`` (one rollout at a time) and after ``S_m``, ``m`` the last sync step
  ``<= j - 1 - k`` (rollout of step ``j`` uses the weights of step ``j - 1 - k``).
* ``T_i`` after ``R_i`` (its samples) and ``T_{i-1}``; with ``sync: blocking`` also after ``S_{i-1}``.
* ``S_i`` after ``T_i`` and ``S_{i-K}``; with ``sync: blocking`` also after ``R_{i+k}`` (the rollout in
  progress finishes before the engine reloads weights).

**Start.** With ``sync: blocking`` every weight sync joins both pools and both restart at its end, so the
process renews at every sync: the pipeline starts *warm* -- the samples of steps ``1 .. k`` exist at time 0
(``R_1 .. R_k`` are not played), ``T_1`` and ``R_{k+1}`` start together -- which is exactly the periodic
steady state; ``K`` steps are simulated and the period is exact. With ``streamed`` sync the pools drift
apart; the pipeline starts *cold* (``R_1`` first; a warm start would let the trainer eat the ready samples
for as many steps as the pools' speeds are close, reporting the trainer's pace where the rollout's holds),
at least two sync periods are measured (the lanes can settle into a 2-periodic pattern) after ``(k + 1) K``
warm-up steps, and the warm-up is doubled (up to :data:`MAX_WARMUP_STEPS`) until the measured window and
the one before it give the same period to a relative 1e-9 (``extra['converged']`` says whether they did).
``options.steps`` steps are measured (rounded up to a multiple of ``K``).

Reported (:class:`~rfabric.sim.result.SimulationResult`): ``iteration_time_s`` = steady-state period **per RL
step** = ``(C(N) - C(W)) / M`` with ``C(i)`` the completion of step ``i`` (end of ``S_i`` on sync steps,
of ``T_i`` otherwise), ``W`` warm-up and ``M`` measured steps; ``phases`` = the last instance of every phase
of the workload (absolute times); ``instances`` = every instance played (the two-lane timeline);
``extra``: each cluster's busy fraction over the measured window (a blocking sync keeps both busy), the
critical cluster, the overlap achieved (share of the window in which training and rollout both run) and the
epochs (intervals with a constant set of active phases).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from rfabric.circuits import CircuitAssignment
from rfabric.errors import SimulationError
from rfabric.sim.engine import Epoch, FlowTrace, InstanceGraph, run_flows
from rfabric.sim.options import SimConfig
from rfabric.sim.result import PhaseTiming, SimulationResult
from rfabric.sim.routing import Fabric
from rfabric.topology import Topology
from rfabric.workload import FlowSet, PhaseStep, Workload

#: The longest warm-up a streamed-sync pipeline is simulated with while its period has not converged.
MAX_WARMUP_STEPS = 64

#: Which pool runs a phase (by its phase tag). ``score`` (reference / reward forward) runs on the rollout
#: GPUs after generation (:class:`traffic.spec.ScoreSpec`); ``weight_sync`` joins both pools.
CLUSTER_OF_PHASE = {"rollout": "rollout", "score": "rollout", "train": "trainer", "weight_sync": "sync"}


@dataclass(frozen=True, slots=True)
class StepStructure:
    """The workload read as ``K`` sub-steps (rollout phases, trainer phases) and an optional weight sync."""

    substeps: tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]
    sync: int | None

    @property
    def sync_every(self) -> int:
        return len(self.substeps)


def step_structure(workload: Workload) -> StepStructure | None:
    """Sub-steps of ``workload`` (phase indices), or None if it has no rollout-then-train shape.

    A sub-step is a maximal run of rollout-pool phases followed by a maximal run of trainer phases (phase
    tags other than those of :data:`CLUSTER_OF_PHASE` count as trainer work); a ``weight_sync`` phase must
    come last. Raises :class:`SimulationError` for a weight sync that is not the last phase.
    """
    subs: list[tuple[list[int], list[int]]] = []
    sync: int | None = None
    for i, ph in enumerate(workload.phases):
        c = CLUSTER_OF_PHASE.get(ph.phase, "trainer")
        if sync is not None:
            raise SimulationError(f"phase '{ph.name}' follows the weight sync '{workload.phases[sync].name}': "
                                  "a pipelined schedule needs the weight sync last")
        if c == "sync":
            sync = i
        elif c == "rollout":
            if not subs or subs[-1][1]:
                subs.append(([], []))
            subs[-1][0].append(i)
        else:
            if not subs:
                return None
            subs[-1][1].append(i)
    if not subs or any(not r or not t for r, t in subs):
        return None
    return StepStructure(substeps=tuple((tuple(r), tuple(t)) for r, t in subs), sync=sync)


@dataclass(frozen=True, slots=True)
class InstanceInfo:
    """One phase instance of the pipeline: its phase (index into the workload), cluster and RL step."""

    phase: int
    cluster: str  # trainer | rollout | sync
    step: int  # global RL step (1-based)
    rep: int = 0  # which of the phase's ``repeat`` back-to-back runs


@dataclass(frozen=True, slots=True, eq=False)
class Pipeline:
    """The phase-instance graph of ``steps`` RL steps and how to read the period from it."""

    instances: tuple[InstanceInfo, ...]
    preds: tuple[tuple[int, ...], ...]
    completion: tuple[int, ...]  # per RL step 1..N: the instance whose end completes it
    warmup: int
    measured: int
    structure: StepStructure

    @property
    def steps(self) -> int:
        return len(self.completion)


def build_pipeline(workload: Workload, structure: StepStructure, *, measured: int,
                   warmup: int | None = None) -> Pipeline:
    """The instance graph for ``workload.schedule`` (see the module docstring for the edges).

    ``measured``: RL steps to measure (rounded up to a multiple of ``K``); ``warmup``: steps before them
    (default: 0 with a blocking sync, ``(k + 1) K`` streamed; rounded up to a multiple of ``K``).
    """
    sch = workload.schedule
    k = sch.versions_ahead
    K = structure.sync_every
    blocking = sch.sync == "blocking"
    # blocking: the warm start is the steady state (renewal at every sync). streamed: K warm-up steps and at
    # least two sync periods measured, since the two lanes can settle into a 2-periodic pattern (a rollout
    # alternately waiting for a late sync and not; see tests/sim/test_pipeline.py)
    # (the k samples ready at the warm start must drain first: (k + 1) * K warm-up steps)
    M = -(-max(1 if blocking else 2 * K, measured) // K) * K
    W = -(-(warmup if warmup is not None else 0 if blocking else K * (k + 1)) // K) * K
    N = W + M
    insts: list[InstanceInfo] = []

    def alloc(phases: Sequence[int], cluster: str, step: int) -> list[int]:
        # a phase with ``repeat`` r runs r times back to back: r instances in the chain
        runs = [(p, r) for p in phases for r in range(workload.phases[p].repeat)]
        ids = list(range(len(insts), len(insts) + len(runs)))
        insts.extend(InstanceInfo(phase=p, cluster=cluster, step=step, rep=r) for p, r in runs)
        return ids

    # ids first (rollouts run up to k steps ahead: R_{k+1} .. R_{N+k}, from R_1 on a cold start), edges second
    r0 = 1 if not blocking else k + 1
    R = {j: alloc(structure.substeps[(j - 1) % K][0], "rollout", j) for j in range(r0, N + k + 1)}
    T = {i: alloc(structure.substeps[(i - 1) % K][1], "trainer", i) for i in range(1, N + 1)}
    S = ({i: alloc([structure.sync], "sync", i)[0] for i in range(K, N + 1, K)} if structure.sync is not None
         else {})
    preds: list[list[int]] = [[] for _ in insts]
    for ids in [*R.values(), *T.values()]:
        for a, b in zip(ids[:-1], ids[1:], strict=True):
            preds[b].append(a)
    for j, ids in R.items():
        if j - 1 in R:
            preds[ids[0]].append(R[j - 1][-1])
        m = ((j - 1 - k) // K) * K  # the last sync of weights at most as new as step j - 1 - k
        if m in S:
            preds[ids[0]].append(S[m])
    for i, ids in T.items():
        if i in R:
            preds[ids[0]].append(R[i][-1])
        if i - 1 in T:
            preds[ids[0]].append(T[i - 1][-1])
        if blocking and i - 1 in S:
            preds[ids[0]].append(S[i - 1])
    for i, sid in S.items():
        preds[sid].append(T[i][-1])
        if i - K in S:
            preds[sid].append(S[i - K])
        if blocking and i + k in R and k > 0:
            preds[sid].append(R[i + k][-1])
    completion = tuple(S[i] if i in S else T[i][-1] for i in range(1, N + 1))
    return Pipeline(instances=tuple(insts), preds=tuple(tuple(p) for p in preds), completion=completion, warmup=W,
                    measured=M, structure=structure)


def instance_flows(workload: Workload, pipe: Pipeline) -> tuple[FlowSet, InstanceGraph]:
    """All flows of all instances (one copy of the phase's flows each) and the instance graph."""
    parts: list[FlowSet] = []
    owner: list[np.ndarray] = []
    for i, info in enumerate(pipe.instances):
        fs = workload.phases[info.phase].flows
        parts.append(fs)
        owner.append(np.full(len(fs), i, dtype=np.int64))
    flows = FlowSet.concat(parts)
    ph = [workload.phases[x.phase] for x in pipe.instances]
    graph = InstanceGraph(flow_instance=np.concatenate(owner) if owner else np.zeros(0, dtype=np.int64),
                          before_s=np.array([p.compute_before_s for p in ph], dtype=np.float64),
                          after_s=np.array([p.compute_after_s for p in ph], dtype=np.float64),
                          preds=pipe.preds, key=tuple(p.name for p in ph))
    return flows, graph


def _union_length(intervals: Sequence[tuple[float, float]], lo: float, hi: float) -> float:
    """Length of the union of ``intervals`` clipped to ``[lo, hi]``."""
    iv = sorted((max(a, lo), min(b, hi)) for a, b in intervals if min(b, hi) > max(a, lo))
    total = 0.0
    cur_a = cur_b = None
    for a, b in iv:
        if cur_b is None or a > cur_b:
            if cur_b is not None:
                total += cur_b - cur_a  # type: ignore[operator]
            cur_a, cur_b = a, b
        else:
            cur_b = max(cur_b, b)
    if cur_b is not None:
        total += cur_b - cur_a  # type: ignore[operator]
    return total


def _intersection_length(a: Sequence[tuple[float, float]], b: Sequence[tuple[float, float]], lo: float,
                         hi: float) -> float:
    """Length of (union of a) ∩ (union of b) within ``[lo, hi]``."""
    return (_union_length(a, lo, hi) + _union_length(b, lo, hi) - _union_length([*a, *b], lo, hi))


def simulate_pipeline(topology: Topology, workload: Workload, *, options: SimConfig | None = None, seed: int = 0,
                      circuits: CircuitAssignment | None = None,
                      epoch_circuits: Mapping[tuple[str, ...], CircuitAssignment] | None = None,
                      progress: Callable[[str], None] | None = None) -> SimulationResult:
    """Play ``workload`` as a pipeline of phase instances (``workload.schedule``) on ``topology``.

    Circuits: ``circuits`` is the assignment at time 0 (static OCS: the whole run); ``epoch_circuits`` maps the
    sorted phase names active in an epoch to the assignment to switch to when that epoch begins (absent:
    keep the current circuits). Raises :class:`SimulationError` if the workload has no rollout-then-train
    shape (use the ``sync`` mode for other workloads) or a flow can never finish.

    Example (hand-computed in ``tests/sim/test_pipeline.py``): rollout 10 s and training 6 s of compute,
    weight sync 1 s, ``one_step_off`` with blocking sync: period = max(10, 6) + 1 = 11 s.
    """
    wall0 = time.perf_counter()
    opts = options or SimConfig()
    structure = step_structure(workload)
    if structure is None:
        raise SimulationError(f"workload '{workload.name}' has no rollout-then-train phases to pipeline; use "
                              "workload.schedule.mode: sync")
    assigns = [circuits, *(epoch_circuits or {}).values()]
    fabric = Fabric.build(topology, assigns, routing=opts.routing)
    policy = None
    if epoch_circuits:
        table = dict(epoch_circuits)

        def policy(keys: tuple[str, ...], current: CircuitAssignment) -> CircuitAssignment:
            return table.get(keys, current)

    warmup: int | None = None
    while True:
        pipe = build_pipeline(workload, structure, measured=opts.steps, warmup=warmup)
        flows, graph = instance_flows(workload, pipe)
        tr = run_flows(fabric, flows, assignment=circuits, changes=(), options=opts, seed=seed, start_s=0.0,
                       graph=graph, epoch_policy=policy)
        if progress is not None:
            progress(f"pipeline ({workload.schedule.mode}): {pipe.steps} steps, {len(pipe.instances)} phase "
                     f"instances, {tr.events} events")
        converged = _converged(pipe, tr)
        if converged or pipe.warmup >= MAX_WARMUP_STEPS:
            return _result(topology, workload, pipe, flows, graph, tr, opts, wall0, converged)
        warmup = 2 * max(pipe.warmup, pipe.measured)


def _completions(pipe: Pipeline, tr: FlowTrace) -> list[float]:
    return [0.0, *(float(tr.instance_end_s[c]) for c in pipe.completion)]


def _converged(pipe: Pipeline, tr: FlowTrace) -> bool:
    """True with a blocking sync (the warm start is the steady state) or when the measured window's period
    equals that of the window of as many steps before it (relative 1e-9)."""
    if pipe.warmup == 0:
        return True
    C = _completions(pipe, tr)
    M, W = pipe.measured, pipe.warmup
    if W < M:
        return False
    now, before = C[W + M] - C[W], C[W] - C[W - M]
    return abs(now - before) <= 1e-9 * max(abs(now), 1e-300)


def _result(topology: Topology, workload: Workload, pipe: Pipeline, flows: FlowSet, graph: InstanceGraph,
            tr: FlowTrace, opts: SimConfig, wall0: float, converged: bool) -> SimulationResult:
    ends = tr.instance_end_s
    starts = tr.instance_start_s
    comm = tr.instance_comm_s
    if np.any(np.isnan(ends)):
        raise SimulationError("internal: a phase instance never ended")  # pragma: no cover
    C = _completions(pipe, tr)
    lo, hi = C[pipe.warmup], C[pipe.steps]
    period = (hi - lo) / pipe.measured
    reconf = float(topology.ocs_reconfig_s)
    blocking = workload.schedule.sync == "blocking"

    size = flows.size_bytes * flows.multiplicity
    local = tr.nvlink | (flows.src == flows.dst)
    inst_of = graph.flow_instance
    if tr.replay_bytes.size:  # every play of a replayed flow (rfabric.workload.StageReplay)
        size = (flows.size_bytes + tr.replay_bytes) * flows.multiplicity
        opt = (flows.size_bytes * tr.optical_share + tr.replay_optical_bytes) * flows.multiplicity
    else:
        opt = size * tr.optical_share
    nv = np.bincount(inst_of, size * local, minlength=graph.size)
    op = np.bincount(inst_of, np.where(local, 0.0, opt), minlength=graph.size)
    el = np.bincount(inst_of, np.where(local, 0.0, size * (1.0 - tr.optical_share) if not tr.replay_bytes.size
                                       else size - opt), minlength=graph.size)
    n_flows = np.bincount(inst_of, minlength=graph.size)
    changing = [e for e in tr.epochs if e.changed > 0]

    def timing(i: int) -> PhaseTiming:
        ph: PhaseStep = workload.phases[pipe.instances[i].phase]
        s, c, e = float(starts[i]), float(comm[i]), float(ends[i])
        dark = exposed = 0.0
        changed = 0
        for ep in changing:
            if s <= ep.start_s < e or (ep.start_s == s == e):
                dark += reconf
                changed += ep.changed
                exposed += max(0.0, min(ep.start_s + reconf, e - ph.compute_after_s) - max(ep.start_s, c))
        info = pipe.instances[i]
        return PhaseTiming(name=ph.name, phase=ph.phase, start_s=s, comm_start_s=c, end_s=e, repeat=1,
                           cluster=info.cluster, step=info.step,
                           reconfig_s=dark, reconfig_exposed_s=exposed, circuits_changed=changed,
                           bytes_by_medium={"nvlink": float(nv[i]), "electrical": float(el[i]),
                                            "optical": float(op[i])}, flows=int(n_flows[i]))

    last: dict[int, int] = {}  # per phase: its latest first run started inside the measured window
    for i, info in enumerate(pipe.instances):
        if info.rep == 0 and (starts[i] < hi or (starts[i] == hi == lo)):
            if info.phase not in last or starts[i] >= starts[last[info.phase]]:
                last[info.phase] = i
    runs: dict[tuple[int, int], list[int]] = {}
    for i, info in enumerate(pipe.instances):
        runs.setdefault((info.phase, info.step), []).append(i)

    def phase_timing(i: int) -> PhaseTiming:
        """All ``repeat`` runs of instance ``i``'s phase in its step as one timing (``end_s`` = start + mean run)."""
        ids = runs[(pipe.instances[i].phase, pipe.instances[i].step)]
        parts = [timing(j) for j in ids]
        first = parts[0]
        total = float(ends[ids[-1]]) - first.start_s
        b = {k: sum(float(p.bytes_by_medium[k]) for p in parts) / len(parts) for k in first.bytes_by_medium}
        return replace(first, end_s=first.start_s + total / len(parts), repeat=len(parts),
                       reconfig_s=sum(p.reconfig_s for p in parts),
                       reconfig_exposed_s=sum(p.reconfig_exposed_s for p in parts),
                       circuits_changed=sum(p.circuits_changed for p in parts), bytes_by_medium=b)

    phases = tuple(phase_timing(last[p]) for p in range(len(workload.phases)) if p in last)
    instances = tuple(timing(i) for i in range(len(pipe.instances)))
    flow_start = {workload.phases[p].name: tr.start_s[inst_of == i] for p, i in last.items()}
    flow_finish = {workload.phases[p].name: tr.finish_s[inst_of == i] for p, i in last.items()}

    def iv(clusters: tuple[str, ...]) -> list[tuple[float, float]]:
        return [(float(starts[i]), float(ends[i])) for i, x in enumerate(pipe.instances) if x.cluster in clusters]

    width = max(hi - lo, 0.0)
    tr_c = ("trainer", "sync") if blocking else ("trainer",)
    ro_c = ("rollout", "sync") if blocking else ("rollout",)
    busy_t = _union_length(iv(tr_c), lo, hi) / width if width > 0 else 0.0
    busy_r = _union_length(iv(ro_c), lo, hi) / width if width > 0 else 0.0
    overlap = _intersection_length(iv(("trainer",)), iv(("rollout",)), lo, hi) / width if width > 0 else 0.0
    critical = "trainer" if busy_t > busy_r + 1e-9 else "rollout" if busy_r > busy_t + 1e-9 else "both"
    in_window = [e for e in tr.epochs if e.end_s > lo and e.start_s < hi]
    reconfig_total = reconf * sum(1 for e in in_window if e.changed > 0 and e.start_s >= lo) / pipe.measured
    names = tr.util_names
    util = tr.util
    if names:
        keep = util.max(axis=0) > 0 if util.size else np.zeros(len(names), dtype=bool)
        names = tuple(n for n, k in zip(names, keep, strict=True) if k)
        util = util[:, keep]
    extra = {
        "mode": workload.schedule.mode, "staleness": workload.schedule.versions_ahead,
        "sync_style": workload.schedule.sync, "rl_steps_per_period": pipe.structure.sync_every,
        "steps_simulated": pipe.steps, "warmup_steps": pipe.warmup, "measured_steps": pipe.measured,
        "window_s": [lo, hi], "step_completion_s": C[1:], "converged": converged,
        "trainer_busy_frac": busy_t, "rollout_busy_frac": busy_r, "critical_cluster": critical,
        "overlap_frac": overlap, "ocs_reconfig_s": reconf,
        "epochs": [_epoch_plain(e) for e in tr.epochs],
        "instances": [{"name": workload.phases[x.phase].name, "cluster": x.cluster, "step": x.step}
                      for x in pipe.instances],
        "routing": opts.routing, "merge_tolerance": opts.merge_tolerance, "link_latency": opts.link_latency,
    }
    return SimulationResult(fabric=topology.name, iteration_time_s=period, phases=phases, flow_start_s=flow_start,
                            flow_finish_s=flow_finish, link_util_times_s=tr.util_times_s, link_util=util,
                            link_names=names, reconfig_time_s=reconfig_total, events=tr.events, solves=tr.solves,
                            wall_time_s=time.perf_counter() - wall0, extra=extra, instances=instances,
                            mode=workload.schedule.mode)


def phase_estimate_s(phase: PhaseStep, nic_bps: float, gpus_per_server: int) -> float:
    """A quick lower-bound-style estimate of one phase's duration, without simulating (seconds).

    ``compute_before_s + compute_after_s + max(critical chain, NIC time)``: the critical chain is the largest
    sum over a chain's stages of the stage's largest ``delay_s`` (the compute between collective steps); the
    NIC time is the most bytes one GPU sends or receives across servers divided by ``nic_bps``. Used to
    choose the GPU split (``cluster.split: auto``), not to report times.
    """
    fs = phase.flows
    crit = 0.0
    net = 0.0
    if len(fs):
        key = fs.chain.astype(np.int64) * (int(fs.stage.max()) + 1) + fs.stage
        uk, inv = np.unique(key, return_inverse=True)
        stage_max = np.zeros(uk.size)
        np.maximum.at(stage_max, inv.ravel(), fs.delay_s)
        chains = uk // (int(fs.stage.max()) + 1)
        crit = float(np.bincount(np.unique(chains, return_inverse=True)[1].ravel(), stage_max).max())
        cross = (fs.src // gpus_per_server) != (fs.dst // gpus_per_server)
        b = fs.size_bytes * fs.multiplicity * cross
        n = int(max(fs.src.max(), fs.dst.max())) + 1
        net = float(max(np.bincount(fs.src, b, minlength=n).max(), np.bincount(fs.dst, b, minlength=n).max())) * 8.0 / nic_bps
    return phase.compute_before_s + phase.compute_after_s + max(crit, net)


def estimate_period(workload: Workload, durations_s: Sequence[float]) -> float:
    """Steady-state period per RL step of ``workload``'s schedule with fixed phase durations (no contention).

    The instance graph of :func:`build_pipeline` is evaluated as a longest-path (max-plus) recursion
    (:func:`estimate_timeline`). ``durations_s``: one per phase of the workload (per run of a repeated
    phase). For ``sync`` the period is the sum of the durations (times repeats) per RL step.
    """
    structure = step_structure(workload)
    if structure is None or not workload.schedule.pipelined:
        k = structure.sync_every if structure is not None else 1
        return float(sum(d * p.repeat for d, p in zip(durations_s, workload.phases, strict=True))) / k
    return estimate_timeline(workload, durations_s, measured=8 * structure.sync_every).iteration_time_s


def estimate_timeline(workload: Workload, durations_s: Sequence[float], *, measured: int | None = None
                      ) -> SimulationResult:
    """The pipelined schedule's timeline with fixed phase durations, without simulating any flow.

    Every instance of :func:`build_pipeline` starts when its last predecessor ends and lasts its phase's
    duration (``durations_s``, one per phase); its communication starts ``compute_before_s`` after its start.
    Returns a :class:`SimulationResult` (fabric ``"estimate"``) with ``iteration_time_s``, ``instances`` and
    the ``extra`` keys ``epochs``, ``step_completion_s`` and ``rl_steps_per_period``, like
    :func:`simulate_pipeline` -- what :func:`rfabric.api.epoch_workload` reads to plan circuits per epoch.
    Raises :class:`SimulationError` for a workload without a rollout-then-train shape.
    """
    from graphlib import TopologicalSorter

    structure = step_structure(workload)
    if structure is None:
        raise SimulationError(f"workload '{workload.name}' has no rollout-then-train phases to pipeline")
    pipe = build_pipeline(workload, structure, measured=measured or structure.sync_every)
    n = len(pipe.instances)
    start = np.zeros(n)
    end = np.zeros(n)
    for i in TopologicalSorter({i: p for i, p in enumerate(pipe.preds)}).static_order():
        start[i] = max((end[q] for q in pipe.preds[i]), default=0.0)
        end[i] = start[i] + float(durations_s[pipe.instances[i].phase])
    C = [0.0, *(float(end[c]) for c in pipe.completion)]
    period = (C[pipe.steps] - C[pipe.warmup]) / pipe.measured
    instances = []
    for i, info in enumerate(pipe.instances):
        ph = workload.phases[info.phase]
        instances.append(PhaseTiming(name=ph.name, phase=ph.phase, start_s=float(start[i]),
                                     comm_start_s=float(min(end[i], start[i] + ph.compute_before_s)),
                                     end_s=float(end[i]), cluster=info.cluster, step=info.step))
    cuts = sorted(set(start.tolist()) | set(end.tolist()))
    epochs: list[dict[str, object]] = []
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        keys = sorted({p.name for p in instances if p.start_s <= a < p.end_s})
        if epochs and epochs[-1]["phases"] == keys:
            epochs[-1]["end_s"] = b
        else:
            epochs.append({"start_s": a, "end_s": b, "phases": keys, "circuits_changed": 0})
    extra = {"mode": workload.schedule.mode, "epochs": epochs, "step_completion_s": C[1:],
             "rl_steps_per_period": structure.sync_every, "window_s": [C[pipe.warmup], C[pipe.steps]]}
    return SimulationResult(fabric="estimate", iteration_time_s=period, phases=(), instances=tuple(instances),
                            extra=extra, mode=workload.schedule.mode)


def _epoch_plain(e: Epoch) -> dict[str, object]:
    return {"start_s": e.start_s, "end_s": e.end_s, "phases": list(e.keys), "circuits_changed": e.changed}


__all__ = ["simulate_pipeline", "step_structure", "estimate_period", "estimate_timeline", "phase_estimate_s", "build_pipeline", "instance_flows", "Pipeline", "InstanceInfo",
           "StepStructure", "CLUSTER_OF_PHASE"]
