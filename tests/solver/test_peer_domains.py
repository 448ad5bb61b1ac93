"""Circuit planning on NIC-level OCS: MixNet regions (server nodes, electrical spill) and TopoOpt's
direct-connect topology (rings + demand circuits, host forwarding)."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import topologies
from rfabric.circuits import check_assignment
from rfabric.config import ClusterConfig
from rfabric.traffic_matrix import TrafficMatrix
from solver import domains, parse_options, solve_phase
from solver.direct import totient_strides

GB = 1e9


def test_mixnet_domains_are_regions_of_servers() -> None:
    topo = topologies.build("mixnet", {"switch_radix": 16, "region_servers": 4}, ClusterConfig())
    doms = domains(topo)
    assert [d.name for d in doms] == ["nic.0", "nic.1", "nic.2", "nic.3"]
    d = doms[1]
    assert d.nodes == ("host4", "host5", "host6", "host7") and not d.direct
    assert d.budget.tolist() == [6] * 4  # 6 of 8 NICs on the region's OCS
    assert d.eps_out_bps.tolist() == [2 * 400e9] * 4 and d.host_bps.tolist() == [8 * 400e9] * 4


@pytest.mark.parametrize("backend", ["greedy", "highs"])
def test_mixnet_pair_gets_its_six_circuits(backend: str) -> None:
    topo = topologies.build("mixnet", {"switch_radix": 16, "region_servers": 4}, ClusterConfig())
    # every GPU of server 0 sends to the matching GPU of server 1: 8 NICs' worth, 6 circuits + 2 electrical
    tm = TrafficMatrix.from_pairs(128, np.arange(8), np.arange(8, 16), np.full(8, GB))
    res = solve_phase(topo, tm, parse_options({"backend": backend}))
    check_assignment(topo, res.assignment)
    assert res.assignment.pair_counts(topo) == {("host0", "host1"): 6}
    assert res.objective == pytest.approx(1.0)
    # traffic leaving the region rides the two electrical NICs only: alpha 2/8
    out = TrafficMatrix.from_pairs(128, np.arange(8), np.arange(32, 40), np.full(8, GB))
    res = solve_phase(topo, out, parse_options({"backend": backend}))
    assert res.objective == pytest.approx(0.25)


def test_totient_strides_are_coprime_and_spread() -> None:
    for n in (2, 5, 16, 30, 2048):
        s = totient_strides(n, 4)
        assert s[0] == 1 and len(set(s)) == len(s) and all(np.gcd(x, n) == 1 and 1 <= x <= max(n // 2, 1) for x in s)


def test_topoopt_plan_rings_then_demand() -> None:
    cluster = ClusterConfig()  # 16 servers of 8 GPUs: 8 NIC planes, ring_planes 2
    topo = topologies.build("topoopt", {}, cluster)
    # heavy demand server 0 <-> server 5 plus a little everywhere on a ring
    src = np.concatenate([np.arange(8), np.arange(0, 128, 8)])
    dst = np.concatenate([np.arange(40, 48), (np.arange(0, 128, 8) + 8) % 128])
    size = np.concatenate([np.full(8, 10 * GB), np.full(16, GB)])
    res = solve_phase(topo, TrafficMatrix.from_pairs(128, src, dst, size), parse_options({"backend": "highs"}))
    check_assignment(topo, res.assignment)
    (dom,) = res.domains
    assert dom.stage == "direct" and np.isnan(res.objective)
    x = dom.x
    assert np.all(x.sum(axis=1) <= 8) and np.array_equal(x, x.T)
    assert x[0, 5] >= 2  # the heavy pair got direct circuits beyond the ring
    g = nx.from_numpy_array((x > 0).astype(int))
    assert nx.is_connected(g)  # every server reaches every other over host forwarding
    # deterministic
    again = solve_phase(topo, TrafficMatrix.from_pairs(128, src, dst, size), parse_options({"backend": "highs"}))
    assert again.assignment == res.assignment


@settings(max_examples=25, deadline=None)
@given(servers=st.integers(2, 12), gps=st.sampled_from([2, 4]), rings=st.sampled_from([0, 2, 4]),
       pairs=st.lists(st.tuples(st.integers(0, 47), st.integers(0, 47), st.integers(1, 9)), max_size=30))
def test_direct_plan_respects_ports_and_connects(servers: int, gps: int, rings: int,
                                                 pairs: list[tuple[int, int, int]]) -> None:
    n = servers * gps
    cluster = ClusterConfig(trainer_gpus=gps * (servers // 2 or 1), rollout_gpus=gps * (servers - (servers // 2 or 1)),
                            gpus_per_server=gps)
    rings = min(rings, gps)
    topo = topologies.build("topoopt", {"ring_planes": rings}, cluster)
    src = [a % n for a, _, _ in pairs]
    dst = [b % n for _, b, _ in pairs]
    tm = TrafficMatrix.from_pairs(n, src, dst, [float(w) * GB for _, _, w in pairs])
    res = solve_phase(topo, tm, parse_options({"backend": "greedy"}))
    check_assignment(topo, res.assignment)  # ports exist, none used twice, no self-circuit
    if not res.domains:
        return
    x = res.domains[0].x
    assert np.all(x.sum(axis=1) <= gps) and np.array_equal(x, x.T)
    if res.domains[0].t0_s > 0:
        # no two ports left free on one device (they could have made a circuit); rings connect every server
        used = {(c.ocs, p) for c in res.assignment.circuits for p in (c.port_a, c.port_b)}
        for o in topo.ocs_nodes:
            owner = topo.graph.nodes[o]["port_owner"]
            assert sum(1 for p, h in enumerate(owner) if h and (o, p) not in used) <= 1
        if rings >= 2:
            assert nx.is_connected(nx.from_numpy_array((x > 0).astype(int)))


def test_direct_demand_weighs_each_phase_at_its_own_line_rate() -> None:
    from types import SimpleNamespace

    from solver.planner import direct_demand

    topo = topologies.build("topoopt", {}, ClusterConfig())  # 16 servers of 8 GPUs
    heavy = TrafficMatrix.from_pairs(128, np.arange(8), np.arange(8, 16), np.full(8, 100 * GB))  # server 0 -> 1
    light = TrafficMatrix.from_pairs(128, np.arange(16, 24), np.arange(24, 32), np.full(8, GB))  # server 2 -> 3
    wl = SimpleNamespace(phases=[SimpleNamespace(traffic=heavy), SimpleNamespace(traffic=light)])
    (d,) = direct_demand(topo, wl, parse_options({})).values()  # type: ignore[arg-type]
    # each phase saturates its sender's 8 NICs: 8 circuits' worth, whatever its bytes
    assert d[0, 1] == pytest.approx(8.0) and d[2, 3] == pytest.approx(8.0) and d.sum() == pytest.approx(16.0)
    assert direct_demand(topologies.build("mixnet", {"switch_radix": 16}, ClusterConfig()), wl,  # type: ignore[arg-type]
                         parse_options({})) == {}
