"""Play a flow set on a topology in ns-3: the translator, the TCP bulk senders and the OCS controller.

The translation mirrors what the flow-level simulator sees (``logical_topology(topology, assignment)``):
every node of the logical graph becomes an ns-3 node running IPv4 with global routing (hop-count
shortest paths; equal-cost paths sprayed per packet with ``ecmp="per_packet"``, or with ``ecmp="pinned"``
every GPU pair forwarded along the flow model's own route, see :func:`pinned_routes`), every logical edge a
point-to-point link with the edge's ``capacity_bps`` and ``latency_s`` and a queue of ``queue_packets``
at each end (per-flow fair queueing by default; drop-tail FIFO, or ECN-marking RED for DCTCP, on
request). Circuits that merge into one logical edge (parallel circuits, or a circuit next to an
electrical link) are one link of the summed rate, as in the flow model.

Circuit changes are played by a Python controller that runs the simulation in segments: at time ``t``
of a change the circuits that go away leave the routes and, ``drain_s`` later, go dark (interfaces
down, anything still on them lost); at ``t + topology.ocs_reconfig_s`` the new circuits come up (links
up, at the new summed rates). Routes are recomputed after every change.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rfabric.circuits import Circuit, CircuitAssignment, logical_topology
from rfabric.errors import ConfigError
from rfabric.parsing import bounded, choice, non_negative, positive
from rfabric.topology import Medium, NodeRole, Topology
from rfabric.workload import FlowSet

log = logging.getLogger(__name__)

_TCP_TYPES = {"newreno": "ns3::TcpNewReno", "cubic": "ns3::TcpCubic", "dctcp": "ns3::TcpDctcp"}
_HEADER_BYTES = 52  # IPv4 (20) + TCP (20) + timestamp option (12)


@dataclass(frozen=True, kw_only=True, slots=True)
class PacketOptions:
    """ns-3 knobs (SI units; YAML may say ``min_rto_ms`` etc.).

    The defaults are the configuration the validation uses; why each one:

    * ``tcp="cubic"`` (``newreno``, ``dctcp`` available; DCTCP switches the queues to RED with ECN
      marking at ``ecn_threshold_packets``, but ns-3 3.44 aborts on an assertion when ECN meets the
      reordering that per-packet spraying causes, so it is only safe with ``ecmp="single"``).
    * ``queue="fq"``: every port is a per-flow deficit-round-robin queue (fq_codel with CoDel pushed out
      of reach: it drops only when ``queue_packets`` are queued; 64k buckets so flows do not collide).
      This is the packet-level embodiment of max-min fairness and keeps ACKs from queueing behind
      data. ``"fifo"`` is a plain drop-tail FIFO of ``queue_packets``. ``host_queue_packets`` sizes the
      queues of GPU and NIC ports (Linux hosts do not drop their own packets).
    * ``mtu_bytes=9000``: jumbo frames, 0.6 % header overhead and 6x fewer events than 1500 B.
    * ``ecmp="per_packet"``: packets sprayed uniformly over ns-3's equal-cost next hops (the flow model's
      ``spray``/``split`` on equal-capacity ports); ``"single"`` takes one route per destination;
      ``"pinned"`` forwards every GPU pair along the route the flow model gives it in the same circuit
      state (:func:`pinned_routes`): one path per pair under ``hash`` -- per-flow ECMP with the flow
      model's hash, which ns-3 3.44 lacks -- and a per-packet draw weighted by the route's shares under
      ``split``/``spray`` (also the capacity-weighted circuit/electrical split that ns-3 has no ECMP for). ``dupack_threshold=30`` lets TCP ride out the
      reordering that spraying causes; ``min_rto_s=5 ms`` avoids spurious timeouts when deep queues
      inflate the RTT; ``hystart`` is Cubic's slow-start exit.
    * ``drain_s``: make-before-break -- a circuit about to go dark is first taken out of the routes, and
      goes dark ``drain_s`` later, so packets already on it arrive (as an OCS controller drains a
      circuit before re-pointing it).
    * ``warmup_s``: connections are opened this long before time zero so handshakes stay out of the flow
      completion times; ``max_sim_s``: give up (unfinished flows are NaN) after this much simulated time.
    """

    tcp: str = choice("cubic", choices=tuple(_TCP_TYPES))
    queue: str = choice("fq", choices=("fq", "fifo"))
    queue_packets: int = positive(1000)
    host_queue_packets: int = positive(10000)
    mtu_bytes: int = bounded(9000, ge=576, le=65535)
    ecmp: str = choice("per_packet", choices=("per_packet", "single", "pinned"))
    spray: str = choice("random", choices=("random", "least_queued"))
    initial_cwnd_packets: int = positive(10)
    min_rto_s: float = positive(5e-3)
    socket_buffer_bytes: int = positive(16 * 2**20)
    delayed_ack_count: int = positive(2)
    delayed_ack_timeout_s: float = positive(10e-6)
    dupack_threshold: int = positive(30)
    hystart: bool = True
    drain_s: float = non_negative(20e-6)
    ecn_threshold_packets: int = positive(20)
    warmup_s: float = non_negative(1e-3)
    max_sim_s: float = positive(10.0)

    def __post_init__(self) -> None:
        if self.ecn_threshold_packets >= self.queue_packets and self.tcp == "dctcp":
            raise ConfigError("packet.ecn_threshold_packets", f"must be below queue_packets ({self.queue_packets})",
                              self.ecn_threshold_packets)


@dataclass(frozen=True, slots=True, eq=False)
class PacketTrace:
    """What ns-3 measured, aligned with the input flows (SI units, time zero = the phase start).

    ``start_s``/``finish_s``: when each flow became ready and when its last byte arrived (a flow with
    multiplicity ``w`` is ``w`` TCP connections: earliest start, last finish); NaN if it never finished
    within ``options.max_sim_s``. ``end_s``: last finish. ``wall_time_s``: host seconds for this run
    (ns-3 import excluded), ``events``: ns-3 events executed, ``drops``/``marks``: queue-disc drops and
    ECN marks, ``links``/``nodes``: size of the translated network.
    """

    start_s: np.ndarray
    finish_s: np.ndarray
    end_s: float
    wall_time_s: float
    events: int
    drops: int = 0
    marks: int = 0
    nodes: int = 0
    links: int = 0
    unfinished: int = 0
    meta: dict[str, object] = field(default_factory=dict)

    @property
    def fct_s(self) -> np.ndarray:
        return self.finish_s - self.start_s


# ------------------------------------------------------------------------------------------------------
# Circuit states and the logical links they produce


def circuit_states(topology: Topology, assignment: CircuitAssignment | None,
                   changes: Sequence[tuple[float, CircuitAssignment]]) -> list[tuple[float, frozenset[Circuit]]]:
    """The lit circuit set over time: ``[(t, circuits), ...]`` starting at 0.

    A change at ``t`` to assignment ``B`` keeps only the circuits of ``B`` already lit (the others go
    dark at ``t``) and lights all of ``B`` at ``t + topology.ocs_reconfig_s``.
    """
    lit = frozenset(assignment.circuits) if assignment is not None else frozenset()
    states = [(0.0, lit)]
    prev_end = 0.0
    for i, change in enumerate(changes):
        try:
            t, new = change
            t = float(t)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"changes[{i}]", "must be a (time_s, CircuitAssignment) pair", change) from e
        if not isinstance(new, CircuitAssignment):
            raise ConfigError(f"changes[{i}]", "must be a (time_s, CircuitAssignment) pair", change)
        if not math.isfinite(t) or t < prev_end:
            raise ConfigError(f"changes[{i}]", f"time must be finite, sorted and not inside the previous "
                              f"reconfiguration (>= {prev_end:g} s)", t)
        target = frozenset(new.circuits)
        states.append((t, lit & target))
        up = t + topology.ocs_reconfig_s
        states.append((up, target))
        lit = target
        prev_end = up
    return states


def _logical_edges(topology: Topology, states: list[tuple[float, frozenset[Circuit]]]
                   ) -> tuple[list[str], list[tuple[str, str]], np.ndarray, np.ndarray, Topology]:
    """Node names, edge list (union over states), capacity per (state, edge) and latency per edge."""
    cache: dict[frozenset[Circuit], Topology] = {}
    logical = []
    for _, lit in states:
        if lit not in cache:
            cache[lit] = logical_topology(topology, CircuitAssignment.of(lit) if lit else None)
        logical.append(cache[lit])
    base = logical[0]
    nodes = list(base.graph.nodes)
    idx = {n: i for i, n in enumerate(nodes)}
    edge_index: dict[tuple[str, str], int] = {}
    lat: list[float] = []
    for lg in logical:
        for u, v, d in lg.graph.edges(data=True):
            key = (u, v) if idx[u] <= idx[v] else (v, u)
            if key not in edge_index:
                edge_index[key] = len(edge_index)
                lat.append(float(d.get("latency_s", 0.0)))
    cap = np.zeros((len(states), len(edge_index)))
    for s, lg in enumerate(logical):
        for u, v, d in lg.graph.edges(data=True):
            key = (u, v) if idx[u] <= idx[v] else (v, u)
            cap[s, edge_index[key]] = float(d["capacity_bps"])
    return nodes, list(edge_index), cap, np.asarray(lat), base


@dataclass(frozen=True, slots=True)
class PinnedTable:
    """Next hops of every GPU pair in one circuit state: entry ``i`` forwards pair ``(src[i], dst[i])``
    (GPU indices) at logical node ``node[i]`` over logical link ``link[i]`` with weight ``share[i]`` (the
    share of the pair's bytes the flow model puts on that link)."""

    node: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    link: np.ndarray
    share: np.ndarray


def pinned_routes(topology: Topology, states: Sequence[tuple[float, frozenset[Circuit]]], flows: FlowSet,
                  nodes: Sequence[str], edges: Sequence[tuple[str, str]], *, routing: str, seed: int
                  ) -> list[PinnedTable]:
    """The flow model's route of every GPU pair of ``flows``, per circuit state, as switch next-hop tables.

    Routes come from ``rfabric.sim.Fabric`` (the simulator's own routing, ``routing`` = its ECMP mode and
    ``seed`` its hash seed), so both backends send every pair over the same links in the same shares;
    hop-by-hop forwarding with probabilities proportional to the shares leaving a node reproduces the
    per-link shares of an acyclic route exactly. Only arcs leaving a switch are listed (hosts have one way
    out). ``nodes``/``edges``: the logical network of :func:`_logical_edges`.
    """
    from rfabric.sim import Fabric

    lits = list(dict.fromkeys(lit for _, lit in states))
    fabric = Fabric.build(topology, [CircuitAssignment.of(lit) for lit in lits if lit])
    idx = {n: i for i, n in enumerate(nodes)}
    edge_of = {(u, v): e for e, (u, v) in enumerate(edges)}
    names = fabric.node_names

    def link(a: int, b: int) -> int:
        u, v = names[a], names[b]
        if u not in idx or v not in idx:
            return -1
        return edge_of.get((u, v) if idx[u] <= idx[v] else (v, u), -1)

    arc_link = np.fromiter((link(a, b) for a, b in zip(fabric.arc_src.tolist(), fabric.arc_dst.tolist(), strict=True)),
                           dtype=np.int64, count=fabric.num_arcs)
    arc_node = np.array([idx.get(names[a], -1) for a in fabric.arc_src.tolist()], dtype=np.int64)
    from_switch = fabric.sw_of_node[fabric.arc_src] >= 0
    net = flows.src != flows.dst
    pairs = np.unique(np.stack([flows.src[net], flows.dst[net]], axis=1).astype(np.int64), axis=0).reshape(-1, 2)
    cache: dict[frozenset[Circuit], PinnedTable] = {}
    out = []
    for _, lit in states:
        if lit not in cache:
            st = fabric.state(CircuitAssignment.of(lit) if lit else None)
            inc = st.route(pairs[:, 0], pairs[:, 1], ecmp=routing, seed=seed).incidence.tocoo()
            keep = from_switch[inc.col] & (inc.data > 0)
            row, col, share = inc.row[keep], inc.col[keep], inc.data[keep]
            if np.any(arc_link[col] < 0):
                raise ConfigError("topology", "a flow-model route uses a link the packet network lacks", topology.name)
            cache[lit] = PinnedTable(node=arc_node[col], src=pairs[row, 0], dst=pairs[row, 1], link=arc_link[col],
                                     share=share.astype(np.float64))
        out.append(cache[lit])
    return out


# ------------------------------------------------------------------------------------------------------
# Flows -> connections and stage groups (vectorised)


def _cumcount(keys: np.ndarray) -> np.ndarray:
    """Occurrence index of each row among equal rows (in input order)."""
    n = keys.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.lexsort(keys.T[::-1])
    sk = keys[order]
    new = np.ones(n, dtype=bool)
    new[1:] = np.any(sk[1:] != sk[:-1], axis=1)
    starts = np.flatnonzero(new)
    run_id = np.cumsum(new) - 1
    occ = np.arange(n) - starts[run_id]
    out = np.empty(n, dtype=np.int64)
    out[order] = occ
    return out


@dataclass(frozen=True, slots=True)
class _Plan:
    origin: np.ndarray  # expanded flow -> input flow
    conn: np.ndarray  # expanded flow -> connection
    conn_src: np.ndarray
    conn_dst: np.ndarray
    conn_port: np.ndarray
    group: np.ndarray  # expanded flow -> (chain, stage) group
    group_next: np.ndarray
    group_initial: np.ndarray
    bytes: np.ndarray
    delay: np.ndarray


def plan_flows(flows: FlowSet) -> _Plan:
    """Expand multiplicities, give every (src, dst, chain, replica) one TCP connection, group stages."""
    origin = np.repeat(np.arange(len(flows), dtype=np.int64), flows.multiplicity.astype(np.int64))
    src = flows.src[origin].astype(np.int64)
    dst = flows.dst[origin].astype(np.int64)
    chain = flows.chain[origin].astype(np.int64)
    stage = flows.stage[origin].astype(np.int64)
    replica = _cumcount(np.stack([chain, stage, src, dst], axis=1))
    ckeys, conn = np.unique(np.stack([dst, src, chain, replica], axis=1), axis=0, return_inverse=True)
    conn = conn.reshape(-1)
    conn_dst, conn_src = ckeys[:, 0], ckeys[:, 1]
    conn_port = 1024 + _cumcount(conn_dst[:, None])
    if conn_port.size and conn_port.max() > 65535:
        raise ConfigError("flows", "more than 64,000 connections into one GPU: too many for the packet backend",
                          int(conn_port.max() - 1023))
    gkeys, group = np.unique(np.stack([chain, stage], axis=1), axis=0, return_inverse=True)
    group = group.reshape(-1)
    same_chain_next = np.zeros(len(gkeys), dtype=bool)
    same_chain_next[:-1] = gkeys[1:, 0] == gkeys[:-1, 0]
    group_next = np.where(same_chain_next, np.arange(len(gkeys)) + 1, -1).astype(np.int64)
    group_initial = np.ones(len(gkeys), dtype=np.int64)
    group_initial[1:] = gkeys[1:, 0] != gkeys[:-1, 0]
    return _Plan(origin=origin, conn=conn.astype(np.int64), conn_src=conn_src, conn_dst=conn_dst,
                 conn_port=conn_port, group=group.astype(np.int64), group_next=group_next,
                 group_initial=group_initial, bytes=np.ascontiguousarray(flows.size_bytes[origin], dtype=np.float64),
                 delay=np.ascontiguousarray(flows.delay_s[origin], dtype=np.float64))


# ------------------------------------------------------------------------------------------------------


def _configure(ns: Any, opts: PacketOptions, seed: int) -> None:
    """Reset ns-3's global defaults and set this run's (they are process-wide in ns-3)."""
    cfg = ns.Config
    cfg.Reset()
    ns.RngSeedManager.SetSeed(int(seed) % (2**31 - 2) + 1)
    ns.RngSeedManager.SetRun(1)
    ns.RngSeedManager.ResetNextStreamIndex()  # same streams whatever ran before in this process
    cfg.SetDefault("ns3::TcpL4Protocol::SocketType", ns.TypeIdValue(ns.TypeId.LookupByName(_TCP_TYPES[opts.tcp])))
    uint = ns.UintegerValue
    cfg.SetDefault("ns3::TcpSocket::SegmentSize", uint(opts.mtu_bytes - _HEADER_BYTES))
    cfg.SetDefault("ns3::TcpSocket::SndBufSize", uint(opts.socket_buffer_bytes))
    cfg.SetDefault("ns3::TcpSocket::RcvBufSize", uint(opts.socket_buffer_bytes))
    cfg.SetDefault("ns3::TcpSocket::InitialCwnd", uint(opts.initial_cwnd_packets))
    cfg.SetDefault("ns3::TcpSocket::DelAckCount", uint(opts.delayed_ack_count))
    cfg.SetDefault("ns3::TcpSocket::DelAckTimeout", ns.TimeValue(ns.Seconds(opts.delayed_ack_timeout_s)))
    cfg.SetDefault("ns3::TcpSocket::TcpNoDelay", ns.BooleanValue(True))
    cfg.SetDefault("ns3::TcpSocketBase::ReTxThreshold", uint(opts.dupack_threshold))
    cfg.SetDefault("ns3::TcpCubic::HyStart", ns.BooleanValue(opts.hystart))
    cfg.SetDefault("ns3::TcpSocketBase::MinRto", ns.TimeValue(ns.Seconds(opts.min_rto_s)))
    cfg.SetDefault("ns3::TcpSocketBase::ClockGranularity", ns.TimeValue(ns.MicroSeconds(1)))
    cfg.SetDefault("ns3::TcpSocketBase::UseEcn", ns.StringValue("On" if opts.tcp == "dctcp" else "Off"))
    # pinned: ACKs (pairs without a pinned route) are sprayed by global routing
    cfg.SetDefault("ns3::Ipv4GlobalRouting::RandomEcmpRouting", ns.BooleanValue(opts.ecmp != "single"))


def _host_links(base: Topology, nodes: list[str], edges: list[tuple[str, str]]) -> dict[str, int]:
    """For every GPU the link whose address names it: its first non-NVLink link."""
    first: dict[str, int] = {}
    nv: dict[str, int] = {}
    for e, (u, v) in enumerate(edges):
        medium = base.graph.edges[u, v].get("medium") if base.graph.has_edge(u, v) else Medium.CIRCUIT
        for n in (u, v):
            if base.graph.nodes[n].get("role") is NodeRole.GPU:
                (nv if medium is Medium.NVLINK else first).setdefault(n, e)
    return {n: first.get(n, nv.get(n, -1)) for n in base.gpus}


def run_packet(topology: Topology, flows: FlowSet, *, assignment: CircuitAssignment | None = None,
               changes: Sequence[tuple[float, CircuitAssignment]] = (), options: PacketOptions | None = None,
               seed: int = 0, routing: str = "spray") -> PacketTrace:
    """Simulate ``flows`` on ``topology`` (with ``assignment``'s circuits, then ``changes``) in ns-3.

    The contract matches ``rfabric.sim.simulate_flows``: stage ``k`` of a chain starts when stage
    ``k-1`` has finished, plus each flow's ``delay_s``; a change at ``t`` darkens the circuits it removes
    at ``t`` and lights the new ones at ``t + topology.ocs_reconfig_s``. Times are relative to the phase
    start. ``routing``/``seed``: the flow model's routing mode and hash seed whose routes ns-3 follows when
    ``options.ecmp == "pinned"``. Needs the optional ``ns3`` package (:func:`validation.available`).
    """
    from validation._loader import load

    opts = options if options is not None else PacketOptions()
    flows.validate()
    n_gpus = topology.num_gpus
    if len(flows):
        bad = (flows.src < 0) | (flows.src >= n_gpus) | (flows.dst < 0) | (flows.dst >= n_gpus)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ConfigError("flows", f"flow {i} names a GPU outside 0..{n_gpus - 1}",
                              (int(flows.src[i]), int(flows.dst[i])))
        same = flows.src == flows.dst
        if same.any():
            i = int(np.flatnonzero(same)[0])
            raise ConfigError("flows", f"flow {i} goes from a GPU to itself", int(flows.src[i]))
    if changes and not topology.has_ocs:
        raise ConfigError("changes", f"topology '{topology.name}' has no OCS to reconfigure", len(changes))
    states = circuit_states(topology, assignment, changes)
    nodes, edges, cap, lat, base = _logical_edges(topology, states)
    idx = {n: i for i, n in enumerate(nodes)}
    host_link = _host_links(base, nodes, edges)
    plan = plan_flows(flows)
    pinned = (pinned_routes(topology, states, flows, nodes, edges, routing=routing, seed=seed)
              if opts.ecmp == "pinned" else None)

    ns, rfpkt = load()
    t_wall = time.perf_counter()
    _configure(ns, opts, seed)
    events0 = int(ns.Simulator.GetEventCount())
    fab = rfpkt.Fabric()
    fab.CreateNodes(len(nodes))
    red = opts.ecn_threshold_packets if opts.tcp == "dctcp" else 0
    peak = cap.max(axis=0) if cap.size else np.zeros(0)
    host_side = {n for n, r in base.graph.nodes(data="role") if r in (NodeRole.GPU, NodeRole.NIC)}
    for e, (u, v) in enumerate(edges):
        qu, qv = (opts.host_queue_packets if n in host_side else opts.queue_packets for n in (u, v))
        fab.AddLink(idx[u], idx[v], float(peak[e]), float(lat[e]), opts.mtu_bytes, qu, qv, red, opts.queue == "fq")
    for gname in base.gpus:
        if host_link[gname] < 0:
            raise ConfigError("topology", f"GPU '{gname}' has no link", gname)
        fab.SetHostAddress(idx[gname], host_link[gname])
    gpu_node = np.array([idx[g] for g in base.gpus], dtype=np.int64)
    for s, d, p in zip(gpu_node[plan.conn_src].tolist(), gpu_node[plan.conn_dst].tolist(),
                       plan.conn_port.tolist(), strict=True):
        fab.AddConnection(s, d, p)
    fab.AddFlows(int(plan.conn.size), plan.conn, plan.bytes, plan.delay, plan.group)
    fab.SetGroups(int(plan.group_next.size), plan.group_next, plan.group_initial)

    def set_pinned(table: PinnedTable) -> None:
        arrays = (np.ascontiguousarray(table.node), np.ascontiguousarray(gpu_node[table.src]),
                  np.ascontiguousarray(gpu_node[table.dst]), np.ascontiguousarray(table.link),
                  np.ascontiguousarray(table.share))
        fab.SetPinned(int(table.node.size), *arrays)

    if pinned is not None:
        on = np.unique(np.concatenate([t.node for t in pinned])).astype(np.int64)
        fab.EnablePinned(int(on.size), on, opts.spray == "least_queued")
        set_pinned(pinned[0])
    current = cap[0]
    for e in np.flatnonzero(current <= 0).tolist():
        fab.SetLink(int(e), 0.0)
    fab.PopulateRoutes()
    t0 = opts.warmup_s
    fab.Start(t0)

    # the OCS controller: run to each state change, re-point circuits, recompute routes
    sim = ns.Simulator
    applied = 0
    for s in range(1, len(states)):
        t_state = t0 + states[s][0]
        now = float(sim.Now().GetSeconds())
        if fab.AllDone():
            break
        if t_state > now:
            sim.Stop(ns.Seconds(t_state - now))
            sim.Run()
            if fab.AllDone():
                break
        diff = np.flatnonzero(cap[s] != current)
        dark = diff[cap[s, diff] <= 0]
        if dark.size and opts.drain_s > 0:
            for e in dark.tolist():
                fab.Drain(int(e))
            for e in np.setdiff1d(diff, dark).tolist():
                fab.SetLink(int(e), float(cap[s, e]))
            fab.RecomputeRoutes()
            if pinned is not None:
                set_pinned(pinned[s])
            sim.Stop(ns.Seconds(opts.drain_s))
            sim.Run()
            diff = dark
        for e in diff.tolist():
            fab.SetLink(int(e), float(cap[s, e]))
        if diff.size:
            fab.RecomputeRoutes()
            applied += 1
        if pinned is not None:
            set_pinned(pinned[s])
        current = cap[s]
    if not fab.AllDone():
        now = float(sim.Now().GetSeconds())
        sim.Stop(ns.Seconds(max(t0 + opts.max_sim_s - now, 0.0)))
        sim.Run()
    start = np.array(fab.start_s, dtype=np.float64)
    finish = np.array(fab.finish_s, dtype=np.float64)
    start = np.where(start < 0, np.nan, start - t0)
    finish = np.where(finish < 0, np.nan, finish - t0)
    events = int(sim.GetEventCount()) - events0
    drops, marks = int(fab.drops), int(fab.marks)
    sim.Destroy()
    wall = time.perf_counter() - t_wall

    n = len(flows)
    f_start = np.full(n, np.inf)
    np.minimum.at(f_start, plan.origin, np.where(np.isnan(start), np.inf, start))
    f_finish = np.full(n, -np.inf)
    np.maximum.at(f_finish, plan.origin, np.where(np.isnan(finish), np.inf, finish))  # unfinished wins
    f_start[~np.isfinite(f_start)] = np.nan
    f_finish[~np.isfinite(f_finish)] = np.nan  # unfinished (inf) or no replica (-inf)
    unfinished = int(np.isnan(f_finish).sum())
    if unfinished:
        log.warning("%d of %d flows did not finish within %g s of simulated time", unfinished, n, opts.max_sim_s)
    end = float(np.max(f_finish)) if n and not unfinished else (0.0 if n == 0 else math.nan)
    return PacketTrace(start_s=f_start, finish_s=f_finish, end_s=end, wall_time_s=wall, events=events,
                       drops=drops, marks=marks, nodes=len(nodes), links=len(edges), unfinished=unfinished,
                       meta={"tcp": opts.tcp, "reconfigurations": applied, "connections": int(plan.conn_src.size)})
