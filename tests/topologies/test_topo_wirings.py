"""The RFabric plants (``wiring``): the ``span`` default counted by hand, its planes crossing pods, the
named variants, and the default's weight sync on circuits."""

from __future__ import annotations

import warnings

import pytest

import topologies
from rfabric.bom import bill_of_materials, bisection_bandwidth_bps
from rfabric.circuits import check_assignment
from rfabric.config import ClusterConfig
from rfabric.topology import NodeRole
from topologies import RFabricParams
from topologies._params import WIRINGS
from topologies.templates import circuit_template


def test_default_is_the_span_plant_and_explicit_keys_win() -> None:
    p = RFabricParams()
    assert p.wiring == "span"
    assert (p.agg_ocs_share, p.agg_ocs_upper_share, p.agg_ocs_span, p.core_ocs_share) == (0.75, 0.0, 0, 0.0)
    q = RFabricParams(wiring="pod", core_ocs_share=0.5)
    assert (q.agg_ocs_span, q.core_ocs_share, q.agg_ocs_share) == (1, 0.5, 0.75)
    for name, values in WIRINGS.items():
        r = RFabricParams(wiring=name)
        assert all(getattr(r, k) == v for k, v in values.items())


def test_span_plant_at_128_gpus_by_hand() -> None:
    """Radix 16, 16 ToRs in 2 pods: 8 host ports, 2 electrical uplinks, 6 fibred to ToR-level OCS planes."""
    topo = topologies.build("rfabric", {"switch_radix": 16}, ClusterConfig())
    g = topo.graph
    bom = bill_of_materials(topo)
    assert g.graph["num_pods"] == 2 and g.graph["tor_uplinks_eps"] == 2 and g.graph["tor_uplinks_ocs"] == 6
    assert g.graph["ocs_layers"] == ("agg",)
    # 2 aggs per pod (8 down, 8 up), 2 pods x 2 aggs x 8 uplinks = 32 core links on 2 cores of 16 ports
    assert bom.count("switch", "tor") == 16 and bom.count("switch", "agg") == 4 and bom.count("switch", "core") == 2
    assert bom.count("switch_port") == 16 * 16 + 4 * 16 + 2 * 16 and bom.count("switch_port_spare") == 0
    # one OCS of 160 duplex ports holds all 6 planes of 16 ToRs (96 ports, Tx + Rx each)
    (ocs,) = topo.ocs_nodes
    d = g.nodes[ocs]
    assert d["pod"] == -1 and sum(1 for o in d["port_owner"] if o) == 96
    assert bom.count("ocs_port") == 192
    assert bom.count("transceiver") == 16 * 2 * 2 + 32 * 2 + 96  # ToR-agg, agg-core, ToR-OCS (switch end only)
    assert bisection_bandwidth_bps(topo) == pytest.approx(64 * 400e9 / 4)  # the always-on quarter


def test_span_plant_at_4096_gpus_by_hand() -> None:
    topo = topologies.build("rfabric", {"switch_radix": 64}, ClusterConfig(trainer_gpus=2048, rollout_gpus=2048))
    bom = bill_of_materials(topo)
    g = topo.graph
    # 128 ToRs (32 down, 8 electrical up, 24 on OCS), 4 pods x 8 aggs (32 down, 32 up), 1,024 core links / 64
    assert bom.count("switch", "tor") == 128 and bom.count("switch", "agg") == 32 and bom.count("switch", "core") == 16
    # every plane holds all 128 ToRs on one OCS: 24 OCS, 3,072 duplex ports
    assert bom.count("ocs", "ocs.agg") == 24 and bom.count("ocs_port") == 2 * 24 * 128
    for o in topo.ocs_nodes:
        owners = [x for x in g.nodes[o]["port_owner"] if x]
        assert len(owners) == 128 and {g.nodes[x]["pod"] for x in owners} == {0, 1, 2, 3}
    assert bom.count("transceiver") == 128 * 8 * 2 + 1024 * 2 + 128 * 24


def test_span_groups_alternate_blocks_and_strides_when_pods_exceed_one_ocs() -> None:
    # radix 8, 1 GPU per server: 4 ToRs per pod, 8 pods; an OCS of 8 duplex ports holds 2 pods' ToRs.
    cluster = ClusterConfig(trainer_gpus=64, rollout_gpus=64, gpus_per_server=1)
    topo = topologies.build("rfabric", {"switch_radix": 8, "ocs_radix": 16, "agg_ocs_share": 0.5}, cluster)
    g = topo.graph
    assert g.graph["num_pods"] == 8 and g.graph["tor_uplinks_ocs"] == 2
    pods_on = {}
    for o in topo.ocs_nodes:
        d = g.nodes[o]
        for sw, q in zip(d["port_owner"], d["port_plane"], strict=True):
            if sw:
                pods_on.setdefault((o, q), set()).add(g.nodes[sw]["pod"])
    groups = {frozenset(v) for v in pods_on.values()}
    blocks = {frozenset({2 * i, 2 * i + 1}) for i in range(4)}
    strides = {frozenset({i, i + 4}) for i in range(4)}
    assert groups == blocks | strides
    for template in ("mesh", "tree", "isolated_pod"):
        assert check_assignment(topo, circuit_template(topo, template)) == []


