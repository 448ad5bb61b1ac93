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
* ``options.merge_tolerance`` ``eps``: at a drain event at ``t`` every flow that would drain by
  ``t + eps * (t - its arrival)`` is drained too (early, its bytes counted in full): the merged flow
  itself finishes at most ``eps`` of its duration early, but no per-flow bound holds for the others
  (an early drain frees bandwidth, and a later stage starts earlier), only an aggregate one in practice.
  Measured against ``eps = 0`` (issue #19, ``eps = 0.01``): m3's parking lot with 20,000 flows, finish
  times within 1.3 % of the absolute time, FCTs p99 16 %, max 100 % (a short flow's FCT can double);
  a 1,024-GPU Qwen3-30B-A3B sync step, step time within 0.03 %, single flows by up to 9x their own
  duration (49 % of the time since their phase started). ``eps = 0.001``: 0.05 % of absolute time, FCT
  p99 0.09 %. Compare phase and step times with ``eps > 0``, not per-flow times. ``0`` (default) is
  exact up to rounding (a relative 1e-12 of the time step).
* After an arrival or drain, rates are re-solved only in the connected components (flows sharing an
  arc or a chain) it touched; a circuit change re-routes and re-solves everything. Arc loads and
  utilisation are updated incrementally.
* Speed (all exact up to rounding): in a component touched only by drains, flows slower than the
  slowest drained flow keep their rates and only the others are re-solved, on the capacity left
  (:func:`_resolve_set`); arcs crossed by exactly the same flows count once in the solve
  (:func:`_redundant`); each distinct GPU pair is routed once; the per-event work (next drain, advance,
  drains, due arrivals, arc loads, the solve's gather) runs in numba kernels (:mod:`rfabric.sim._kernels`),
  with a numpy fallback when numba is missing or ``solver="waves"``.
* Replays (``flows.replay``, :class:`rfabric.workload.StageReplay`): a replayed block of stages is played
  by the template's own flows -- their routes, incidence rows, components and multiplicities -- with
  the replay's sizes and first-stage delay: each replay adds stage groups whose members are the template
  groups' flows (``sg_mem``), and the release of such a group re-arms those flows (size, bytes left,
  group) instead of materialising copies. A chain plays its stages one after another, so a template flow
  is never in two live stage groups at once. Equal to materialising the copies up to rounding of
  ``size * scale`` (the components of the copies are those of the template: a copy shares the template's
  arcs and chain); the run's memory is that of the template, per replay a few numbers per stage.
* Deterministic: no randomness except the seeded ECMP hash.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from rfabric.circuits import Circuit, CircuitAssignment
from rfabric.errors import SimulationError
from rfabric.sim import _loop
from rfabric.sim._kernels import (
    HAVE_NUMBA,
    advance,
    column_hashes,
    drain_flows,
    flow_components,
    next_drain,
    same_rows,
    solve_rows,
    split_by_threshold,
    split_due,
)
from rfabric.sim._kernels import add_load as _add_load_kernel
from rfabric.sim.maxmin import maxmin_rates_rows
from rfabric.sim.options import SimConfig
from rfabric.sim.routing import Fabric, FabricState, Routes
from rfabric.topology import Topology
from rfabric.workload import FlowSet

_EXACT = 1e-12
_TIE = 1e-9  # relative slack of the re-solve threshold (see _resolve_set)


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

    With replays (``flows.replay``, :class:`rfabric.workload.StageReplay`) the per-flow arrays describe each
    flow's own play; ``replay_bytes`` / ``replay_optical_bytes`` (F,) are the bytes per copy (and of those,
    the bytes on circuits) of its replays, ``replay_end_s`` (K,) when each replay's last flow finished
    (all empty without replays).
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
    instance_start_s: np.ndarray = field(default_factory=lambda: np.zeros(0))
    instance_comm_s: np.ndarray = field(default_factory=lambda: np.zeros(0))
    instance_end_s: np.ndarray = field(default_factory=lambda: np.zeros(0))
    epochs: tuple[Epoch, ...] = ()
    replay_bytes: np.ndarray = field(default_factory=lambda: np.zeros(0))
    replay_optical_bytes: np.ndarray = field(default_factory=lambda: np.zeros(0))
    replay_end_s: np.ndarray = field(default_factory=lambda: np.zeros(0))


@dataclass(frozen=True, slots=True)
class Epoch:
    """An interval in which the set of active phase instances is constant (``end_s`` is the next epoch's start).

    ``keys``: the sorted epoch keys (phase names) of the active instances; ``instances``: their ids;
    ``changed``: circuits added by the reconfiguration triggered at ``start_s`` (0 when the circuits were kept).
    """

    start_s: float
    end_s: float
    keys: tuple[str, ...]
    instances: tuple[int, ...]
    changed: int = 0


@dataclass(frozen=True, slots=True, eq=False)
class InstanceGraph:
    """Phase instances as a dependency graph, for :func:`run_flows` (the pipelined RL step).

    ``flow_instance`` (F,) int: the instance every flow belongs to. Per instance (I of them): ``before_s``
    (compute after its start and before its flows may arrive), ``after_s`` (compute after its last flow),
    ``preds`` (instances that must end before it starts) and ``key`` (its epoch key, e.g. the phase name).
    An instance *starts* when its last predecessor ends (instances without predecessors at ``start_s``);
    the first stage of each of its chains arrives at ``start + before_s + delay_s``; it *ends* at
    ``max(start + before_s, last flow finish) + after_s``.
    """

    flow_instance: np.ndarray
    before_s: np.ndarray
    after_s: np.ndarray
    preds: tuple[tuple[int, ...], ...]
    key: tuple[str, ...]

    def __post_init__(self) -> None:
        n = len(self.preds)
        if self.before_s.shape != (n,) or self.after_s.shape != (n,) or len(self.key) != n:
            raise SimulationError(f"InstanceGraph: {n} instances but before_s/after_s/key of shapes "
                                  f"{self.before_s.shape}/{self.after_s.shape}/{len(self.key)}")
        if self.flow_instance.size and (self.flow_instance.min() < 0 or self.flow_instance.max() >= n):
            raise SimulationError("InstanceGraph: a flow belongs to an instance outside 0..I-1")
        if np.any(self.before_s < 0) or np.any(self.after_s < 0):
            raise SimulationError("InstanceGraph: compute times must be >= 0")
        for i, ps in enumerate(self.preds):
            if any(not 0 <= q < n or q == i for q in ps):
                raise SimulationError(f"InstanceGraph: instance {i} has an invalid predecessor in {ps}")

    @property
    def size(self) -> int:
        return len(self.preds)


#: ``(active epoch keys, current target assignment) -> assignment to switch to`` (the same object: keep).
EpochPolicy = Callable[[tuple[str, ...], CircuitAssignment], CircuitAssignment]


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

    def apply_due(self, todo: Sequence[tuple[float, int, CircuitAssignment]], ci: int, t: float,
                  reconfig_s: float) -> tuple[int, bool]:
        """Apply the timed changes ``todo[ci:]`` due by ``t`` and bring up circuits due by ``t``.

        Returns the index of the next change and whether the live circuits or the target changed.
        """
        changed = False
        while ci < len(todo) and todo[ci][0] <= t:
            self.come_up(todo[ci][0])
            self.change(todo[ci][2], todo[ci][0], reconfig_s)
            ci += 1
            changed = True
        return ci, self.come_up(t) | changed

    def next_up(self) -> float:
        return min((tu for tu, _ in self.pending), default=np.inf)

    def assignment(self) -> CircuitAssignment:
        return CircuitAssignment.of(self.live)


def _weighted(incidence: sp.csr_matrix, mult: np.ndarray) -> sp.csr_matrix:
    """Incidence scaled by each flow's multiplicity (load per unit of per-copy rate)."""
    out = incidence.copy()
    out.data = out.data * np.repeat(mult, np.diff(out.indptr))
    return out


def _components(incidence: sp.csr_matrix, sg_order: np.ndarray, sg_ptr: np.ndarray, sg_next: np.ndarray
                ) -> np.ndarray:
    """Component label of every flow: flows sharing an arc, or a chain, belong together.

    A static partition over all flows of the run (any stage), so it is a coarsening of the components
    of the active flows at any instant: re-solving a whole static component is still exact.
    """
    nf, na = incidence.shape
    if nf == 0:
        return np.zeros(0, dtype=np.int64)
    # chain edges: each flow to the first flow of its stage group and of the next stage group
    heads = sg_order[sg_ptr[:-1]]
    grp = np.empty(nf, dtype=np.int64)
    grp[sg_order] = np.repeat(np.arange(sg_ptr.size - 1), np.diff(sg_ptr))
    nxt = sg_next[grp]
    rows = np.r_[np.arange(nf), np.flatnonzero(nxt >= 0)]
    cols = np.r_[heads[grp], heads[nxt[nxt >= 0]]]
    if HAVE_NUMBA:  # union-find: the same partition (labels numbered differently), much faster
        return flow_components(incidence.indptr.astype(np.int64), incidence.indices.astype(np.int64), na,
                               rows.astype(np.int64), cols.astype(np.int64))
    chain = sp.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(nf, nf))
    pattern = sp.csr_matrix((np.ones(incidence.nnz), incidence.indices, incidence.indptr), shape=(nf, na))
    graph = sp.bmat([[chain, pattern], [pattern.T, None]], format="csr")
    _, lab = connected_components(graph, directed=False)
    return lab[:nf].astype(np.int64)


