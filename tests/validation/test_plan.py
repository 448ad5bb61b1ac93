"""The cross-check's pure-Python half: scenarios built by the real builders, flow planning, circuit
states, the flow model's routes as next-hop tables, options and the figure (no ns-3 needed)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rfabric.circuits import CircuitAssignment, check_assignment
from rfabric.config import parse_dataclass
from rfabric.errors import ConfigError
from rfabric.topology import NodeRole
from rfabric.workload import FlowSet
from validation import PacketOptions, available, circuit_states, pinned_routes
from validation.backend import _cumcount, _logical_edges, plan_flows
from validation.compare import check_names
from validation.scenarios import SCENARIOS, Case, build_case


@pytest.fixture(scope="module")
def reconfig() -> Case:
    return build_case(SCENARIOS["rfabric_all_to_all_reconfig"], quick=True)


@pytest.fixture(scope="module")
def fat_tree() -> Case:
    return build_case(SCENARIOS["fat_tree_all_to_all_hash"], quick=True)


def test_available_is_a_bool_and_the_library_imports_without_ns() -> None:
    assert isinstance(available(), bool)


def test_options_from_yaml_keys_and_errors() -> None:
    o = parse_dataclass(PacketOptions, {"min_rto_ms": 2, "queue_packets": 50, "tcp": "dctcp",
                                        "ecn_threshold_packets": 10, "ecmp": "pinned", "spray": "least_queued"},
                        "packet")
    assert o.min_rto_s == pytest.approx(2e-3) and o.queue_packets == 50 and o.spray == "least_queued"
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


# ------------------------------------------------------------------------------------------------------
# scenarios


def test_scenario_set_covers_both_routings_on_the_fat_tree() -> None:
    for r in ("hash", "spray"):
        assert any(n.startswith("fat_tree") and sc.routing == r for n, sc in SCENARIOS.items())
    assert check_names(None) == list(SCENARIOS)
    with pytest.raises(ConfigError, match="did you mean"):
        check_names(["single_flw"], "--scenario")


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_every_scenario_is_a_run_config_built_by_the_real_builders(name: str) -> None:
    sc = SCENARIOS[name]
    case = build_case(sc, quick=True)
    assert case.topology.kind == sc.config["fabrics"][0]["kind"]
    assert case.topology.graph.graph["kind"] == case.topology.kind  # from topologies.build, not by hand
    case.flows.validate()
    assert case.flows.src.max() < case.topology.num_gpus
    assert case.config.sim.routing == sc.routing == case.routing
    for a in [case.assignment, *(x for _, x in case.changes)]:
        if a is not None:
            assert check_assignment(case.topology, a) == []
    assert case.topology.has_ocs == (case.assignment is not None)
    assert bool(case.changes) == (sc.previous is not None)
    PacketOptions(**dict(sc.packet))


def test_quick_scales_the_workload_and_ring_moves_the_analytic_bytes() -> None:
    sc = SCENARIOS["fat_tree_ring_all_reduce_spray"]
    full, quick = build_case(sc), build_case(sc, quick=True)
    assert quick.flows.size_bytes.sum() == pytest.approx(full.flows.size_bytes.sum() * sc.scale_quick)
    n, size = 16, 64e6
    per_rank = np.bincount(full.flows.src, weights=full.flows.size_bytes, minlength=n)
    assert np.allclose(per_rank, 2 * (n - 1) / n * size)  # ring all-reduce: 2(n-1)/n * S per rank
    assert full.flows.stage.max() == 2 * (n - 1) - 1


def test_reconfig_scenario_starts_on_the_previous_plan(reconfig: Case) -> None:
    (t, target), = reconfig.changes
    assert t == 0.0 and reconfig.assignment is not None
    before = reconfig.assignment.pair_counts(reconfig.topology)
    after = target.pair_counts(reconfig.topology)
    # pod-local all-to-all: ToR-ToR circuits; the all-to-all over every pod: ToR-aggregation circuits
    role = reconfig.topology.graph.nodes
    assert all(role[a]["role"] is NodeRole.TOR and role[b]["role"] is NodeRole.TOR for a, b in before)
    assert all({role[a]["role"], role[b]["role"]} == {NodeRole.TOR, NodeRole.AGG} for a, b in after)
    assert reconfig.topology.ocs_reconfig_s == pytest.approx(1e-3)


# ------------------------------------------------------------------------------------------------------
# circuit states and logical links


def test_circuit_states_follow_the_change_semantics(reconfig: Case) -> None:
    a = reconfig.assignment
    assert a is not None
    b = reconfig.changes[0][1]
    states = circuit_states(reconfig.topology, a, [(2e-3, b)])
    assert [t for t, _ in states] == pytest.approx([0.0, 2e-3, 3e-3])
    assert states[0][1] == frozenset(a.circuits)
    assert states[1][1] == frozenset(a.circuits) & frozenset(b.circuits)
    assert states[2][1] == frozenset(b.circuits)
    with pytest.raises(ConfigError, match=r"changes\[1\]"):
        circuit_states(reconfig.topology, a, [(2e-3, b), (2.5e-3, a)])  # inside the reconfiguration
    with pytest.raises(ConfigError, match=r"changes\[0\]"):
        circuit_states(reconfig.topology, a, [(1e-3, "not an assignment")])  # type: ignore[list-item]
    assert circuit_states(reconfig.topology, None, ()) == circuit_states(reconfig.topology, CircuitAssignment(), ())


def test_logical_edges_capacity_per_state(reconfig: Case) -> None:
    states = circuit_states(reconfig.topology, reconfig.assignment, reconfig.changes)
    nodes, edges, cap, lat, _ = _logical_edges(reconfig.topology, states)
    assert not any(n.startswith("ocs.") for n in nodes)
    e = {frozenset(x): i for i, x in enumerate(edges)}
    direct, tree = e[frozenset(("tor0", "tor1"))], e[frozenset(("tor0", "agg1"))]
    assert cap[:, direct].tolist() == [10e9, 0.0, 0.0]  # dark at the change
    assert cap[:, tree].tolist() == [0.0, 0.0, 10e9]  # up one reconfiguration later
    assert lat[tree] == pytest.approx(1e-6)  # half a switch hop of fibre on each side
    assert np.all(cap[:, e[frozenset(("tor0", "agg0"))]] == 10e9)  # the electrical uplink stays


# ------------------------------------------------------------------------------------------------------
# the flow model's routes as next-hop tables


def _tables(case: Case, routing: str, flows: FlowSet) -> tuple[list[Any], list[str], list[tuple[str, str]]]:
    states = circuit_states(case.topology, case.assignment, case.changes)
    nodes, edges, *_ = _logical_edges(case.topology, states)
    return pinned_routes(case.topology, states, flows, nodes, edges, routing=routing, seed=0), nodes, edges


def test_split_routes_spread_a_cross_pod_pair_over_the_clos(fat_tree: Case) -> None:
    # gpu0 (tor0, pod 0) -> gpu15 (tor7, pod 3) on the k=4 fat-tree; spray is split on a Clos
    (table,), nodes, edges = _tables(fat_tree, "spray", FlowSet.build([0], [15], 1e6))
    (split,), *_ = _tables(fat_tree, "split", FlowSet.build([0], [15], 1e6))
    assert np.array_equal(table.link, split.link) and np.allclose(table.share, split.share)
    hops = defaultdict(list)
    for n, link, share in zip(table.node.tolist(), table.link.tolist(), table.share.tolist(), strict=True):
        u, v = edges[link]
        hops[nodes[n]].append((v if u == nodes[n] else u, share))
    assert sorted(hops["tor0"]) == [("agg0", 0.5), ("agg1", 0.5)]
    g = fat_tree.topology.graph
    for agg in ("agg0", "agg1"):
        assert [s for _, s in hops[agg]] == [0.25, 0.25]
        assert all(g.nodes[n]["role"] is NodeRole.CORE for n, _ in hops[agg])
    for core in (n for n in hops if n.startswith("core")):
        ((agg, share),) = hops[core]
        assert share == 0.25 and g.nodes[agg]["pod"] == 3
    assert sorted(hops["tor7"]) == [("nic15", 1.0)]
    assert len(table.node) == 2 + 4 + 4 + 2 + 1  # ToR, 2 aggs, 4 cores, 2 aggs, ToR


def test_hash_routes_are_one_path_per_pair_and_conserve_bytes(fat_tree: Case) -> None:
    flows = fat_tree.flows
    for routing in ("hash", "spray", "split"):
        (table,), nodes, edges = _tables(fat_tree, routing, flows)
        inflow: dict[tuple[int, int, str], float] = defaultdict(float)
        outflow: dict[tuple[int, int, str], float] = defaultdict(float)
        for n, s, d, link, share in zip(table.node.tolist(), table.src.tolist(), table.dst.tolist(),
                                        table.link.tolist(), table.share.tolist(), strict=True):
            u, v = edges[link]
            nxt = v if u == nodes[n] else u
            outflow[(s, d, nodes[n])] += share
            inflow[(s, d, nxt)] += share
        tor = fat_tree.topology.graph.nodes
        for (s, d, node), out in outflow.items():
            if node == tor[f"gpu{s}"]["tor"]:
                assert out == pytest.approx(1.0)  # the source ToR forwards the whole pair
            else:
                assert inflow[(s, d, node)] == pytest.approx(out)  # what arrives leaves
        if routing == "hash":
            assert set(table.share.tolist()) == {1.0}  # a single next hop everywhere


def test_pinned_routes_follow_circuit_changes(reconfig: Case) -> None:
    flows = FlowSet.build([0], [2], 1e6)  # tor0 -> tor1, the two ToRs of pod 0
    tables, nodes, edges = _tables(reconfig, "split", flows)
    via = [{edges[k] for k in t.link[t.node == nodes.index("tor0")].tolist()} for t in tables]
    assert ("tor0", "tor1") in via[0] or ("tor1", "tor0") in via[0]  # the direct circuit, then
    assert all(("tor0", "tor1") not in v and ("tor1", "tor0") not in v for v in via[1:])  # gone


def test_plot_validation_draws_the_rows() -> None:
    import matplotlib

    matplotlib.use("Agg")
    from rfabric.plotting.validation import plot_validation

    rows = [{"scenario": "a", "phase_err": -0.02, "collective_err_max": -0.03, "fct_err_median": 0.01,
             "fct_flow_s": np.array([1e-3, 2e-3]), "fct_packet_s": np.array([1.1e-3, 2.1e-3])},
            {"scenario": "b", "phase_err": 0.01, "collective_err_max": 0.01, "fct_err_median": 0.0,
             "fct_flow_s": np.zeros(0), "fct_packet_s": np.zeros(0)}]
    fig = plot_validation(rows, tolerance=0.05)
    a1, a2 = fig.axes
    assert [t.get_text() for t in a1.get_xticklabels()] == ["a", "b"]
    heights = np.array([[b.get_height() for b in c] for c in a1.containers])  # one group per metric, in %
    assert np.allclose(heights, [[-2.0, 1.0], [-3.0, 1.0], [1.0, 0.0]])
    assert len(a2.lines) == 2  # one scatter, the diagonal


def test_cli_unknown_scenario_is_exit_2_without_ns3(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from rfabric.cli import main

    assert main(["validate", "--out", str(tmp_path / "v"), "--scenario", "fat_tree_all_to_all_hsh"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--scenario" in err and "fat_tree_all_to_all_hash" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "v").exists()
