"""Shared fixtures for the topology tests: the structural invariant checker run over every builder."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import numpy as np
import pytest
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from rfabric.circuits import logical_topology
from rfabric.config import ClusterConfig
from rfabric.topology import SWITCH_ROLES, Medium, NodeRole, Topology


def check_invariants(topo: Topology, cluster: ClusterConfig) -> None:
    """Every builder, every size: raises AssertionError naming the first broken rule."""
    g = topo.graph
    gps = cluster.gpus_per_server
    # GPUs: count, attributes, NIC and ToR wiring
    assert topo.num_gpus == cluster.gpus
    for i, name in enumerate(topo.gpus):
        d = g.nodes[name]
        assert name == f"gpu{i}" and d["gpu"] == i and d["server"] == i // gps
        tor = d["tor"]
        if g.graph.get("host_forwarding"):  # NICs on a server node (mixnet, topoopt): nic -> host -> ToR
            host = f"host{i // gps}"
            assert g.nodes[host]["role"] is NodeRole.HOST and g.nodes[host]["server"] == d["server"]
            assert g.has_edge(name, f"nic{i}") and g.has_edge(f"nic{i}", host)
            assert g.nodes[host]["pod"] == d["pod"] and g.nodes[host]["tor"] == tor
            if tor:
                assert g.nodes[tor]["role"] is NodeRole.TOR and g.has_edge(host, tor)
                assert g.nodes[tor]["pod"] == d["pod"]
            continue
        assert g.nodes[tor]["role"] is NodeRole.TOR
        assert g.has_edge(name, f"nic{i}") and g.has_edge(f"nic{i}", tor)
        assert g.nodes[tor]["pod"] == d["pod"] == g.nodes[f"nic{i}"]["pod"]
        if gps > 1:
            assert g.edges[name, f"nvs{i // gps}"]["medium"] is Medium.NVLINK
    # edges: positive capacity, consistent with links * link_bps
    for u, v, d in g.edges(data=True):
        assert d["links"] >= 1 and d["link_bps"] > 0 and d["capacity_bps"] > 0, (u, v, d)
        assert d["capacity_bps"] == pytest.approx(d["links"] * d["link_bps"])
        assert d["latency_s"] >= 0
    # switches: never more ports than the radix
    used: Counter[str] = Counter()
    for u, v, d in g.edges(data=True):
        for x in (u, v):
            if g.nodes[x]["role"] in SWITCH_ROLES:
                used[x] += d["links"]
    for n, d in g.nodes(data=True):
        if d["role"] in SWITCH_ROLES:
            assert used[n] <= d["radix"], f"{n} uses {used[n]} ports > radix {d['radix']}"
            assert d["port_bps"] > 0
            assert (d["pod"] == -1) == (d["role"] is NodeRole.CORE)
    # OCS: every port owned at most once, edges match the port owners, ports fit the device
    for o in topo.ocs_nodes:
        d = g.nodes[o]
        owner = d["port_owner"]
        assert len(owner) == d["ports"] == len(d["port_plane"]) == len(d["port_peer"])
        assert d["ports"] * (1 if d["bidirectional"] else 2) <= d["radix"]
        counts = Counter(x for x in owner if x)
        for sw, c in counts.items():
            assert g.nodes[sw]["role"] in (SWITCH_ROLES if d["layer"] != "nic" else (NodeRole.HOST,))
            e = g.edges[sw, o]
            assert e["medium"] is Medium.FIBRE and e["links"] == c
        assert sum(e["links"] for _, _, e in g.edges(o, data=True)) == sum(counts.values())
        for port, peer in enumerate(d["port_peer"]):
            if peer >= 0:
                assert d["port_peer"][peer] == port and owner[port] and owner[peer]
        if d["layer"] == "agg" and d["pod"] >= 0:  # a per-pod plane (pod -1: planes spanning pods)
            assert all(g.nodes[x]["pod"] == d["pod"] for x in counts)
        elif d["layer"] == "agg":
            assert all(g.nodes[x]["role"] in (NodeRole.TOR, NodeRole.AGG) for x in counts)
        elif d["layer"] == "nic":  # one region's servers (mixnet) / every server (topoopt)
            assert d["pod"] >= 0
        else:
            assert d["pod"] == -1
    # always-on reachability: every GPU reaches every other without any circuit
    lt = logical_topology(topo).compile()
    n = lt.num_nodes
    adj = coo_matrix((np.ones(lt.num_arcs), (lt.arc_src, lt.arc_dst)), shape=(n, n))
    _, label = connected_components(adj, directed=False)
    if topo.kind == "topoopt":  # direct-connect: servers meet only over circuits
        servers = np.array([g.nodes[x]["server"] for x in topo.gpus])
        for s_ in np.unique(servers):
            assert np.unique(label[lt.gpu_node[servers == s_]]).size == 1, "a server is split"
        return
    if topo.kind == "jupiter":  # pods meet only over circuits
        pods = np.array([g.nodes[x]["pod"] for x in topo.gpus])
        for p in np.unique(pods):  # ... but every pod is reachable inside
            assert np.unique(label[lt.gpu_node[pods == p]]).size == 1, "a pod is split on the always-on fabric"
        return
    assert np.unique(label[lt.gpu_node]).size == 1, "GPUs not all reachable over the always-on fabric"


@pytest.fixture
def invariants() -> Callable[[Topology, ClusterConfig], None]:
    return check_invariants