def test_span_mesh_circuits_cross_pods() -> None:
    topo = topologies.build("rfabric", {"switch_radix": 16}, ClusterConfig())
    a = circuit_template(topo, "mesh")
    g = topo.graph
    assert check_assignment(topo, a) == []
    pods = {(g.nodes[u]["pod"], g.nodes[v]["pod"]) for u, v in a.endpoints(topo)}
    assert any(p != q for p, q in pods) and all(g.nodes[u]["role"] is NodeRole.TOR for u, _ in a.endpoints(topo))


def test_pod_wiring_keeps_planes_inside_pods() -> None:
    topo = topologies.build("rfabric", {"switch_radix": 16, "wiring": "pod"}, ClusterConfig())
    g = topo.graph
    agg_ocs = [o for o in topo.ocs_nodes if g.nodes[o]["layer"] == "agg"]
    assert agg_ocs and all(g.nodes[o]["pod"] >= 0 for o in agg_ocs)
    assert g.graph["ocs_layers"] == ("agg", "core")


def test_default_rfabric_carries_the_weight_sync_on_circuits() -> None:
    """The built-in demo (128 GPUs, 2 pods): trainer -> rollout crosses pods, and the solver puts all of it
    on ToR<->ToR circuits plus the electrical quarter (alpha = 1; 0.25 with the per-pod ``pod`` wiring)."""
    from rfabric import api
    from solver import parse_options, solve_phase

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cfg = api.load_config(None)
        (ws,) = [p for p in api.build_workload(cfg).phases if p.phase == "weight_sync"]
        alpha = {}
        for wiring in ("span", "pod"):
            topo = topologies.build("rfabric", {"switch_radix": 16, "wiring": wiring}, cfg.cluster)
            alpha[wiring] = solve_phase(topo, ws.traffic, parse_options({"backend": "greedy"})).alpha
    assert alpha["span"] >= 0.9
    assert alpha["pod"] == pytest.approx(0.25)


def test_jupiter_by_hand() -> None:
    """128 GPUs at radix 16: 2 blocks of 8 ToRs and 8 aggs (8 down, 8 up); all 128 agg uplinks on one core
    OCS (256 physical ports), no core EPS; transceivers at both ends of ToR-agg links and at the agg end
    of each OCS fibre."""
    topo = topologies.build("jupiter", {"switch_radix": 16}, ClusterConfig())
    bom = bill_of_materials(topo)
    assert not topo.reconfigurable and topo.graph.graph["circuit_template"] == "solver"
    assert topo.graph.graph["tiers"] == ("tor", "agg") and topo.graph.graph["ocs_layers"] == ("core",)
    assert bom.count("switch", "tor") == 16 and bom.count("switch", "agg") == 16 and bom.count("switch", "core") == 0
    assert bom.count("switch_port") == 16 * 16 + 16 * 16 and bom.count("switch_port_spare") == 0
    assert bom.count("ocs", "ocs.core") == 1 and bom.count("ocs_port") == 256
    assert bom.count("transceiver", "tor") == 128 and bom.count("transceiver", "agg") == 128 + 128
    assert bom.count("fibre") == 128 + 128
    assert bisection_bandwidth_bps(topo) == 0.0  # no always-on path between blocks
    mesh = circuit_template(topo, "mesh")
    assert check_assignment(topo, mesh) == []
    assert bisection_bandwidth_bps(topo, mesh) == pytest.approx(64 * 400e9)  # 64 agg-agg circuits cross


def test_jupiter_runs_a_step_on_engineered_circuits() -> None:
    from rfabric import api

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = api.run(None, {"fabrics": [{"name": "fat_tree", "kind": "fat_tree"},
                                         {"name": "jupiter", "kind": "jupiter"}], "reference": "fat_tree",
                             "workload.model": "qwen2.5-14b"})
    row = res.comparison.row("jupiter")
    assert row.time_vs_ref == pytest.approx(1.0, abs=0.01)
    assert row.capex_usd < res.comparison.row("fat_tree").capex_usd
