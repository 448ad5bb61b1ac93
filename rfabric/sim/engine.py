"""The event loop: fluid flows, max-min rates, stage dependencies and circuit changes.

Semantics of :func:`simulate_flows` (times in seconds, absolute):

* A flow of the first stage of its chain arrives at ``start_s + delay_s``; a flow of a later stage at
  (the finish of the chain's previous stage) ``+ delay_s``, where a stage finishes when its last flow does.
* Between events every active flow sends at its max-min fair rate (:mod:`rfabric.sim.maxmin`) on its
  route (:mod:`rfabric.sim.routing`); ``multiplicity`` ``w`` counts as ``w`` identical flows.
* A flow *drains* when its last byte leaves; it *finishes* at drain time plus its path latency when
  ``options.link_latency`` (its bandwidth is free from the drain on; dependents wait for the finish).
  Path latency is added once per flow.
* Events: arrivals, drains, circuit changes. ``changes``: at ``t`` the assignment becomes the given one;
  circuits not in it go dark at ``t``, circuits new in it come up at ``t + topology.ocs_reconfig_s``,
  circuits in both keep working. Every circuit change re-routes every flow (active ones included) on
  the circuits that are up; a flow with no path waits (rate 0) for the next change. Changes before
  ``start_s`` are applied before the first flow starts (a reconfiguration still under way at
  ``start_s`` ends on time).
* ``options.merge_tolerance`` ``eps``: at a drain event every flow whose own drain would come within
  ``eps`` times the time step is drained too (early, bytes counted in full). ``0`` (default) is exact
  up to floating-point rounding (a relative 1e-12).
* Deterministic: no randomness except the seeded ECMP hash.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from rfabric.circuits import Circuit, CircuitAssignment
from rfabric.config import SimConfig
from rfabric.errors import SimulationError
from rfabric.sim.maxmin import maxmin_rates
from rfabric.sim.routing import Fabric, FabricState, Routes
from rfabric.topology import Topology
from rfabric.workload import FlowSet

_EXACT = 1e-12


@dataclass(frozen=True, slots=True, eq=False)
class FlowTrace:
    """What happened to one set of flows.

    ``start_s`` / ``finish_s`` per flow (arrival; drain + path latency), ``end_s`` the last finish (or the
    start when there are no flows), ``events`` (distinct event instants), ``solves`` (max-min solves),
    ``bytes_by_medium`` (``nvlink``, ``electrical``, ``optical``: bytes carried, circuits = optical),
    per flow ``path_latency_s``, ``optical_share`` (share of its bytes carried by circuits) and ``nvlink``
    (stayed in the server); link utilisation per arc group sampled at every event (``util_times_s``,
    ``util`` (T, G) in 0..1, holding until the next sample, ``util_names``), ``peak_utilisation`` (the
    largest load / capacity of any arc at any instant) and ``wall_time_s``.
    """

    start_s: np.ndarray
    finish_s: np.ndarray
    end_s: float
    events: int
    solves: int
    bytes_by_medium: dict[str, float]
    path_latency_s: np.ndarray
    optical_share: np.ndarray
    nvlink: np.ndarray
    util_times_s: np.ndarray
    util: np.ndarray
    util_names: tuple[str, ...]
    peak_utilisation: float = 0.0
    iterations: int = 0
    wall_time_s: float = 0.0
    meta: dict[str, object] = field(default_factory=dict)


@dataclass(slots=True)
class _Circuits:
    """Live circuits, the target assignment and circuits waiting to come up."""

    live: frozenset[Circuit]
    target: frozenset[Circuit]
    pending: list[tuple[float, frozenset[Circuit]]]

    def change(self, new: CircuitAssignment, t: float, reconfig_s: float) -> None:
        nc = frozenset(new.circuits)
        adding = nc - self.live
        self.live = self.live & nc
        self.target = nc
        self.pending = [(tu, c & nc) for tu, c in self.pending]
        if adding:
            self.pending.append((t + reconfig_s, adding))

    def come_up(self, t: float) -> bool:
        due = [c for tu, c in self.pending if tu <= t]
        if not due:
            return False
        self.pending = [(tu, c) for tu, c in self.pending if tu > t]
        for c in due:
            self.live = self.live | (c & self.target)
        return True

    def next_up(self) -> float:
        return min((tu for tu, _ in self.pending), default=np.inf)

    def assignment(self) -> CircuitAssignment:
        return CircuitAssignment.of(self.live)


def _stage_groups(flows: FlowSet) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(stage group of each flow, flows per group, next group or -1, first-stage flag per flow)."""
    n = len(flows)
    if n == 0:
        e = np.zeros(0, dtype=np.int64)
        return e, e, e, np.zeros(0, dtype=bool)
    key = np.stack([flows.chain.astype(np.int64), flows.stage.astype(np.int64)], axis=1)
    uk, sg = np.unique(key, axis=0, return_inverse=True)
    sg = sg.ravel()
    count = np.bincount(sg, minlength=uk.shape[0])
    same_chain_next = np.r_[uk[1:, 0] == uk[:-1, 0], False]
    nxt = np.where(same_chain_next, np.arange(uk.shape[0]) + 1, -1)
    first_of_chain = np.r_[True, uk[1:, 0] != uk[:-1, 0]]
    return sg, count, nxt, first_of_chain[sg]


