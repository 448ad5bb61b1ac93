"""The cross-check scenarios: small topologies built with networkx plus the flows played on them.

``rfabric.packet`` is core and must not import ``topologies``/``traffic``, so the scenario fabrics are
built here directly, following the conventions of :mod:`rfabric.topology` (node names, roles and unit
suffixed edge attributes). Every GPU is a one-GPU server: ``gpu{i} --PCIe-- nic{i} -- tor``, both links
at the NIC rate.

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

PCIE_LATENCY_S = 0.5 * US


def _switch(g: nx.Graph, name: str, role: NodeRole, *, radix: int, port_bps: float, pod: int, index: int,
            local: int = 0) -> None:
    g.add_node(name, role=role, radix=radix, port_bps=port_bps, pod=pod, index=index, local=local)


def _host(g: nx.Graph, i: int, tor: str, pod: int, bps: float, latency_s: float) -> None:
    """GPU ``i`` (a one-GPU server) and its NIC, linked to ``tor`` at ``bps``."""
    attrs = {"gpu": i, "server": i, "tor": tor, "pod": pod, "rail": 0}
    g.add_node(f"gpu{i}", role=NodeRole.GPU, **attrs)
    g.add_node(f"nic{i}", role=NodeRole.NIC, port_bps=bps, **attrs)
    _link(g, f"gpu{i}", f"nic{i}", bps, PCIE_LATENCY_S, Medium.PCIE)
    _link(g, f"nic{i}", tor, bps, latency_s)


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
        _host(g, i, f"tor{t}", t, host_bps, latency_s)
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
            _host(g, 2 * s + h, f"tor{s}", 0, host_bps, latency_s)
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
                _host(g, gpu, f"tor{t}", p, link_bps, latency_s)
                gpu += 1
    return Topology(name="fat_tree_k4", kind="fat_tree", graph=g)


def small_rfabric(*, tors: int = 4, hosts_per_tor: int = 2, agg_ports: int = 2, host_bps: float = 20 * GBPS,
                  eps_bps: float = 10 * GBPS, circuit_bps: float = 10 * GBPS, latency_s: float = 1 * US,
                  ocs_reconfig_s: float = 0.5 * MS) -> Topology:
    """A one-pod RFabric: ToRs with an always-on uplink to ``agg0`` and one OCS port each.

    The OCS ``ocs.agg.0`` has port ``t`` fibred to ``tor{t}`` and ports ``tors .. tors+agg_ports-1`` to
    ``agg1``, an aggregation switch reached only through circuits: a circuit (ToR port, agg1 port) gives
    that ToR a second uplink of ``circuit_bps``. Circuit paths are as long as the always-on ones, so both
    models spread traffic over them as equal-cost ports (fibre latency: half a hop on each side).
    """
    g = _graph("rfabric", nic_bps=host_bps, num_pods=1, tors_per_pod=tors, hosts_per_tor=hosts_per_tor,
               aggs_per_pod=2, tiers=("tor", "agg"), ocs_layers=("agg",), ocs_ports=tors + agg_ports)
    _switch(g, "agg0", NodeRole.AGG, radix=tors, port_bps=eps_bps, pod=0, index=0, local=0)
    _switch(g, "agg1", NodeRole.AGG, radix=agg_ports, port_bps=circuit_bps, pod=0, index=1, local=1)
    gpu = 0
    for t in range(tors):
        _switch(g, f"tor{t}", NodeRole.TOR, radix=hosts_per_tor + 2, port_bps=host_bps, pod=0, index=t, local=t)
        _link(g, f"tor{t}", "agg0", eps_bps, latency_s)
        for _ in range(hosts_per_tor):
            _host(g, gpu, f"tor{t}", 0, host_bps, latency_s)
            gpu += 1
    ports = tors + agg_ports
    owners = tuple(f"tor{t}" for t in range(tors)) + ("agg1",) * agg_ports
    g.add_node("ocs.agg.0", role=NodeRole.OCS, layer="agg", pod=0, index=0, ports=ports, radix=2 * ports,
               bidirectional=False, port_owner=owners, port_plane=(0,) * ports, port_peer=(-1,) * ports)
    for t in range(tors):
        _link(g, f"tor{t}", "ocs.agg.0", circuit_bps, latency_s / 2, Medium.FIBRE)
    _link(g, "agg1", "ocs.agg.0", circuit_bps, latency_s / 2, Medium.FIBRE, links=agg_ports)
    return Topology(name="small_rfabric", kind="rfabric", graph=g, ocs_reconfig_s=ocs_reconfig_s,
                    reconfigurable=True)


def uplinks(tors: Iterable[int], *, num_tors: int = 4, ocs: str = "ocs.agg.0") -> CircuitAssignment:
    """Circuits giving the listed ToRs of :func:`small_rfabric` an uplink to ``agg1`` (in port order)."""
    return CircuitAssignment.of(Circuit(ocs, t, num_tors + k) for k, t in enumerate(sorted(tors)))


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
    # GPUs 2s, 2s+1 hang off tor{s}. Long flow 0 -> 7 crosses all three links; cross flows:
    # 1 -> 2 (link 0), 2 -> 4 and 3 -> 5 (link 1), 4 -> 6 (link 2)
    src = [0, 1, 2, 3, 4]
    dst = [7, 2, 4, 5, 6]
    return Scenario("multi_bottleneck", "parking lot: one long flow and four cross flows over 10/20/10 Gb/s links",
                    topo, FlowSet.build(src, dst, 4 * MB * _scale(quick), chain=np.arange(len(src))))


def fat_tree_ring(quick: bool = False) -> Scenario:
    topo = fat_tree_k4()
    return Scenario("fat_tree_ring_all_reduce", "ring all-reduce of 64 MB over 16 hosts of a k=4 fat-tree",
                    topo, ring_all_reduce(range(16), 64 * MB * _scale(quick)))


def fat_tree_all_to_all(quick: bool = False) -> Scenario:
    topo = fat_tree_k4()
    return Scenario("fat_tree_all_to_all", "all-to-all of 64 MB per host over a k=4 fat-tree",
                    topo, all_to_all(range(16), 64 * MB * _scale(quick)))


def rfabric_transfer_change(quick: bool = False) -> Scenario:
    topo = small_rfabric()
    s = _scale(quick)
    # tor0 -> tor1 loses its second uplinks at 1 ms; tor2 -> tor3 gains them 0.5 ms later
    fs = FlowSet.build([0, 1, 4, 5], [2, 3, 6, 7], 4 * MB * s, chain=np.arange(4))
    return Scenario("rfabric_transfer_change", "transfers on a 4-ToR RFabric, circuits re-pointed mid-transfer",
                    topo, fs, assignment=uplinks([0, 1]), changes=((1.0 * MS * s, uplinks([2, 3])),))


def rfabric_ring_change(quick: bool = False) -> Scenario:
    topo = small_rfabric()
    s = _scale(quick)
    return Scenario("rfabric_ring_all_reduce_change", "ring all-reduce of 32 MB over 8 GPUs of a 4-ToR RFabric, "
                    "circuits re-pointed mid-collective", topo, ring_all_reduce(range(8), 32 * MB * s),
                    assignment=uplinks([0, 1]), changes=((10.0 * MS * s, uplinks([2, 3])),))


def rfabric_all_to_all_change(quick: bool = False) -> Scenario:
    topo = small_rfabric()
    s = _scale(quick)
    return Scenario("rfabric_all_to_all_change", "all-to-all of 16 MB per GPU over 8 GPUs of a 4-ToR RFabric, "
                    "circuits re-pointed mid-collective", topo, all_to_all(range(8), 16 * MB * s),
                    assignment=uplinks([0, 1]), changes=((4.0 * MS * s, uplinks([2, 3])),))


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
