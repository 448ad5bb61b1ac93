"""The cross-check scenarios: small topologies built with networkx plus the flows played on them.

``rfabric.packet`` is core and must not import ``topologies``/``traffic``, so the scenario fabrics are
built here directly, following the conventions of :mod:`rfabric.topology` (node names, roles and unit
suffixed edge attributes). Every GPU is a one-GPU server whose NIC is folded into the GPU node (a GPU
links straight to its ToR at the NIC rate), which keeps ns-3 event counts small.

>>> topo = fat_tree_k4()
>>> topo.num_gpus, sum(1 for _, r in topo.graph.nodes(data="role") if r.value in ("tor", "agg", "core"))
(16, 20)
>>> len(ring_all_reduce(range(4), 4e6))  # 2(n-1) steps of n flows
24
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np

from rfabric.circuits import Circuit, CircuitAssignment
from rfabric.topology import Medium, NodeRole, Topology
from rfabric.units import GBPS, MB, MS, US
from rfabric.workload import FlowSet

# ------------------------------------------------------------------------------------------------------
# Fabrics


def _switch(g: nx.Graph, name: str, role: NodeRole, *, radix: int, port_bps: float, pod: int, index: int,
            local: int = 0) -> None:
    g.add_node(name, role=role, radix=radix, port_bps=port_bps, pod=pod, index=index, local=local)


def _gpu(g: nx.Graph, i: int, tor: str, pod: int) -> str:
    name = f"gpu{i}"
    g.add_node(name, role=NodeRole.GPU, gpu=i, server=i, tor=tor, pod=pod, rail=0)
    return name


def _link(g: nx.Graph, u: str, v: str, bps: float, latency_s: float, medium: Medium = Medium.OPTICAL,
          links: int = 1) -> None:
    g.add_edge(u, v, links=links, link_bps=bps, capacity_bps=links * bps, latency_s=latency_s, medium=medium)


def _graph(kind: str, **attrs: Any) -> nx.Graph:
    g = nx.Graph()
    g.graph.update(kind=kind, gpus_per_server=1, **attrs)
    return g


def dumbbell(n_left: int, n_right: int, *, host_bps: float = 40 * GBPS, bottleneck_bps: float = 10 * GBPS,
             latency_s: float = 1 * US) -> Topology:
    """GPUs ``0..n_left-1`` on ``tor0``, the next ``n_right`` on ``tor1``; one ``tor0``--``tor1`` link."""
    g = _graph("dumbbell", nic_bps=host_bps)
    for t in range(2):
        _switch(g, f"tor{t}", NodeRole.TOR, radix=n_left + n_right + 1, port_bps=host_bps, pod=t, index=t)
    for i in range(n_left + n_right):
        t = 0 if i < n_left else 1
        _link(g, _gpu(g, i, f"tor{t}", t), f"tor{t}", host_bps, latency_s)
    _link(g, "tor0", "tor1", bottleneck_bps, latency_s)
    return Topology(name="dumbbell", kind="dumbbell", graph=g)


def parking_lot(link_bps: Sequence[float] = (10 * GBPS, 20 * GBPS, 10 * GBPS), *, host_bps: float = 40 * GBPS,
                latency_s: float = 1 * US) -> Topology:
    """A chain of switches ``tor0 - tor1 - ... - torL`` (link ``i`` at ``link_bps[i]``), two GPUs per switch.

    GPU ``2s`` and ``2s+1`` hang off ``tor{s}``: long flows run end to end, cross flows over one link.
    """
    g = _graph("parking_lot", nic_bps=host_bps)
    n_sw = len(link_bps) + 1
    for s in range(n_sw):
        _switch(g, f"tor{s}", NodeRole.TOR, radix=4, port_bps=host_bps, pod=0, index=s, local=s)
    for s in range(n_sw):
        for h in range(2):
            _link(g, _gpu(g, 2 * s + h, f"tor{s}", 0), f"tor{s}", host_bps, latency_s)
    for i, bps in enumerate(link_bps):
        _link(g, f"tor{i}", f"tor{i + 1}", float(bps), latency_s)
    return Topology(name="parking_lot", kind="parking_lot", graph=g)


def fat_tree_k4(*, link_bps: float = 10 * GBPS, latency_s: float = 1 * US) -> Topology:
    """The 16-host 3-tier fat-tree of 4-port switches (4 pods of 2 ToR + 2 agg, 4 core), non-blocking."""
    k = 4
    half = k // 2
    g = _graph("fat_tree", nic_bps=link_bps, port_bps=link_bps, switch_radix=k, num_pods=k, tors_per_pod=half,
               aggs_per_pod=half, cores=half * half, hosts_per_tor=half, tiers=("tor", "agg", "core"))
    for c in range(half * half):
        _switch(g, f"core{c}", NodeRole.CORE, radix=k, port_bps=link_bps, pod=-1, index=c)
    gpu = 0
    for p in range(k):
        for j in range(half):
            a = p * half + j
            _switch(g, f"agg{a}", NodeRole.AGG, radix=k, port_bps=link_bps, pod=p, index=a, local=j)
            for c in range(half):
                _link(g, f"agg{a}", f"core{j * half + c}", link_bps, latency_s)
        for j in range(half):
            t = p * half + j
            _switch(g, f"tor{t}", NodeRole.TOR, radix=k, port_bps=link_bps, pod=p, index=t, local=j)
            for a in range(half):
                _link(g, f"tor{t}", f"agg{p * half + a}", link_bps, latency_s)
            for _ in range(half):
                _link(g, _gpu(g, gpu, f"tor{t}", p), f"tor{t}", link_bps, latency_s)
                gpu += 1
    return Topology(name="fat_tree_k4", kind="fat_tree", graph=g)


def small_rfabric(*, tors: int = 4, hosts_per_tor: int = 2, host_bps: float = 20 * GBPS,
                  eps_bps: float = 10 * GBPS, circuit_bps: float = 40 * GBPS, latency_s: float = 1 * US,
                  ocs_reconfig_s: float = 0.5 * MS) -> Topology:
    """A one-pod RFabric: ToRs with a thin always-on uplink to one core EPS and one port each on an OCS.

    The OCS (``ocs.agg.0``, port ``t`` fibred to ``tor{t}``) can join any two ToRs with a direct circuit
    of ``circuit_bps``; the fibre latency is half a hop on each side so a circuit costs one hop.
    """
    g = _graph("rfabric", nic_bps=host_bps, num_pods=1, tors_per_pod=tors, hosts_per_tor=hosts_per_tor,
               tiers=("tor", "core"), ocs_layers=("agg",), ocs_ports=tors)
    _switch(g, "core0", NodeRole.CORE, radix=tors, port_bps=eps_bps, pod=-1, index=0)
    gpu = 0
    for t in range(tors):
        _switch(g, f"tor{t}", NodeRole.TOR, radix=hosts_per_tor + 2, port_bps=host_bps, pod=0, index=t, local=t)
        _link(g, f"tor{t}", "core0", eps_bps, latency_s)
        for _ in range(hosts_per_tor):
            _link(g, _gpu(g, gpu, f"tor{t}", 0), f"tor{t}", host_bps, latency_s)
            gpu += 1
    owners = tuple(f"tor{t}" for t in range(tors))
    g.add_node("ocs.agg.0", role=NodeRole.OCS, layer="agg", pod=0, index=0, ports=tors, radix=2 * tors,
               bidirectional=False, port_owner=owners, port_plane=(0,) * tors, port_peer=(-1,) * tors)
    for t in range(tors):
        _link(g, f"tor{t}", "ocs.agg.0", circuit_bps, latency_s / 2, Medium.FIBRE)
    return Topology(name="small_rfabric", kind="rfabric", graph=g, ocs_reconfig_s=ocs_reconfig_s,
                    reconfigurable=True)


def pairing(pairs: Iterable[tuple[int, int]], ocs: str = "ocs.agg.0") -> CircuitAssignment:
    """Circuits joining OCS ports ``(a, b)`` (on :func:`small_rfabric`, port ``t`` is ``tor{t}``)."""
    return CircuitAssignment.of(Circuit(ocs, min(a, b), max(a, b)) for a, b in pairs)


# ------------------------------------------------------------------------------------------------------
# Flows


def ring_all_reduce(ranks: Iterable[int], size_bytes: float, *, chain: int = 0) -> FlowSet:
    """Ring all-reduce of ``size_bytes`` per rank: ``2(n-1)`` steps, each rank sends ``size/n`` to the next.

    One chain; step ``s`` is stage ``s`` (every step waits for the whole previous step).
    """
    r = np.asarray(list(ranks), dtype=np.int32)
    n = r.size
    steps = 2 * (n - 1)
    src = np.tile(r, steps)
    dst = np.tile(np.roll(r, -1), steps)
    stage = np.repeat(np.arange(steps, dtype=np.int32), n)
    return FlowSet.build(src, dst, size_bytes / n, chain=chain, stage=stage, tags=("ring_all_reduce",))


def all_to_all(ranks: Iterable[int], size_bytes: float, *, chain: int = 0) -> FlowSet:
    """Every rank sends ``size_bytes / n`` to every other rank at once (one stage)."""
    r = np.asarray(list(ranks), dtype=np.int32)
    n = r.size
    src, dst = np.meshgrid(r, r, indexing="ij")
    mask = src != dst
    return FlowSet.build(src[mask], dst[mask], size_bytes / n, chain=chain, tags=("all_to_all",))


# ------------------------------------------------------------------------------------------------------
# The scenario set


@dataclass(frozen=True, slots=True, eq=False)
class Scenario:
    """One cross-check case: a fabric, its circuits (and changes), the flows, and what to compare.

    ``ecmp`` is the flow model's ECMP mode that corresponds to the packet backend's per-packet
    spraying. Phase completion is the last finish; collective completion is the last finish of each
    chain.
    """

    name: str
    description: str
    topology: Topology
    flows: FlowSet
    assignment: CircuitAssignment | None = None
    changes: tuple[tuple[float, CircuitAssignment], ...] = ()
    ecmp: str = "split"
    meta: dict[str, Any] = field(default_factory=dict)


def _scale(quick: bool) -> float:
    return 0.25 if quick else 1.0


def single_flow(quick: bool = False) -> Scenario:
    topo = dumbbell(1, 1)
    return Scenario("single_flow", "one 8 MB flow over a 10 Gb/s link", topo,
                    FlowSet.build([0], [1], 8 * MB * _scale(quick)))


def shared_bottleneck(quick: bool = False, n: int = 4) -> Scenario:
    topo = dumbbell(n, n)
    fs = FlowSet.build(np.arange(n), np.arange(n) + n, 4 * MB * _scale(quick), chain=np.arange(n))
    return Scenario("shared_bottleneck", f"{n} equal flows through one 10 Gb/s bottleneck", topo, fs)


def staggered_arrivals(quick: bool = False, n: int = 4) -> Scenario:
    topo = dumbbell(n, n)
    s = _scale(quick)
    sizes = np.array([6, 4, 3, 2]) * MB * s
    delays = np.array([0.0, 1.0, 2.0, 3.0]) * MS * s
    fs = FlowSet.build(np.arange(n), np.arange(n) + n, sizes[:n], chain=np.arange(n), delay_s=delays[:n])
    return Scenario("staggered_arrivals", f"{n} flows of different sizes arriving 1 ms apart", topo, fs)


def multi_bottleneck(quick: bool = False) -> Scenario:
    topo = parking_lot((10 * GBPS, 20 * GBPS, 10 * GBPS))
    s = 4 * MB * _scale(quick)
    # long flow 0 -> 7 over all three links; cross flows 2->3 (link 0: tor0-tor1 from gpu 1), etc.
    src = [0, 1, 2, 3, 4]
    dst = [7, 2, 4, 5, 6]
    # link0 (10G): flows 0, 1; link1 (20G): flows 0, 2, 3; link2 (10G): flows 0, 3?? see below
    return Scenario("multi_bottleneck", "parking lot: one long flow and cross flows over 10/20/10 Gb/s links",
                    topo, FlowSet.build(src, dst, s, chain=np.arange(len(src))))


def fat_tree_ring(quick: bool = False) -> Scenario:
    topo = fat_tree_k4()
    return Scenario("fat_tree_ring_all_reduce", "ring all-reduce of 64 MB over 16 hosts of a k=4 fat-tree",
                    topo, ring_all_reduce(range(16), 64 * MB * _scale(quick)))


def fat_tree_all_to_all(quick: bool = False) -> Scenario:
    topo = fat_tree_k4()
    return Scenario("fat_tree_all_to_all", "all-to-all of 32 MB per host over a k=4 fat-tree",
                    topo, all_to_all(range(16), 32 * MB * _scale(quick)))


def rfabric_transfer_change(quick: bool = False) -> Scenario:
    topo = small_rfabric()
    s = _scale(quick)
    # tor0 -> tor2 starts on the thin EPS path and moves to a circuit; tor1 -> tor0 loses its circuit
    fs = FlowSet.build([0, 1, 2, 3], [4, 5, 0, 1], 4 * MB * s, chain=np.arange(4))
    a = pairing([(0, 1), (2, 3)])
    b = pairing([(0, 2), (1, 3)])
    return Scenario("rfabric_transfer_change", "transfers on a 4-ToR RFabric, circuits re-pointed mid-transfer",
                    topo, fs, assignment=a, changes=((1.0 * MS * s, b),))


def rfabric_ring_change(quick: bool = False) -> Scenario:
    topo = small_rfabric()
    s = _scale(quick)
    a = pairing([(0, 1), (2, 3)])
    b = pairing([(1, 2), (0, 3)])
    return Scenario("rfabric_ring_all_reduce_change", "ring all-reduce of 32 MB over 8 GPUs of a 4-ToR RFabric, "
                    "circuits re-pointed mid-collective", topo, ring_all_reduce(range(8), 32 * MB * s),
                    assignment=a, changes=((4.0 * MS * s, b),))


def rfabric_all_to_all_change(quick: bool = False) -> Scenario:
    topo = small_rfabric()
    s = _scale(quick)
    a = pairing([(0, 1), (2, 3)])
    b = pairing([(0, 2), (1, 3)])
    return Scenario("rfabric_all_to_all_change", "all-to-all of 16 MB per GPU over 8 GPUs of a 4-ToR RFabric, "
                    "circuits re-pointed mid-collective", topo, all_to_all(range(8), 16 * MB * s),
                    assignment=a, changes=((3.0 * MS * s, b),))


SCENARIOS: dict[str, Callable[[bool], Scenario]] = {
    "single_flow": single_flow,
    "shared_bottleneck": shared_bottleneck,
    "staggered_arrivals": staggered_arrivals,
    "multi_bottleneck": multi_bottleneck,
    "fat_tree_ring_all_reduce": fat_tree_ring,
    "fat_tree_all_to_all": fat_tree_all_to_all,
    "rfabric_transfer_change": rfabric_transfer_change,
    "rfabric_ring_all_reduce_change": rfabric_ring_change,
    "rfabric_all_to_all_change": rfabric_all_to_all_change,
}
