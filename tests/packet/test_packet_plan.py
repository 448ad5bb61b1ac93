"""The packet backend's pure-Python half: flow planning, circuit states, options, scenario fabrics (no ns-3)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rfabric.circuits import CircuitAssignment, check_assignment
from rfabric.config import parse_dataclass
from rfabric.errors import ConfigError
from rfabric.packet import PacketOptions, available, circuit_states
from rfabric.packet.backend import _cumcount, _logical_edges, plan_flows
from rfabric.packet.scenarios import (
    SCENARIOS,
    all_to_all,
    dumbbell,
    fat_tree_k4,
    ring_all_reduce,
    small_rfabric,
    uplinks,
)
from rfabric.topology import Medium, NodeRole
from rfabric.workload import FlowSet


def test_available_is_a_bool_and_core_imports_without_ns() -> None:
    assert isinstance(available(), bool)


def test_options_from_yaml_keys_and_errors() -> None:
    o = parse_dataclass(PacketOptions, {"min_rto_ms": 2, "queue_packets": 50, "tcp": "dctcp",
                                        "ecn_threshold_packets": 10}, "packet")
    assert o.min_rto_s == pytest.approx(2e-3) and o.queue_packets == 50
    with pytest.raises(ConfigError, match="packet.tcp"):
        parse_dataclass(PacketOptions, {"tcp": "reno2"}, "packet")
    with pytest.raises(ConfigError, match="packet.queue_packet"):
        parse_dataclass(PacketOptions, {"queue_packet": 5}, "packet")
    with pytest.raises(ConfigError, match="ecn_threshold_packets"):
        PacketOptions(tcp="dctcp", queue_packets=10, ecn_threshold_packets=20)


def test_plan_connections_groups_and_replicas() -> None:
    # chain 0: stage 0 (0->1, 0->1 twice via multiplicity), stage 2 (0->1); chain 1: one flow 1->0
    fs = FlowSet.build([0, 0, 1], [1, 1, 0], [10.0, 20.0, 30.0], chain=[0, 0, 1], stage=[0, 2, 0],
                       multiplicity=[2, 1, 1])
    p = plan_flows(fs)
    assert p.origin.tolist() == [0, 0, 1, 2]
    # the two replicas of flow 0 need two connections; stage 2 reuses the first one
    assert p.conn[0] != p.conn[1] and p.conn[2] == p.conn[0]
    assert len(p.conn_src) == 3
    # groups: (0,0), (0,2), (1,0); (0,0) -> (0,2) -> end; chain 1 separate
    assert p.group.tolist() == [0, 0, 1, 2]
    assert p.group_next.tolist() == [1, -1, -1]
    assert p.group_initial.tolist() == [1, 0, 1]
    # ports unique per destination GPU
    for d in np.unique(p.conn_dst):
        ports = p.conn_port[p.conn_dst == d]
        assert len(set(ports.tolist())) == ports.size


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=1, max_size=40))
def test_cumcount_property(rows: list[tuple[int, int]]) -> None:
    keys = np.array(rows, dtype=np.int64)
    occ = _cumcount(keys)
    seen: dict[tuple[int, int], int] = {}
    for r, o in zip(rows, occ.tolist(), strict=True):
        assert o == seen.get(r, 0)
        seen[r] = o + 1


def test_circuit_states_follow_the_change_semantics() -> None:
    topo = small_rfabric(ocs_reconfig_s=1e-3)
    a, b = uplinks([0, 1]), uplinks([0, 2])
    states = circuit_states(topo, a, [(2e-3, b)])
    assert [t for t, _ in states] == pytest.approx([0.0, 2e-3, 3e-3])
    assert states[0][1] == frozenset(a.circuits)
    assert states[1][1] == frozenset(a.circuits) & frozenset(b.circuits)  # tor0's circuit is unchanged
    assert len(states[1][1]) == 1
    assert states[2][1] == frozenset(b.circuits)
    with pytest.raises(ConfigError, match=r"changes\[1\]"):
        circuit_states(topo, a, [(2e-3, b), (2.5e-3, a)])  # inside the reconfiguration
    with pytest.raises(ConfigError, match=r"changes\[0\]"):
        circuit_states(topo, a, [(1e-3, "not an assignment")])  # type: ignore[list-item]


def test_logical_edges_capacity_per_state() -> None:
    topo = small_rfabric()
    states = circuit_states(topo, uplinks([0, 1]), [(1e-3, uplinks([2, 3]))])
    nodes, edges, cap, lat, base = _logical_edges(topo, states)
    assert "ocs.agg.0" not in nodes
    e = {frozenset(x): i for i, x in enumerate(edges)}
    t0 = e[frozenset(("tor0", "agg1"))]
    t2 = e[frozenset(("tor2", "agg1"))]
    assert cap[:, t0].tolist() == [10e9, 0.0, 0.0]
    assert cap[:, t2].tolist() == [0.0, 0.0, 10e9]
    assert lat[t0] == pytest.approx(1e-6)  # half a hop of fibre on each side
    assert np.all(cap[:, e[frozenset(("tor0", "agg0"))]] == 10e9)


def test_scenario_fabrics_follow_topology_conventions() -> None:
    ft = fat_tree_k4()
    g = ft.graph
    assert ft.num_gpus == 16
    assert sum(1 for _, r in g.nodes(data="role") if r is NodeRole.CORE) == 4
    for _u, _v, d in g.edges(data=True):
        assert d["capacity_bps"] == d["links"] * d["link_bps"]
        assert isinstance(d["medium"], Medium)
    rf = small_rfabric()
    assert check_assignment(rf, uplinks([0, 1])) == []
    assert rf.with_circuits(uplinks([0, 1])).graph.edges["tor0", "agg1"]["medium"] is Medium.CIRCUIT
    db = dumbbell(2, 2)
    assert db.graph.edges["tor0", "tor1"]["capacity_bps"] == 10e9


def test_collective_flow_builders_move_the_analytic_bytes() -> None:
    n, size = 8, 8e6
    ring = ring_all_reduce(range(n), size)
    per_rank = np.bincount(ring.src, weights=ring.size_bytes, minlength=n)
    assert np.allclose(per_rank, 2 * (n - 1) / n * size)
    assert ring.stage.max() == 2 * (n - 1) - 1
    a2a = all_to_all(range(n), size)
    assert len(a2a) == n * (n - 1)
    assert np.allclose(np.bincount(a2a.dst, weights=a2a.size_bytes, minlength=n), (n - 1) / n * size)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_every_scenario_is_well_formed(name: str) -> None:
    sc = SCENARIOS[name](True)
    assert sc.name == name
    sc.flows.validate()
    assert sc.flows.src.max() < sc.topology.num_gpus
    for a in [sc.assignment, *(x for _, x in sc.changes)]:
        if a is not None:
            assert check_assignment(sc.topology, a) == []
    assert sc.topology.has_ocs == bool(sc.changes or sc.assignment)


def test_empty_assignment_is_like_none() -> None:
    topo = small_rfabric()
    s1 = circuit_states(topo, None, ())
    s2 = circuit_states(topo, CircuitAssignment(), ())
    assert s1 == s2 == [(0.0, frozenset())]
