"""Bill of materials against the formulas (the formula is the test, the count is the code)."""

from __future__ import annotations

import pytest

import topologies
from rfabric.bom import bill_of_materials, bisection_bandwidth_bps, fabric_report, oversubscription
from rfabric.circuits import logical_topology
from rfabric.config import ClusterConfig
from topologies.templates import circuit_template


def kary(k: int, gps: int) -> ClusterConfig:
    hosts = k**3 // 4
    return ClusterConfig(trainer_gpus=hosts // 2, rollout_gpus=hosts // 2, gpus_per_server=gps)


@pytest.mark.parametrize(("k", "gps"), [(4, 1), (4, 2), (8, 2), (8, 4), (16, 8)])
@pytest.mark.parametrize("host_dac", [True, False])
def test_kary_fat_tree_matches_formulas(k: int, gps: int, host_dac: bool) -> None:
    topo = topologies.build("fat_tree", {"switch_radix": k, "host_dac": host_dac}, kary(k, gps))
    bom = bill_of_materials(topo)
    hosts = k**3 // 4
    assert bom.count("gpu") == hosts and bom.count("nic_port") == hosts
    assert bom.count("server") == hosts // gps
    assert bom.count("switch") == 5 * k * k // 4
    assert (bom.count("switch", "tor"), bom.count("switch", "agg"), bom.count("switch", "core")) == \
        (k * k // 2, k * k // 2, k * k // 4)
    assert bom.count("switch_port") == 5 * hosts  # 5 switch ports per host
    assert bom.count("switch_port_spare") == 0
    # transceivers at both ends of every optical link: 2 per ToR-agg and agg-core link, +2 per host if optical
    assert bom.count("transceiver") == 2 * 2 * hosts + (0 if host_dac else 2 * hosts)
    assert bom.count("transceiver", "host") == (0 if host_dac else hosts)
    assert bom.count("dac") == (hosts if host_dac else 0)
    assert bom.count("fibre") == 2 * hosts + (0 if host_dac else hosts)
    assert bom.count("ocs") == bom.count("ocs_port") == 0
    assert bisection_bandwidth_bps(topo) == pytest.approx(hosts / 2 * 400e9)


def test_spare_ports_of_partial_fabric() -> None:
    # radix 16, 3 pods' worth of ToRs minus some: 20 servers of 8 -> 20 ToRs -> pods of 8, 8, 4
    topo = topologies.build("fat_tree", {"switch_radix": 16}, ClusterConfig(trainer_gpus=80, rollout_gpus=80))
    bom = bill_of_materials(topo)
    g = topo.graph.graph
    assert (g["tors"], g["num_pods"], g["aggs_per_pod"]) == (20, 3, 8)
    # core: 64 links per pod, 16 // 3 = 5 per pod per core -> ceil(64 / 5) = 13 cores
    assert g["cores"] == 13
    # ports: ToR 160 host + 160 up; agg 160 down (one per ToR) + 3 x 8 x 8 up; core 192
    assert bom.count("switch_port", "tor") == 320
    assert bom.count("switch_port", "agg") == 160 + 192
    assert bom.count("switch_port", "core") == 192
    # spare: the 8 aggs of the half pod lack 4 ToRs each; 13 cores x 16 = 208 ports for 192 links
    assert bom.count("switch_port_spare", "agg") == 32 and bom.count("switch_port_spare", "core") == 16
    # the count equals the sum of links; spare = bought ports - used ports
    assert bom.count("switch_port") + bom.count("switch_port_spare") == 16 * bom.count("switch")


def test_rfabric_full_plant_counts() -> None:
    """Both upper shares at 1: the same EPS as the fat-tree, plus OCS ports for every fibred link."""
    cluster = ClusterConfig()
    params = {"wiring": "core", "switch_radix": 16, "agg_ocs_share": 0.5, "core_ocs_share": 0.75, "core_ocs_upper_share": 1.0}
    ft = bill_of_materials(topologies.build("fat_tree", {"switch_radix": 16}, cluster))
    rf = bill_of_materials(topologies.build("rfabric", params, cluster))
    for tier in ("tor", "agg", "core"):
        assert rf.count("switch", tier) == ft.count("switch", tier)
        assert rf.count("switch_port", tier) == ft.count("switch_port", tier)
        assert rf.count("transceiver", tier) == ft.count("transceiver", tier)
    # 16 ToRs x 4 fibred uplinks and 16 aggs x 6 fibred uplinks, each link two OCS ports x (Tx + Rx)
    assert rf.count("ocs_port", "ocs.agg") == 16 * 4 * 2 * 2
    assert rf.count("ocs_port", "ocs.core") == 16 * 6 * 2 * 2
    bi = bill_of_materials(topologies.build("rfabric", {**params, "bidirectional_ocs": True}, cluster))
    assert bi.count("ocs_port") == rf.count("ocs_port") // 2


def test_rfabric_spine_free_saves_core_ports_and_optics() -> None:
    cluster = ClusterConfig()
    ft = bill_of_materials(topologies.build("fat_tree", {"switch_radix": 16}, cluster))
    rf = bill_of_materials(topologies.build("rfabric", {"wiring": "core", "switch_radix": 16}, cluster))
    # 16 aggs x 8 uplinks: 2 electrical to 2 core EPS, 6 to OCS ports with no core-side port or transceiver
    assert rf.count("switch", "core") == 2 and ft.count("switch", "core") == 8
    assert rf.count("switch_port", "core") == 16 * 2
    assert rf.count("transceiver", "core") == 16 * 2
    assert rf.count("transceiver", "agg") == ft.count("transceiver", "agg")
    assert rf.count("ocs_port", "ocs.core") == 16 * 6 * 2
    assert rf.count("ocs", "ocs.core") == 1
    assert rf.count("fibre", "ocs.core") == 16 * 6


def test_tree_template_reproduces_the_clos() -> None:
    cluster = ClusterConfig(trainer_gpus=52, rollout_gpus=50, gpus_per_server=2)  # 26 ToRs, 7 pods, last partial
    base = {"switch_radix": 8}
    ft = topologies.build("fat_tree", base, cluster)
    rf = topologies.build("rfabric", {**base, "agg_ocs_share": 0.5, "agg_ocs_upper_share": 1.0,
                                      "core_ocs_share": 0.5, "core_ocs_upper_share": 1.0}, cluster)
    logical = logical_topology(rf, circuit_template(rf, "tree"))

    def switch_links(g) -> dict:
        roles = {"tor", "agg", "core"}
        return {tuple(sorted((u, v))): d["capacity_bps"] for u, v, d in g.edges(data=True)
                if g.nodes[u]["role"].value in roles and g.nodes[v]["role"].value in roles}

    assert switch_links(logical.graph) == switch_links(ft.graph)
    assert bisection_bandwidth_bps(rf, circuit_template(rf, "tree")) == pytest.approx(bisection_bandwidth_bps(ft))
    assert bisection_bandwidth_bps(rf) < bisection_bandwidth_bps(ft)  # always-on path alone is thinner


def test_fabric_report_keys() -> None:
    rep = fabric_report(topologies.build("rfabric", {"wiring": "core", "switch_radix": 16}, ClusterConfig()))
    assert rep["gpus"] == 128 and rep["pods"] == 2 and rep["ocs"] == {"ocs.core": 1}
    assert rep["bisection_ratio"] == pytest.approx(0.25)
    assert rep["oversubscription"]["agg.always_on"] == pytest.approx(4.0)
    assert any(r["part"] == "ocs_port" for r in rep["bom"])


def test_oversubscription_of_rail_and_core() -> None:
    topo = topologies.build("rail_optimized", {"switch_radix": 16, "core_oversubscription": 2},
                            ClusterConfig(trainer_gpus=256, rollout_gpus=256))
    ratios = oversubscription(topo)
    assert ratios["tor"] == pytest.approx(1.0) and ratios["agg"] == pytest.approx(2.0)