def run_flows(fabric: Fabric, flows: FlowSet, *, assignment: CircuitAssignment | None,
              changes: Sequence[tuple[float, CircuitAssignment]], options: SimConfig, seed: int,
              start_s: float) -> FlowTrace:
    """:func:`simulate_flows` on an already compiled :class:`Fabric` (shared across phases)."""
    wall0 = time.perf_counter()
    n = len(flows)
    reconfig_s = float(fabric.topology.ocs_reconfig_s)
    circ = _Circuits(live=frozenset(assignment.circuits) if assignment is not None else frozenset(),
                     target=frozenset(assignment.circuits) if assignment is not None else frozenset(), pending=[])
    todo = sorted(((float(t), i, a) for i, (t, a) in enumerate(changes)), key=lambda x: (x[0], x[1]))
    if any(not np.isfinite(t) for t, _, _ in todo):
        raise SimulationError("circuit change times must be finite")
    ci = 0
    t = float(start_s)
    while ci < len(todo) and todo[ci][0] <= t:
        circ.come_up(todo[ci][0])
        circ.change(todo[ci][2], todo[ci][0], reconfig_s)
        ci += 1
    circ.come_up(t)

    sg, sg_count, sg_next, first = _stage_groups(flows)
    sg_left = sg_count.copy()
    sg_finish = np.full(sg_count.size, -np.inf)
    size = flows.size_bytes.astype(np.float64)
    mult = flows.multiplicity.astype(np.float64)
    delay = flows.delay_s.astype(np.float64)
    arrival = np.where(first, t + delay, np.inf)
    start = np.full(n, np.nan)
    finish = np.full(n, np.nan)
    rem = size.copy()
    status = np.zeros(n, dtype=np.int8)  # 0 waiting, 1 active, 2 drained
    rate = np.zeros(n)
    opt_share = np.zeros(n)
    lat_used = np.zeros(n)
    by_medium = {"nvlink": 0.0, "electrical": 0.0, "optical": 0.0}
    names = fabric.group_names
    n_groups = len(names)
    ut_t: list[float] = []
    ut_v: list[np.ndarray] = []
    events = solves = iters = 0
    peak = 0.0

    state: FabricState = fabric.state(circ.assignment())
    routes: Routes = state.route(flows.src, flows.dst, ecmp=options.ecmp, seed=seed)
    need_solve = True
    inc_act: sp.csr_matrix | None = None
    act_idx = np.zeros(0, dtype=np.int64)

    def drain(idx: np.ndarray, when: float) -> None:
        """Mark flows drained at ``when``; release the next stage of chains whose stage completed."""
        nonlocal need_solve
        if idx.size == 0:
            return
        status[idx] = 2
        rem[idx] = 0.0
        rate[idx] = 0.0
        lat = routes.latency_s[idx] if options.link_latency else np.zeros(idx.size)
        lat_used[idx] = lat
        finish[idx] = when + lat
        opt_share[idx] = routes.optical[idx]
        g = sg[idx]
        np.maximum.at(sg_finish, g, finish[idx])
        np.subtract.at(sg_left, g, 1)
        done_g = np.unique(g[sg_left[g] == 0])
        nxt = sg_next[done_g]
        has = nxt >= 0
        if has.any():
            ready_at = np.full(sg_count.size, np.nan)
            ready_at[nxt[has]] = sg_finish[done_g[has]]
            m = np.isin(sg, nxt[has]) & (status == 0)
            arrival[m] = ready_at[sg[m]] + delay[m]
        need_solve = True

    for _ in range(10 * n + 10 * len(todo) + 1000):
        # --- everything that happens at t: arrivals (zero-size ones drain at once), circuit changes
        while True:
            changed = False
            arr = np.flatnonzero((status == 0) & (arrival <= t))
            if arr.size:
                status[arr] = 1
                start[arr] = arrival[arr]
                need_solve = True
                changed = True
                zero = arr[(size[arr] <= 0) | ((np.diff(routes.incidence.indptr)[arr] == 0) & ~routes.blocked[arr])]
                drain(zero, t)
            if not changed:
                break
        fabric_changed = False
        while ci < len(todo) and todo[ci][0] <= t:
            circ.come_up(todo[ci][0])
            circ.change(todo[ci][2], todo[ci][0], reconfig_s)
            ci += 1
            fabric_changed = True
        fabric_changed |= circ.come_up(t)
        if fabric_changed:
            new_state = fabric.state(circ.assignment())
            if new_state is not state:
                state = new_state
                routes = state.route(flows.src, flows.dst, ecmp=options.ecmp, seed=seed)
                need_solve = True
        active = status == 1
        if not active.any() and not np.any(status == 0):
            break
        # --- rates
        if need_solve:
            act_idx = np.flatnonzero(active & ~routes.blocked)
            inc_act = routes.incidence[act_idx]
            if act_idx.size:
                w = inc_act.multiply(mult[act_idx][:, None]).tocsr()
                r, k = maxmin_rates(w, state.capacity_bps / 8.0)  # rates in bytes/s
                solves += 1
                iters += k
            else:
                r = np.zeros(0)
            rate[:] = 0.0
            rate[act_idx] = r
            need_solve = False
        events += 1
        # --- utilisation now (holds until the next event)
        assert inc_act is not None
        flow_load = rate[act_idx] * mult[act_idx]
        finite = np.isfinite(flow_load)
        load = inc_act[finite].T @ flow_load[finite] if act_idx.size else np.zeros(fabric.num_arcs)
        cap = state.capacity_bps / 8.0
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.where(cap > 0, load / cap, np.where(load > 0, np.inf, 0.0))
        peak = max(peak, float(frac.max()) if frac.size else 0.0)
        sampled = fabric.group >= 0
        g_load = np.bincount(fabric.group[sampled], load[sampled], minlength=n_groups)
        g_cap = np.bincount(fabric.group[sampled], cap[sampled], minlength=n_groups)
        ut_t.append(t)
        ut_v.append(np.where(g_cap > 0, g_load / np.where(g_cap > 0, g_cap, 1.0), 0.0))
        # --- next event
        with np.errstate(divide="ignore", invalid="ignore"):
            ttd = np.where(rate[act_idx] > 0, rem[act_idx] / rate[act_idx], np.inf)
        t_drain = t + float(ttd.min()) if ttd.size else np.inf
        waiting = status == 0
        t_arr = float(arrival[waiting].min()) if waiting.any() else np.inf
        t_ch = min(todo[ci][0] if ci < len(todo) else np.inf, circ.next_up())
        t_next = min(t_drain, t_arr, t_ch)
        if not np.isfinite(t_next):
            stuck = np.flatnonzero(status != 2)
            f0 = int(stuck[0])
            raise SimulationError(f"{stuck.size} flow(s) can never finish: no path (e.g. flow {f0}: GPU "
                                  f"{int(flows.src[f0])} -> {int(flows.dst[f0])}) and no circuit change pending")
        dt = t_next - t
        # --- advance
        moved = np.minimum(rate[act_idx] * dt, rem[act_idx]) if act_idx.size else np.zeros(0)
        if t_next == t_drain:
            slack = ttd.min() * (_EXACT + options.merge_tolerance)
            done_local = ttd <= ttd.min() + slack
            moved[done_local] = rem[act_idx][done_local]
        else:
            done_local = np.zeros(act_idx.size, dtype=bool)
        rem[act_idx] -= moved
        bytes_moved = moved * mult[act_idx]
        nvl = routes.nvlink[act_idx]
        opt = routes.optical[act_idx]
        by_medium["nvlink"] += float(bytes_moved[nvl].sum())
        by_medium["optical"] += float((bytes_moved * opt)[~nvl].sum())
        by_medium["electrical"] += float((bytes_moved * (1.0 - opt))[~nvl].sum())
        t = t_next
        drain(act_idx[done_local], t)
    else:  # pragma: no cover
        raise SimulationError("event loop did not terminate")
    ut_t.append(t)
    ut_v.append(np.zeros(n_groups))
    # bytes of zero-route flows (src == dst) are local copies: count them as nvlink
    local = (np.diff(routes.incidence.indptr) == 0) & ~routes.blocked
    by_medium["nvlink"] += float((size * mult)[local].sum())
    end = float(np.max(finish)) if n else float(start_s)
    return FlowTrace(start_s=start, finish_s=finish, end_s=max(end, float(start_s)), events=events, solves=solves,
                     bytes_by_medium=by_medium, path_latency_s=lat_used, optical_share=opt_share,
                     nvlink=routes.nvlink.copy(), util_times_s=np.asarray(ut_t), util=np.asarray(ut_v).reshape(-1, n_groups),
                     util_names=names, peak_utilisation=peak, iterations=iters, wall_time_s=time.perf_counter() - wall0)


def simulate_flows(topology: Topology, flows: FlowSet, *, assignment: CircuitAssignment | None = None,
                   changes: Sequence[tuple[float, CircuitAssignment]] = (), options: SimConfig | None = None,
                   seed: int = 0, start_s: float = 0.0) -> FlowTrace:
    """Play ``flows`` on the physical ``topology`` with circuits ``assignment`` (then ``changes``).

    See the module docstring for the semantics. Example: one 1 GB flow between two servers on 400 Gb/s
    NICs of a non-blocking fabric finishes at 20 ms (plus its path latency when ``options.link_latency``).
    """
    opts = options or SimConfig()
    fabric = Fabric.build(topology, [assignment, *(a for _, a in changes)])
    return run_flows(fabric, flows, assignment=assignment, changes=changes, options=opts, seed=seed, start_s=start_s)


__all__ = ["FlowTrace", "simulate_flows", "run_flows"]