def _stage_groups(flows: FlowSet) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(stage group of each flow, flows per group, next group or -1, first-stage flag per flow)."""
    n = len(flows)
    if n == 0:
        e = np.zeros(0, dtype=np.int64)
        return e, e, e, np.zeros(0, dtype=bool)
    ch = flows.chain.astype(np.int64)
    st = flows.stage.astype(np.int64)
    span = int(st.max()) + 1
    if ch.min() >= 0 and st.min() >= 0 and int(ch.max()) < (1 << 62) // span:
        # one integer key per (chain, stage): same order as the lexicographic unique below, much faster
        u1, sg = np.unique(ch * span + st, return_inverse=True)
        uk = np.stack([u1 // span, u1 % span], axis=1)
    else:
        uk, sg = np.unique(np.stack([ch, st], axis=1), axis=0, return_inverse=True)
    sg = sg.ravel()
    count = np.bincount(sg, minlength=uk.shape[0])
    same_chain_next = np.r_[uk[1:, 0] == uk[:-1, 0], False]
    nxt = np.where(same_chain_next, np.arange(uk.shape[0]) + 1, -1)
    first_of_chain = np.r_[True, uk[1:, 0] != uk[:-1, 0]]
    return sg, count, nxt, first_of_chain[sg]


@dataclass(frozen=True, slots=True)
class _Replays:
    """Stage groups of a run with replays: the materialised groups ``0 .. G0-1`` then one group per replayed
    stage. Per group: ``mem`` (the materialised group whose flows it plays: itself for those), ``scale``
    (size factor) and ``delay_s`` (the delay of its flows, or -1: each flow's own ``delay_s``); ``count``
    and ``next`` as :func:`_stage_groups`; ``last`` (K,) the last group of every replay."""

    g0: int
    count: np.ndarray
    next: np.ndarray
    mem: np.ndarray
    scale: np.ndarray
    delay_s: np.ndarray
    last: np.ndarray

    @property
    def on(self) -> bool:
        return self.count.size > self.g0


def _replay_groups(flows: FlowSet, sg_count: np.ndarray, sg_next: np.ndarray, sg_order: np.ndarray,
                   sg_ptr: np.ndarray) -> _Replays:
    """The stage groups of ``flows.replay`` appended to the materialised ones (see :class:`_Replays`).

    A chain's last materialised group leads to its first replay's first group; replays of a chain follow
    one another in index order. Raises :class:`SimulationError` for a replay whose template stages are
    not stages of its chain."""
    g0 = sg_count.size
    rp = flows.replay
    if rp is None or not len(rp):
        return _Replays(g0, sg_count, sg_next, np.arange(g0), np.ones(g0), np.full(g0, -1.0), np.zeros(0, np.int64))
    try:
        flows.replay_weight()
    except ValueError as e:
        raise SimulationError(str(e)) from None
    span = int(max(flows.stage.max(), (rp.first_stage + rp.stages).max())) + 1
    heads = sg_order[sg_ptr[:-1]]
    gkey = flows.chain[heads].astype(np.int64) * span + flows.stage[heads]  # ascending: groups are (chain, stage)
    nb = rp.stages.astype(np.int64)
    j = np.arange(int(nb.sum())) - np.repeat(np.cumsum(nb) - nb, nb)
    mem = np.searchsorted(gkey, np.repeat(rp.chain * span + rp.first_stage, nb) + j)
    g1 = mem.size
    ids = g0 + np.arange(g1)
    rchain = np.repeat(rp.chain, nb)
    nxt = np.r_[sg_next, np.full(g1, -1)].astype(np.int64)
    order = np.argsort(rchain, kind="stable")
    oc, oid = rchain[order], ids[order]
    same = oc[1:] == oc[:-1]
    nxt[oid[:-1][same]] = oid[1:][same]
    head = np.r_[True, ~same]
    last_g = np.flatnonzero(sg_next < 0)  # the last materialised group of every chain, by chain
    last_chain = gkey[last_g] // span
    nxt[last_g[np.searchsorted(last_chain, oc[head])]] = oid[head]
    return _Replays(g0, np.r_[sg_count, sg_count[mem]], nxt, np.r_[np.arange(g0), mem],
                    np.r_[np.ones(g0), np.repeat(rp.scale, nb)],
                    np.r_[np.full(g0, -1.0), np.where(j == 0, np.repeat(rp.delay_s, nb), -1.0)],
                    g0 + np.cumsum(nb) - 1)


def _segments(ptr: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Positions ``ptr[g]:ptr[g+1]`` of every group in ``groups``, concatenated."""
    cnt = ptr[groups + 1] - ptr[groups]
    return np.arange(int(cnt.sum())) - np.repeat(np.cumsum(cnt) - cnt, cnt) + np.repeat(ptr[groups], cnt)


def _gather(inc: sp.csr_matrix, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR arrays (indptr, indices, data) of the given rows, without building a scipy matrix."""
    pos = _segments(inc.indptr, rows)
    ptr = np.zeros(rows.size + 1, dtype=np.int64)
    np.cumsum(inc.indptr[rows + 1] - inc.indptr[rows], out=ptr[1:])
    return ptr, inc.indices[pos], inc.data[pos]


def _redundant(inc_w: sp.csr_matrix) -> tuple[sp.csr_matrix, np.ndarray]:
    """(incidence for the rate solve, representative arc of every arc).

    Arcs crossed by exactly the same flows with the same weights (e.g. a GPU's PCIe arc and its NIC's
    uplink) are one constraint: only the representative (the lowest arc id) is kept, with the smallest
    capacity of its group (see :func:`_solve_capacity`). Max-min rates are unchanged, and the solve
    shrinks (host arcs are half of a flow's arcs on a fat-tree).
    """
    na = inc_w.shape[1]
    at = inc_w.T.tocsr()
    if not at.has_sorted_indices:
        at.sort_indices()
    used = np.flatnonzero(np.diff(at.indptr) > 0)
    keys = column_hashes(at.indptr.astype(np.int64), at.indices.astype(np.int64), at.data.view(np.uint64))
    order = used[np.argsort(keys[used], kind="stable")]
    rep_of = same_rows(at.indptr.astype(np.int64), at.indices.astype(np.int64), at.data, order, keys)
    is_rep = rep_of == np.arange(na)
    if is_rep.all():
        return inc_w, rep_of
    keep = is_rep[inc_w.indices]
    ptr = np.r_[0, np.cumsum(keep)][inc_w.indptr]
    inc_s = sp.csr_matrix((inc_w.data[keep], inc_w.indices[keep], ptr), shape=inc_w.shape)
    return inc_s, rep_of


def _solve_capacity(cap: np.ndarray, rep_of: np.ndarray) -> np.ndarray:
    """Capacity of every representative arc: the smallest of its group (see :func:`_redundant`)."""
    out = cap.copy()
    np.minimum.at(out, rep_of, cap)
    return out


def _route_flows(state: FabricState, src: np.ndarray, dst: np.ndarray, ecmp: str, seed: int) -> Routes:
    """``state.route`` of every flow, routing each distinct GPU pair once (a route depends on the pair only)."""
    s64 = src.astype(np.int64)
    d64 = dst.astype(np.int64)
    if s64.size < 2:
        return state.route(src, dst, ecmp=ecmp, seed=seed)
    span = int(max(s64.max(), d64.max())) + 1
    _, first, inv = np.unique(s64 * span + d64, return_index=True, return_inverse=True)
    if first.size == s64.size:
        return state.route(src, dst, ecmp=ecmp, seed=seed)
    try:
        r = state.route(src[first], dst[first], ecmp=ecmp, seed=seed)
    except SimulationError:  # re-raise with the flow numbering of the caller
        return state.route(src, dst, ecmp=ecmp, seed=seed)
    inv = inv.ravel()
    return Routes(incidence=r.incidence[inv], latency_s=r.latency_s[inv], optical=r.optical[inv],
                  nvlink=r.nvlink[inv], blocked=r.blocked[inv])


def _resolve_set(act: np.ndarray, label: np.ndarray, rate: np.ndarray, lab_thr: np.ndarray,
                 arrived: list[np.ndarray], drained: list[np.ndarray], drained_rate: list[np.ndarray],
                 compiled: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(flows to re-solve, flows of the same components that keep their rates) after arrivals and drains.

    A component touched by an arrival is re-solved whole. In one touched only by drains, let ``s`` be
    the smallest rate of a drained flow: progressive filling below level ``s`` is unchanged by removing
    flows whose rates are all ``>= s`` (their arcs do not saturate below ``s``, and now carry less), so
    every flow of rate ``< s`` keeps it (``s`` is lowered by a relative ``_TIE`` so that rounding cannot
    separate flows tied with a drained one), and the others get the max-min rates of the capacity left by
    those (filling that residual from 0 cannot saturate an arc below ``s``). Exact up to rounding.
    ``lab_thr`` (all ``inf``) is scratch per component and is restored.
    """
    if drained:
        dl = label[np.concatenate(drained)]
        # a lower threshold is still exact; the slack keeps flows whose rate equals the drained one's
        # up to rounding (tied at the same bottleneck) in the re-solved set
        np.minimum.at(lab_thr, dl, np.concatenate(drained_rate) * (1.0 - _TIE))
    else:
        dl = label[:0]
    al = label[np.concatenate(arrived)] if arrived else label[:0]
    lab_thr[al] = -np.inf
    if compiled:
        sub = np.empty(act.size, dtype=np.int64)
        fixed = np.empty(act.size, dtype=np.int64)
        ns, nk = split_by_threshold(act, label, rate, lab_thr, sub, fixed)
        lab_thr[dl] = np.inf
        lab_thr[al] = np.inf
        return sub[:ns], fixed[:nk]
    thr = lab_thr[label[act]]
    hit = thr < np.inf
    lab_thr[dl] = np.inf
    lab_thr[al] = np.inf
    keep = hit & (rate[act] < thr)
    return act[hit & ~keep], act[keep]


def _residual(inc_w: sp.csr_matrix, fixed: np.ndarray, rate: np.ndarray, cap: np.ndarray) -> np.ndarray:
    """Capacity left on every arc by the flows ``fixed`` at their rates."""
    if fixed.size == 0:
        return cap
    ptr, arcs, dat = _gather(inc_w, fixed)
    used = np.bincount(arcs, dat * np.repeat(rate[fixed], np.diff(ptr)), minlength=cap.size)
    return cap - used


_Routed = tuple[Routes, sp.csr_matrix, sp.csr_matrix, np.ndarray, np.ndarray, np.ndarray]
ROUTE_CACHE_BYTES = 1 << 30
"""Memory the route sets of earlier circuit states of one run may keep (bytes; the current one is always
kept). 1 GiB holds every state of a 65,536-GPU pipelined step (~0.3 GB per route set of 622k flows)."""


def _routed_bytes(r: _Routed) -> int:
    """Bytes of the arrays of one route set."""
    routes, inc_w, inc_s, rep_of, label, lab_thr = r
    sparse = sum(m.data.nbytes + m.indices.nbytes + m.indptr.nbytes for m in (routes.incidence, inc_w, inc_s))
    dense = (routes.latency_s, routes.optical, routes.nvlink, routes.blocked, rep_of, label, lab_thr)
    return int(sparse + sum(a.nbytes for a in dense))


def _compile_routes(state: FabricState, flows: FlowSet, mult: np.ndarray, sg_order: np.ndarray, sg_ptr: np.ndarray,
                    sg_next: np.ndarray, routing: str, seed: int) -> _Routed:
    """Everything the loops derive from the routes of one circuit state: (routes, weighted incidence, solve
    incidence, representative arcs, component labels, per-component re-solve thresholds all ``inf``)."""
    routes = _route_flows(state, flows.src, flows.dst, routing, seed)
    inc_w = _weighted(routes.incidence, mult)
    inc_s, rep_of = _redundant(inc_w)
    g0 = sg_ptr.size - 1  # replay groups (>= g0) play flows of their chain: no new component edges
    label = _components(routes.incidence, sg_order, sg_ptr, np.where(sg_next[:g0] < g0, sg_next[:g0], -1))
    n_labels = int(label.max()) + 1 if label.size else 0
    return routes, inc_w, inc_s, rep_of, label, np.full(n_labels, np.inf)


def _capacities(state: FabricState, rep_of: np.ndarray, fabric: Fabric, sampled: np.ndarray, n_groups: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(capacity in bytes/s, its inverse, the solve capacity of representative arcs, inverse group capacity)."""
    cap = state.capacity_bps / 8.0  # bytes/s
    inv_cap = np.where(cap > 0, 1.0 / np.where(cap > 0, cap, 1.0), np.inf)
    g_cap = np.bincount(fabric.group[sampled], cap[sampled], minlength=n_groups)
    inv_gcap = np.where(g_cap > 0, 1.0 / np.where(g_cap > 0, g_cap, 1.0), 0.0)
    return cap, inv_cap, _solve_capacity(cap, rep_of), inv_gcap


def _instances(graph: InstanceGraph | None, first: np.ndarray, plays: np.ndarray | None = None) -> _loop.Instances:
    """The phase-instance state of a run (:class:`rfabric.sim._loop.Instances`; empty without ``graph``).

    ``plays`` (F,): how many times each flow is played (1 + its replays; default 1): an instance ends
    when every play of its flows finished."""
    if graph is None:
        return _loop.no_instances()
    n_inst = graph.size
    f_inst = graph.flow_instance.astype(np.int64)
    left = (np.bincount(f_inst, minlength=n_inst).astype(np.int64) if plays is None
            else np.rint(np.bincount(f_inst, weights=plays, minlength=n_inst)).astype(np.int64))
    succ: list[list[int]] = [[] for _ in range(n_inst)]
    for i, ps in enumerate(graph.preds):
        for q in set(ps):
            succ[q].append(i)
    fi = np.flatnonzero(first).astype(np.int64)
    fi = fi[np.argsort(f_inst[fi], kind="stable")]  # first-stage flows by instance
    names = sorted(set(graph.key))
    kid = {k: j for j, k in enumerate(names)}
    cap = 2 * n_inst + 1  # every instance is pushed at most twice (start, end)
    return _loop.Instances(
        flow=f_inst, left=left, fin=np.full(n_inst, -np.inf),
        start=np.full(n_inst, np.nan), comm=np.full(n_inst, np.nan), end=np.full(n_inst, np.nan),
        before=np.asarray(graph.before_s, dtype=np.float64), after=np.asarray(graph.after_s, dtype=np.float64),
        dep_left=np.array([len(set(ps)) for ps in graph.preds], dtype=np.int64),
        succ_ptr=np.r_[0, np.cumsum([len(x) for x in succ])].astype(np.int64),
        succ=np.array([j for x in succ for j in x], dtype=np.int64),
        first_ptr=np.r_[0, np.cumsum(np.bincount(f_inst[fi], minlength=n_inst))].astype(np.int64), first=fi,
        key=np.array([kid[k] for k in graph.key], dtype=np.int64), active=np.zeros(n_inst, dtype=np.bool_),
        key_count=np.zeros(len(names), dtype=np.int64), key_snap=np.zeros(len(names), dtype=np.bool_),
        ht=np.empty(cap), hk=np.empty(cap, dtype=np.int64), hi=np.empty(cap, dtype=np.int64))


@dataclass(slots=True, eq=False)
class _Run:
    """The state of one :func:`run_flows` call that both event loops start from and write into.

    Per flow (F): ``size``, ``mult``, ``delay`` (inputs), ``start`` / ``finish`` (``nan`` until known),
    ``rem`` (bytes left per copy), ``rate`` (bytes/s per copy), ``opt_share``, ``lat_used``, ``is_active``;
    stage groups (``sg`` of every flow, ``sg_count``, ``sg_next``, ``sg_order`` / ``sg_ptr`` (flows by
    group), ``sg_left``, ``sg_finish``), ``first`` (first stage of its chain); per arc ``load`` (bytes/s) and
    per arc group ``g_load``; the circuits, the routes of the current circuit state and the instances.
    With replays (``rg``, :class:`_Replays`) stage groups past the materialised ones re-arm their template
    flows (:func:`_rearm`), and a flow's group ``sg`` is the one it is playing.
    """

    fabric: Fabric
    flows: FlowSet
    options: SimConfig
    seed: int
    start_s: float
    wall0: float
    t: float
    circ: _Circuits
    todo: list[tuple[float, int, CircuitAssignment]]
    ci: int
    reconfig_s: float
    size: np.ndarray
    mult: np.ndarray
    delay: np.ndarray
    start: np.ndarray
    finish: np.ndarray
    rem: np.ndarray
    rate: np.ndarray
    opt_share: np.ndarray
    lat_used: np.ndarray
    is_active: np.ndarray
    sg: np.ndarray
    sg_count: np.ndarray
    sg_next: np.ndarray
    sg_order: np.ndarray
    sg_ptr: np.ndarray
    sg_left: np.ndarray
    sg_finish: np.ndarray
    first: np.ndarray
    load: np.ndarray
    g_load: np.ndarray
    mark: np.ndarray
    state: FabricState
    routes: Routes
    inc_w: sp.csr_matrix
    inc_s: sp.csr_matrix
    rep_of: np.ndarray
    label: np.ndarray
    lab_thr: np.ndarray
    empty_route: np.ndarray
    ins: _loop.Instances
    graph: InstanceGraph | None
    epoch_policy: EpochPolicy | None
    rg: _Replays
    tsize: np.ndarray  # the flows' own sizes (``size`` is the current play's with replays)
    saved: np.ndarray  # (F,) bool with replays: the flow's own play is in rp_out[:4]; else empty
    rp_out: np.ndarray  # (6, F): own start, finish, path latency, optical share; replays' bytes, optical bytes
    epochs: list[list] = field(default_factory=list)
    cur_keys: tuple[str, ...] | None = None
    routed: dict[FabricState, _Routed] = field(default_factory=dict)  # route sets by state, least recent first

    def reroute(self) -> bool:
        """Re-route every flow on the live circuits if they changed the fabric state; True if they did.

        A state seen before in this run gets its routes from :attr:`routed` (a pipelined step goes back and
        forth between a few circuit states: at 16,384 GPUs the Qwen3-30B-A3B RFabric step compiled five
        route sets for three states, 0.2-0.3 s each); only the per-component re-solve thresholds, which
        the loops write, start afresh. Routing is a pure function of the state, so results are identical."""
        new_state = self.fabric.state(self.circ.assignment())
        if new_state is self.state:
            return False
        self.state = new_state
        got = self.routed.pop(new_state, None)
        if got is None:
            got = _compile_routes(new_state, self.flows, self.mult, self.sg_order, self.sg_ptr, self.sg_next,
                                  self.options.routing, self.seed)
        self.routed[new_state] = got  # most recently used last
        while len(self.routed) > 1 and sum(_routed_bytes(r) for r in self.routed.values()) > ROUTE_CACHE_BYTES:
            del self.routed[next(iter(self.routed))]
        (self.routes, self.inc_w, self.inc_s, self.rep_of, self.label, lab_thr) = got
        self.lab_thr = np.full(lab_thr.size, np.inf)
        return True

    def epoch_boundary(self, now: float) -> bool:
        """Record an epoch if the active epoch keys changed and apply the epoch policy's circuits.

        Returns whether the target circuits changed (the caller re-routes)."""
        assert self.graph is not None
        act = np.flatnonzero(self.ins.active).tolist()
        keys = tuple(sorted({self.graph.key[i] for i in act}))
        if keys == self.cur_keys:
            return False
        self.cur_keys = keys
        n_added = 0
        changed = False
        if self.epoch_policy is not None and keys:
            new = self.epoch_policy(keys, CircuitAssignment.of(self.circ.target))
            if frozenset(new.circuits) != self.circ.target:
                n_added = len(frozenset(new.circuits) - self.circ.live)
                self.circ.change(new, now, self.reconfig_s)
                changed = True
        if self.epochs:
            self.epochs[-1][1] = now
        self.epochs.append([now, now, keys, tuple(act), n_added])
        return changed

    def trace(self, t_end: float, events: int, solves: int, iters: int, peak: float, by_medium: dict[str, float],
              ut_t: np.ndarray, ut_v: np.ndarray) -> FlowTrace:
        """The :class:`FlowTrace` of the finished run (utilisation samples without the closing zero row)."""
        n_groups = len(self.fabric.group_names)
        start, finish, lat_used, opt_share = self.start, self.finish, self.lat_used, self.opt_share
        rb = ro = re = np.zeros(0)
        if self.rg.on:  # the own plays of replayed flows, and their last replay folded in
            sv = self.saved
            rb = self.rp_out[4] + np.where(sv, self.size, 0.0)
            ro = self.rp_out[5] + np.where(sv, self.size * self.opt_share, 0.0)
            re = self.sg_finish[self.rg.last]
            start, finish, lat_used, opt_share = (np.where(sv, self.rp_out[i], a) for i, a in
                                                  enumerate((start, finish, lat_used, opt_share)))
            by_medium["nvlink"] += float(((self.tsize + rb) * self.mult)[self.empty_route].sum())
        else:
            # bytes of zero-route flows (src == dst) are local copies: count them as nvlink
            by_medium["nvlink"] += float((self.size * self.mult)[self.empty_route].sum())
        n = len(self.flows)
        end = max(float(np.max(self.finish)), float(np.max(re, initial=-np.inf))) if n else float(self.start_s)
        if self.graph is not None and self.graph.size:
            end = max(end, float(np.max(self.ins.end)))
            if self.epochs:
                self.epochs[-1][1] = end
        ep = tuple(Epoch(start_s=e[0], end_s=e[1], keys=e[2], instances=e[3], changed=e[4]) for e in self.epochs
                   if e[2] or e[1] > e[0])
        return FlowTrace(start_s=start, finish_s=finish, end_s=max(end, float(self.start_s)), events=events,
                         solves=solves, bytes_by_medium=by_medium, path_latency_s=lat_used,
                         optical_share=opt_share, nvlink=self.routes.nvlink.copy(),
                         util_times_s=np.r_[ut_t, t_end], util=np.concatenate([ut_v, np.zeros((1, n_groups))]),
                         util_names=self.fabric.group_names, peak_utilisation=peak, iterations=iters,
                         wall_time_s=time.perf_counter() - self.wall0, instance_start_s=self.ins.start,
                         instance_comm_s=self.ins.comm, instance_end_s=self.ins.end, epochs=ep, replay_bytes=rb,
                         replay_optical_bytes=ro, replay_end_s=re)


def _rearm(run: _Run, f: np.ndarray, g: np.ndarray) -> None:
    """Flows ``f`` (distinct) start playing replay groups ``g``: their own play is kept for the trace (first
    time) or the last replay's bytes folded into the totals; then size, bytes left and group are the new
    play's. The interpreted twin of the compiled loop's release (:mod:`rfabric.sim._loop`)."""
    sv = run.saved[f]
    own, again = f[~sv], f[sv]
    for i, a in enumerate((run.start, run.finish, run.lat_used, run.opt_share)):
        run.rp_out[i, own] = a[own]
    run.saved[own] = True
    run.rp_out[4, again] += run.size[again]
    run.rp_out[5, again] += run.size[again] * run.opt_share[again]
    run.sg[f] = g
    run.size[f] = run.tsize[f] * run.rg.scale[g]
    run.rem[f] = run.size[f]


def run_flows(fabric: Fabric, flows: FlowSet, *, assignment: CircuitAssignment | None,
              changes: Sequence[tuple[float, CircuitAssignment]], options: SimConfig, seed: int,
              start_s: float, solver: str = "auto", graph: InstanceGraph | None = None,
              epoch_policy: EpochPolicy | None = None, loop: bool = True) -> FlowTrace:
    """:func:`simulate_flows` on an already compiled :class:`Fabric` (shared across phases).

    Per event the work is proportional to the *active* flows (arrays of active and released flow ids
    are kept), except for utilisation sums over the arcs.

    ``graph``: the flows are phase instances with dependencies (see :class:`InstanceGraph`): instance
    starts and ends are events too, and the trace records each instance's start, communication start
    and end and the epochs (constant sets of active instances). ``epoch_policy``: called at every epoch
    change with the active epoch keys and the current target assignment; a different assignment returned
    is applied at once (removed circuits go dark, added ones come up ``ocs_reconfig_s`` later).
    Without ``graph`` the run is exactly the single-phase one.

    With numba (``solver`` ``auto`` or ``heap``) and ``loop``, the events run in compiled code
    (:mod:`rfabric.sim._loop`: bit-identical results, pending arrivals in a heap), returning to Python
    only for circuit changes and epoch boundaries; ``loop=False`` keeps the interpreted loop (the
    reference the tests compare against).
    """
    wall0 = time.perf_counter()
    reconfig_s = float(fabric.topology.ocs_reconfig_s)
    # the circuits live at the start, and the timed changes
    circ, todo, ci = _initial_circuits(assignment, changes, float(start_s), reconfig_s)
    # the stages of every chain (a stage is released when the previous one has drained), replays appended
    stages = _group_stages(flows)
    # route every flow on the live circuits (re-routed by the loops when the circuits change)
    mult = flows.multiplicity.astype(np.float64)
    state = fabric.state(circ.assignment())
    routed = _compile_routes(state, flows, mult, stages.order, stages.ptr, stages.next, options.routing, seed)
    run = _new_run(fabric, flows, options, seed, float(start_s), wall0, circ, todo, ci, reconfig_s, stages, mult,
                   state, routed, graph, epoch_policy)
    run.routed[state] = routed
    # run the event loop (compiled runs of events, or the interpreted reference on the numba or numpy
    # kernels) and collect the FlowTrace
    steps = _step_kernels(solver)
    if steps.compiled and loop:
        return _drive_compiled(run)
    return _drive_interpreted(run, steps)


def _initial_circuits(assignment: CircuitAssignment | None, changes: Sequence[tuple[float, CircuitAssignment]],
                      start_s: float, reconfig_s: float
                      ) -> tuple[_Circuits, list[tuple[float, int, CircuitAssignment]], int]:
    """The circuits live at ``start_s``, the timed changes in time order and the index of the next one.

    Raises :class:`SimulationError` for a change time that is not finite."""
    circ = _Circuits(live=frozenset(assignment.circuits) if assignment is not None else frozenset(),
                     target=frozenset(assignment.circuits) if assignment is not None else frozenset(), pending=[])
    todo = sorted(((float(t), i, a) for i, (t, a) in enumerate(changes)), key=lambda x: (x[0], x[1]))
    if any(not np.isfinite(t) for t, _, _ in todo):
        raise SimulationError("circuit change times must be finite")
    ci, _ = circ.apply_due(todo, 0, start_s, reconfig_s)
    return circ, todo, ci


@dataclass(frozen=True, slots=True)
class _Stages:
    """The stage groups of a flow set: ``sg`` (F,) the group of every flow, ``count`` / ``next`` per
    materialised group (:func:`_stage_groups`), ``first`` (F,) first stage of its chain, ``order`` / ``ptr``
    the flows by group (CSR), ``rg`` the groups with replays appended (:class:`_Replays`)."""

    sg: np.ndarray
    count: np.ndarray
    next: np.ndarray
    first: np.ndarray
    order: np.ndarray
    ptr: np.ndarray
    rg: _Replays


def _group_stages(flows: FlowSet) -> _Stages:
    """Group the flows into stages of their chains (a stage starts when the previous one has drained)."""
    sg, sg_count, sg_next, first = _stage_groups(flows)
    sg_order = np.argsort(sg, kind="stable")
    sg_ptr = np.r_[0, np.cumsum(sg_count)].astype(np.int64)
    rg = _replay_groups(flows, sg_count, sg_next, sg_order, sg_ptr)
    return _Stages(sg=sg, count=sg_count, next=sg_next, first=first, order=sg_order, ptr=sg_ptr, rg=rg)


def _new_run(fabric: Fabric, flows: FlowSet, options: SimConfig, seed: int, start_s: float, wall0: float,
             circ: _Circuits, todo: list[tuple[float, int, CircuitAssignment]], ci: int, reconfig_s: float,
             stages: _Stages, mult: np.ndarray, state: FabricState,
             routed: tuple[Routes, sp.csr_matrix, sp.csr_matrix, np.ndarray, np.ndarray, np.ndarray],
             graph: InstanceGraph | None, epoch_policy: EpochPolicy | None) -> _Run:
    """The state both event loops start from: every flow waiting, nothing drained, no load."""
    n = len(flows)
    rg = stages.rg
    tsize = flows.size_bytes.astype(np.float64)
    size = tsize.copy() if rg.on else tsize
    routes, inc_w, inc_s, rep_of, label, lab_thr = routed
    plays = None
    if rg.on:
        plays = 1.0 + np.bincount(rg.mem[rg.g0:], minlength=rg.g0)[stages.sg]
    return _Run(fabric=fabric, flows=flows, options=options, seed=seed, start_s=start_s, wall0=wall0, t=start_s,
                circ=circ, todo=todo, ci=ci, reconfig_s=reconfig_s, size=size,
                mult=mult, delay=flows.delay_s.astype(np.float64),
                start=np.full(n, np.nan), finish=np.full(n, np.nan), rem=size.copy(), rate=np.zeros(n),
                opt_share=np.zeros(n), lat_used=np.zeros(n), is_active=np.zeros(n, dtype=bool), sg=stages.sg,
                sg_count=rg.count, sg_next=rg.next, sg_order=stages.order, sg_ptr=stages.ptr,
                sg_left=rg.count.copy(), sg_finish=np.full(rg.count.size, -np.inf), first=stages.first,
                load=np.zeros(fabric.num_arcs), g_load=np.zeros(len(fabric.group_names)),
                mark=np.full(fabric.num_arcs, -1, dtype=np.int64),  # scratch of the compiled solve
                state=state, routes=routes, inc_w=inc_w, inc_s=inc_s, rep_of=rep_of, label=label, lab_thr=lab_thr,
                empty_route=(np.diff(routes.incidence.indptr) == 0) & ~routes.blocked,
                ins=_instances(graph, stages.first, plays), graph=graph, epoch_policy=epoch_policy, rg=rg,
                tsize=tsize, saved=np.zeros(n if rg.on else 0, dtype=np.bool_),
                rp_out=np.zeros((6, n if rg.on else 0)))


def _max_steps(run: _Run) -> int:
    """The event budget of a run: a loop past it has a bug (it raises :class:`SimulationError`)."""
    return (10 * (len(run.flows) + int(run.sg_count[run.rg.g0:].sum())) + 10 * len(run.todo)
            + 10 * run.ins.start.size + 1000)


class _Steps:
    """The per-event kernels of the interpreted event loop, in numpy: the reference.

    :class:`_CompiledSteps` is the same interface on the numba kernels of :mod:`rfabric.sim._kernels`, with
    the same results (the compiled-vs-interpreted tests compare the two). ``solver`` is the max-min method
    of :func:`rfabric.sim.maxmin.maxmin_rates_rows`.
    """

    compiled = False

    def __init__(self, solver: str) -> None:
        self.solver = solver

    def add_load(self, inc_w: sp.csr_matrix, rows: np.ndarray, rate: np.ndarray, sign: float, load: np.ndarray,
                 group: np.ndarray, g_load: np.ndarray, inv_cap: np.ndarray) -> float:
        """Add (sign=1) or remove (-1) the load of flows ``rows`` at their rates to arcs and arc groups.

        Returns the largest load / capacity over the arcs hit after an addition (``-inf`` if none).
        """
        ptr, arcs, dat = _gather(inc_w, rows)
        vals = dat * np.repeat(rate[rows], np.diff(ptr)) * sign
        np.add.at(load, arcs, vals)
        gr = group[arcs]
        ok = gr >= 0
        np.add.at(g_load, gr[ok], vals[ok])
        return float((load[arcs] * inv_cap[arcs]).max()) if arcs.size and sign > 0 else -np.inf

    def drain(self, run: _Run, idx: np.ndarray, when: float, routes: Routes, use_latency: bool) -> np.ndarray:
        """Flows ``idx`` drained at ``when``: finish times (plus path latency), stage bookkeeping.

        Returns the stage groups this completed."""
        run.rem[idx] = 0.0
        run.rate[idx] = 0.0
        lat = routes.latency_s[idx] if use_latency else np.zeros(idx.size)
        run.lat_used[idx] = lat
        run.finish[idx] = when + lat
        run.opt_share[idx] = routes.optical[idx]
        g = run.sg[idx]
        np.maximum.at(run.sg_finish, g, run.finish[idx])
        np.subtract.at(run.sg_left, g, 1)
        return np.unique(g[run.sg_left[g] == 0])

    def split_due(self, pend_idx: np.ndarray, pend_time: np.ndarray, t: float
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """(arrivals due by ``t``, the pending flows left, their times, the next arrival time)."""
        due = pend_time <= t
        arr = pend_idx[due]
        pend_idx, pend_time = pend_idx[~due], pend_time[~due]
        return arr, pend_idx, pend_time, float(pend_time.min()) if pend_time.size else np.inf

    def solve(self, inc_s: sp.csr_matrix, sub: np.ndarray, cap_s: np.ndarray, mark: np.ndarray, fixed: np.ndarray,
              rate: np.ndarray) -> tuple[np.ndarray, int]:
        """Max-min rates of flows ``sub`` on the capacity the ``fixed`` flows leave, and the iterations."""
        return maxmin_rates_rows(*_gather(inc_s, sub), _residual(inc_s, fixed, rate, cap_s), method=self.solver)

    def next_drain(self, t: float, act: np.ndarray, rate: np.ndarray, rem: np.ndarray) -> float:
        """When the first of flows ``act`` drains at the current rates (``inf`` if none will)."""
        ttd = self._time_to_drain(act, rate, rem)
        return t + float(ttd.min()) if ttd.size else np.inf

    @staticmethod
    def _time_to_drain(act: np.ndarray, rate: np.ndarray, rem: np.ndarray) -> np.ndarray:
        ra = rate[act]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(ra > 0, rem[act] / ra, np.inf)

    def advance(self, act: np.ndarray, rate: np.ndarray, rem: np.ndarray, t: float, dt: float, drains: bool,
                t_drain: float, eps: float, start: np.ndarray, mult: np.ndarray, routes: Routes,
                by_medium: dict[str, float]) -> np.ndarray:
        """Move flows ``act`` on by ``dt`` at their rates and count the bytes per medium.

        When the next event is a drain (``drains``), the flows due by ``t_drain`` (up to the merge tolerance
        ``eps``) drain with it. Returns the flows that drained."""
        ra = rate[act]
        moved = np.minimum(ra * dt, rem[act])
        if drains:
            own = t + self._time_to_drain(act, rate, rem)  # each flow's drain time at the current rates
            done_local = own <= (t_drain + _EXACT * (t_drain - t) + eps * (t_drain - start[act]))
            moved[done_local] = rem[act][done_local]
        else:
            done_local = np.zeros(act.size, dtype=bool)
        rem[act] -= moved
        bytes_moved = moved * mult[act]
        nvl = routes.nvlink[act]
        opt = routes.optical[act]
        by_medium["nvlink"] += float(bytes_moved[nvl].sum())
        by_medium["optical"] += float((bytes_moved * opt)[~nvl].sum())
        by_medium["electrical"] += float((bytes_moved * (1.0 - opt))[~nvl].sum())
        return act[done_local]


class _CompiledSteps(_Steps):
    """:class:`_Steps` on the numba kernels of :mod:`rfabric.sim._kernels` (same arithmetic, same order)."""

    compiled = True

    def add_load(self, inc_w: sp.csr_matrix, rows: np.ndarray, rate: np.ndarray, sign: float, load: np.ndarray,
                 group: np.ndarray, g_load: np.ndarray, inv_cap: np.ndarray) -> float:
        return float(_add_load_kernel(inc_w.indptr, inc_w.indices, inc_w.data, rows, rate, sign, load, group,
                                      g_load, inv_cap))

    def drain(self, run: _Run, idx: np.ndarray, when: float, routes: Routes, use_latency: bool) -> np.ndarray:
        return drain_flows(idx, when, use_latency, routes.latency_s, routes.optical, run.rem, run.rate,
                           run.lat_used, run.finish, run.opt_share, run.sg, run.sg_finish, run.sg_left)

    def split_due(self, pend_idx: np.ndarray, pend_time: np.ndarray, t: float
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        arr = np.empty(pend_idx.size, dtype=np.int64)
        na, nr, pend_min = split_due(pend_idx, pend_time, t, arr)
        return arr[:na], pend_idx[:nr], pend_time[:nr], pend_min

    def solve(self, inc_s: sp.csr_matrix, sub: np.ndarray, cap_s: np.ndarray, mark: np.ndarray, fixed: np.ndarray,
              rate: np.ndarray) -> tuple[np.ndarray, int]:
        return solve_rows(inc_s.indptr, inc_s.indices, inc_s.data, sub, cap_s, mark, fixed, rate)

    def next_drain(self, t: float, act: np.ndarray, rate: np.ndarray, rem: np.ndarray) -> float:
        return t + float(next_drain(act, rate, rem)) if act.size else np.inf

    def advance(self, act: np.ndarray, rate: np.ndarray, rem: np.ndarray, t: float, dt: float, drains: bool,
                t_drain: float, eps: float, start: np.ndarray, mult: np.ndarray, routes: Routes,
                by_medium: dict[str, float]) -> np.ndarray:
        gone_buf = np.empty(act.size, dtype=np.int64)
        nd, b_nv, b_op, b_el = advance(act, rate, rem, t, dt, drains, t_drain, _EXACT, float(eps), start, mult,
                                       routes.nvlink, routes.optical, gone_buf)
        by_medium["nvlink"] += float(b_nv)
        by_medium["optical"] += float(b_op)
        by_medium["electrical"] += float(b_el)
        return gone_buf[:nd]


def _step_kernels(solver: str) -> _Steps:
    """The numba kernels when numba is installed and ``solver`` is ``auto`` or ``heap``, else numpy."""
    return _CompiledSteps(solver) if HAVE_NUMBA and solver in ("auto", "heap") else _Steps(solver)


def _drive_interpreted(run: _Run, steps: _Steps) -> FlowTrace:
    """The event loop of :func:`run_flows` in Python, each step on ``steps``' kernels: the reference."""
    fabric, flows, options, circ, todo, reconfig_s = run.fabric, run.flows, run.options, run.circ, run.todo, run.reconfig_s
    ins, t, ci = run.ins, run.t, run.ci
    size, mult, delay, start, finish, rem, rate = run.size, run.mult, run.delay, run.start, run.finish, run.rem, run.rate
    is_active, load, g_load, mark = run.is_active, run.load, run.g_load, run.mark
    sg_count, sg_next, sg_order, sg_ptr = run.sg_count, run.sg_next, run.sg_order, run.sg_ptr
    sg_finish, empty_route = run.sg_finish, run.empty_route
    by_medium = {"nvlink": 0.0, "electrical": 0.0, "optical": 0.0}
    n_groups = len(fabric.group_names)
    sampled = fabric.group >= 0
    ut_t: list[float] = []
    ut_v: list[np.ndarray] = []
    events = solves = iters = 0
    peak = 0.0
    drained = 0

    pend_idx = np.flatnonzero(run.first).astype(np.int64)  # released flows waiting for their arrival time
    pend_time = t + delay[pend_idx]
    # --- phase instances (pipelined step): releases gated by predecessors, start/end events
    n_inst = ins.start.size
    inst_heap: list[tuple[float, int, int]] = []  # (time, 0 = end / 1 = start, instance)
    if run.graph is not None:
        pend_idx = pend_idx[:0]
        pend_time = pend_time[:0]
        for root in np.flatnonzero(ins.dep_left == 0):
            heapq.heappush(inst_heap, (t, 1, int(root)))
    pend_min = float(pend_time.min()) if pend_time.size else np.inf  # the next arrival
    active = np.zeros(0, dtype=np.int64)  # arrived, not drained (blocked ones included)

    need_solve = full_solve = True
    touched: list[np.ndarray] = []  # flows that arrived since the last solve
    touched_dr: list[np.ndarray] = []  # flows that drained since the last solve, and their last rates
    touched_dr_rate: list[np.ndarray] = []
    cap_of: FabricState | None = None
    cap = cap_s = inv_cap = inv_gcap = np.zeros(0)
    act = np.zeros(0, dtype=np.int64)  # active flows with a route (the ones that get rates)
    group = fabric.group

    def add_load(rows: np.ndarray, sign: float) -> float:
        """Add (sign=1) or remove (-1) the load of flows ``rows`` at their current rates (see :meth:`_Steps.add_load`)."""
        return steps.add_load(run.inc_w, rows, rate, sign, load, group, g_load, inv_cap)

    def drain(idx: np.ndarray, when: float) -> None:
        """Mark flows drained at ``when``; release the next stage of chains whose stage completed."""
        nonlocal need_solve, pend_idx, pend_time, pend_min, drained
        if idx.size == 0:
            return
        routes = run.routes
        drained += idx.size
        touched_dr.append(idx)
        touched_dr_rate.append(rate[idx])
        add_load(idx, -1.0)
        done_g = steps.drain(run, idx, when, routes, bool(options.link_latency))
        nxt = sg_next[done_g]
        has = nxt >= 0
        if has.any() and run.rg.on:
            ng = nxt[has]
            rel = sg_order[_segments(sg_ptr, run.rg.mem[ng])]
            gid = np.repeat(ng, sg_count[ng])
            ready = np.repeat(sg_finish[done_g[has]], sg_count[ng])
            rep = gid >= run.rg.g0
            if rep.any():
                _rearm(run, rel[rep], gid[rep])
            d = run.rg.delay_s[gid]
            pend_idx = np.concatenate([pend_idx, rel])
            pend_time = np.concatenate([pend_time, ready + np.where(d >= 0, d, delay[rel])])
            pend_min = float(pend_time.min())
        elif has.any():
            rel = sg_order[_segments(sg_ptr, nxt[has])]
            ready = np.repeat(sg_finish[done_g[has]], sg_count[nxt[has]])
            pend_idx = np.concatenate([pend_idx, rel])
            pend_time = np.concatenate([pend_time, ready + delay[rel]])
            pend_min = float(pend_time.min())
        need_solve = True
        if n_inst:
            fi_ = ins.flow[idx]
            np.maximum.at(ins.fin, fi_, finish[idx])
            np.subtract.at(ins.left, fi_, 1)
            for done in np.unique(fi_[ins.left[fi_] == 0]).tolist():
                heapq.heappush(inst_heap, (max(float(ins.fin[done]), float(ins.comm[done])) + float(ins.after[done]),
                                           0, done))

    def instance_events(now: float) -> bool:
        """Start and end the instances due at ``now``; True if any did."""
        nonlocal pend_idx, pend_time, pend_min
        changed = False
        while inst_heap and inst_heap[0][0] <= now:
            when, kind, i = heapq.heappop(inst_heap)
            changed = True
            if kind == 0:  # end
                ins.end[i] = when
                ins.active[i] = False
                for j in ins.succ[ins.succ_ptr[i]:ins.succ_ptr[i + 1]].tolist():
                    ins.dep_left[j] -= 1
                    if ins.dep_left[j] == 0:
                        heapq.heappush(inst_heap, (when, 1, j))
                continue
            ins.start[i] = when
            comm = when + float(ins.before[i])
            ins.comm[i] = comm
            ins.active[i] = True
            rel = ins.first[ins.first_ptr[i]:ins.first_ptr[i + 1]]
            if ins.left[i] == 0:
                heapq.heappush(inst_heap, (comm + float(ins.after[i]), 0, i))
            elif rel.size:
                pend_idx = np.concatenate([pend_idx, rel])
                pend_time = np.concatenate([pend_time, comm + delay[rel]])
                pend_min = float(pend_time.min())
        return changed

    for _ in range(_max_steps(run)):
        # --- everything that happens at t: instance starts/ends, arrivals (zero-size ones drain at once),
        # circuit changes
        epoch_changed = instance_events(t) if n_inst else False
        while pend_idx.size and pend_min <= t or (inst_heap and inst_heap[0][0] <= t):
            if inst_heap and inst_heap[0][0] <= t:
                epoch_changed |= instance_events(t)
                continue
            arr, pend_idx, pend_time, pend_min = steps.split_due(pend_idx, pend_time, t)
            start[arr] = t
            zero = (size[arr] <= 0) | empty_route[arr]
            active = np.concatenate([active, arr[~zero]])
            is_active[arr[~zero]] = True
            touched.append(arr)
            need_solve = True
            drain(arr[zero], t)
        ci, fabric_changed = circ.apply_due(todo, ci, t, reconfig_s)
        if epoch_changed:
            fabric_changed |= run.epoch_boundary(t)
        if fabric_changed and run.reroute():
            need_solve = full_solve = True
        if active.size == 0 and pend_idx.size == 0 and not inst_heap:
            break
        routes = run.routes
        # --- rates
        if run.state is not cap_of:
            cap_of = run.state
            cap, inv_cap, cap_s, inv_gcap = _capacities(run.state, run.rep_of, fabric, sampled, n_groups)
        if need_solve:
            act = active[~routes.blocked[active]]
            fixed = act[:0]
            if full_solve:
                rate[active] = 0.0
                sub = act
            else:
                # max-min rates decompose over the components of the flow-arc graph: only the
                # components an arrival or drain touched can change. In a component touched only by
                # drains, flows slower than the slowest drained flow keep their rates (see
                # _resolve_set); the others are re-solved on the capacity those leave.
                sub, fixed = _resolve_set(act, run.label, rate, run.lab_thr, touched, touched_dr, touched_dr_rate,
                                          steps.compiled)
                add_load(sub, -1.0)
            if sub.size:
                r, k = steps.solve(run.inc_s, sub, cap_s, mark, fixed, rate)
                rate[sub] = r
                solves += 1
                iters += k
            if full_solve:
                load[:] = 0.0
                g_load[:] = 0.0
            peak = max(peak, add_load(sub, 1.0))
            need_solve = full_solve = False
            touched.clear()
            touched_dr.clear()
            touched_dr_rate.clear()
        events += 1
        # --- utilisation now (holds until the next event)
        ut_t.append(t)
        ut_v.append(np.maximum(g_load, 0.0) * inv_gcap)
        # --- next event
        t_drain = steps.next_drain(t, act, rate, rem)
        t_arr = pend_min
        t_ch = min(todo[ci][0] if ci < len(todo) else np.inf, circ.next_up())
        if inst_heap:
            t_arr = min(t_arr, inst_heap[0][0])
        t_next = min(t_drain, t_arr, t_ch)
        if not np.isfinite(t_next):
            _stuck(flows, active if active.size else pend_idx)
        # --- advance
        gone = steps.advance(act, rate, rem, t, t_next - t, t_next == t_drain, t_drain, options.merge_tolerance,
                             start, mult, routes, by_medium)
        t = t_next
        if gone.size:
            is_active[gone] = False
            active = active[is_active[active]]
            drain(gone, t)
    else:  # pragma: no cover
        raise SimulationError("event loop did not terminate")
    return run.trace(t, events, solves, iters, peak, by_medium, np.asarray(ut_t),
                     np.asarray(ut_v).reshape(-1, n_groups))


def _stuck(flows: FlowSet, stuck: np.ndarray) -> None:
    f0 = int(stuck[0])
    raise SimulationError(f"{stuck.size} flow(s) can never finish: no path (e.g. flow {f0}: GPU "
                          f"{int(flows.src[f0])} -> {int(flows.dst[f0])}) and no circuit change pending")


def _drive_compiled(run: _Run) -> FlowTrace:
    """The event loop of :func:`run_flows` in compiled runs of events (:func:`rfabric.sim._loop.run_events`).

    Python keeps what changes the fabric: circuit changes, re-routing, capacities, and the epoch
    boundaries of a pipelined run (epoch record and policy); the kernel does the rest, instance starts
    and ends included, with the same arithmetic in the same order as the interpreted loop.
    """
    fabric, flows, options, circ, todo, ins = run.fabric, run.flows, run.options, run.circ, run.todo, run.ins
    n = len(flows)
    n_groups = len(fabric.group_names)
    sampled = fabric.group >= 0
    group = fabric.group.astype(np.int64)
    i64 = np.int64
    watch = np.zeros(run.sg_count.size, dtype=bool)
    ist = np.zeros(_loop.IST_SIZE, dtype=i64)
    fst = np.zeros(_loop.FST_SIZE)
    fst[_loop.T] = run.t
    fst[_loop.TMIN] = np.inf
    ist[_loop.NEED] = ist[_loop.FULL] = 1
    # pending arrivals: the first stage of every chain, in flow order (with instances: at their starts)
    pq = _loop.new_pending(n, np.flatnonzero(run.first) if run.graph is None else np.zeros(0, dtype=i64))
    if run.graph is None:
        _loop.release(pq, ist, 2, pq.firsts, 0, pq.firsts.size, float(run.t), run.delay, -1.0)
    else:
        for root in np.flatnonzero(ins.dep_left == 0):
            ist[_loop.IH_N] = _loop.inst_push(ins.ht, ins.hk, ins.hi, int(ist[_loop.IH_N]), run.t, 1, int(root))
    # b_act: active flows with a route, b_active: the blocked ones, both in arrival order (aseq)
    b_active, b_act, b_arr, b_dr, b_sub, b_fixed, b_gone, b_due, aseq = (np.empty(n + 1, dtype=i64) for _ in range(9))
    dr_rate = np.empty(n + 1)
    ut_t = np.empty(max(64, min(4 * n + 16, 1 << 16)))
    ut_v = np.empty((ut_t.size, n_groups))
    eps = float(options.merge_tolerance)
    use_lat = bool(options.link_latency)
    max_steps = _max_steps(run)
    cap_of: FabricState | None = None
    cap_s = inv_cap = inv_gcap = np.zeros(0)
    dm_of: np.ndarray | None = None
    ci = run.ci
    status = -1

    def csr(m: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return m.indptr.astype(i64), m.indices.astype(i64), np.asarray(m.data, dtype=np.float64)

    w, s_ = csr(run.inc_w), csr(run.inc_s)
    rp = _loop.Replays(mem=run.rg.mem.astype(i64), scale=run.rg.scale, delay=run.rg.delay_s, tsize=run.tsize,
                       saved=run.saved, out=run.rp_out)
    while True:
        t = float(fst[_loop.T])
        ci, fabric_changed = circ.apply_due(todo, ci, t, run.reconfig_s)
        if status == _loop.EPOCH:
            fabric_changed |= run.epoch_boundary(t)
            ins.key_snap[:] = ins.key_count > 0
            ist[_loop.EP_INIT] = 1
        if fabric_changed and run.reroute():
            w, s_ = csr(run.inc_w), csr(run.inc_s)
            ist[_loop.NEED] = ist[_loop.FULL] = 1
            ist[_loop.DM_OK] = 0
        if run.state is not cap_of:
            cap_of = run.state
            _, inv_cap, cap_s, inv_gcap = _capacities(run.state, run.rep_of, fabric, sampled, n_groups)
        if run.label is not dm_of:
            dm_of = run.label
            dm = _loop.new_drains(run.lab_thr.size, n)
        t_stop = min(todo[ci][0] if ci < len(todo) else np.inf, circ.next_up())
        routes = run.routes
        status = _loop.run_events(  # type: ignore[call-arg]  # numba dispatcher stubs
            ist, fst, float(t_stop), max_steps, eps, _EXACT, _TIE, use_lat, *w, *s_, cap_s, run.mark, inv_cap, group,
            run.load, run.g_load, inv_gcap, routes.latency_s, routes.optical, routes.nvlink, routes.blocked,
            run.empty_route, run.label, run.lab_thr, run.size, run.mult, run.delay, run.rem, run.rate, run.start,
            run.finish, run.lat_used, run.opt_share, run.is_active, run.sg, run.sg_finish, run.sg_left, run.sg_next,
            run.sg_ptr, run.sg_order, watch, b_active, b_act, aseq, dm, pq, b_arr, b_dr, dr_rate, b_sub, b_fixed, b_gone,
            b_due, ut_t, ut_v, ins, rp)
        if status == _loop.DONE:
            break
        if status == _loop.FULL_BUFFER:
            ut_t = np.concatenate([ut_t, np.empty(ut_t.size)])
            ut_v = np.concatenate([ut_v, np.empty_like(ut_v)])
        elif status == _loop.STUCK:
            na, nb, nh = int(ist[_loop.N_ACT]), int(ist[_loop.N_BLK]), int(ist[_loop.HEAP_N])
            act_now = np.concatenate([b_act[:na], b_active[:nb]])
            act_now = act_now[np.argsort(aseq[act_now], kind="stable")]
            _stuck(flows, act_now if act_now.size else _loop.pending_flows(pq, nh, run.sg_order, ins.first))
        elif status == _loop.LIMIT:  # pragma: no cover
            raise SimulationError("event loop did not terminate")
    nu = int(ist[_loop.N_UT])
    by_medium = {"nvlink": float(fst[_loop.B_NV]), "electrical": float(fst[_loop.B_EL]),
                 "optical": float(fst[_loop.B_OP])}
    return run.trace(float(fst[_loop.T]), int(ist[_loop.EVENTS]), int(ist[_loop.SOLVES]), int(ist[_loop.ITERS]),
                     float(fst[_loop.PEAK]), by_medium, ut_t[:nu], ut_v[:nu])


def simulate_flows(topology: Topology, flows: FlowSet, *, assignment: CircuitAssignment | None = None,
                   changes: Sequence[tuple[float, CircuitAssignment]] = (), options: SimConfig | None = None,
                   seed: int = 0, start_s: float = 0.0) -> FlowTrace:
    """Play ``flows`` on the physical ``topology`` with circuits ``assignment`` (then ``changes``).

    See the module docstring for the semantics. Example: one 1 GB flow between two servers on 400 Gb/s
    NICs of a non-blocking fabric finishes at 20 ms (plus its path latency when ``options.link_latency``).
    """
    opts = options or SimConfig()
    fabric = Fabric.build(topology, [assignment, *(a for _, a in changes)], routing=opts.routing)
    return run_flows(fabric, flows, assignment=assignment, changes=changes, options=opts, seed=seed, start_s=start_s)


__all__ = ["FlowTrace", "Epoch", "InstanceGraph", "EpochPolicy", "simulate_flows", "run_flows"]
