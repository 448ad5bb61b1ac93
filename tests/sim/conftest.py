"""Small fabrics for the simulator tests: hand-built line topologies and cached builder topologies."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import networkx as nx

import topologies
from rfabric.config import ClusterConfig
from rfabric.topology import Medium, NodeRole, Topology

BIG_BPS = 1e15  # host links that never limit anything


def line_topology(switch_caps_bps: Sequence[float], *, hosts_per_switch: int = 1, nic_bps: float = BIG_BPS,
                  latency_s: float = 0.0) -> Topology:
    """Switches ``tor0 - tor1 - ... - torK`` joined by links of the given capacities; each switch has
    ``hosts_per_switch`` GPUs (GPU ``g`` on switch ``g // hosts_per_switch``) with a NIC link of ``nic_bps``.
    """
    g = nx.Graph()
    k = len(switch_caps_bps) + 1
    for s in range(k):
        g.add_node(f"tor{s}", role=NodeRole.TOR, radix=64, port_bps=nic_bps, pod=0, index=s)
    for s, cap in enumerate(switch_caps_bps):
        g.add_edge(f"tor{s}", f"tor{s + 1}", links=1, link_bps=cap, capacity_bps=cap, latency_s=latency_s,
                   medium=Medium.OPTICAL)
    for gi in range(k * hosts_per_switch):
        tor = f"tor{gi // hosts_per_switch}"
        g.add_node(f"gpu{gi}", role=NodeRole.GPU, gpu=gi, server=gi, tor=tor, pod=0)
        g.add_node(f"nic{gi}", role=NodeRole.NIC, gpu=gi, server=gi, tor=tor, pod=0, port_bps=nic_bps)
        g.add_edge(f"gpu{gi}", f"nic{gi}", links=1, link_bps=BIG_BPS, capacity_bps=BIG_BPS, latency_s=0.0,
                   medium=Medium.PCIE)
        g.add_edge(f"nic{gi}", tor, links=1, link_bps=nic_bps, capacity_bps=nic_bps, latency_s=latency_s,
                   medium=Medium.COPPER)
    return Topology(name="line", kind="line", graph=g)


@cache
def built(kind: str, gpus: int = 64, gps: int = 8, **params: object) -> Topology:
    half = gpus // 2
    return topologies.build(kind, dict(params), ClusterConfig(trainer_gpus=half, rollout_gpus=gpus - half,
                                                              gpus_per_server=gps))
