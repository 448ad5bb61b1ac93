"""The peers' architectures as kinds: MixNet's regional NIC-level OCS and TopoOpt's direct-connect fabric.

Bills of materials are checked against hand counts (MixNet's counting: N NICs; per NIC on the OCS one
transceiver, two OCS ports and one fibre; per electrical NIC a DAC and a ToR port; the fat-tree over the
electrical NICs; cost-anchors "mixnet-2025" prices).
"""

from __future__ import annotations

import pytest

import topologies
from rfabric.bom import bill_of_materials
from rfabric.config import ClusterConfig
from rfabric.cost import evaluate, load_catalogue
from rfabric.errors import ConfigError
from rfabric.topology import Medium, NodeRole

NIC = 400e9


def _lines(bom):  # type: ignore[no-untyped-def]
    return {(ln.part, ln.tier): ln.count for ln in bom.lines}


def test_mixnet_small_instance_by_hand(invariants) -> None:  # type: ignore[no-untyped-def]
    # 32 GPUs = 8 servers of 4; 3 of 4 NICs on the OCS (share 0.75), 1 electrical; regions of 4 servers.
    cluster = ClusterConfig(trainer_gpus=16, rollout_gpus=16, gpus_per_server=4)
    topo = topologies.build("mixnet", {"switch_radix": 8, "region_servers": 4}, cluster)
    invariants(topo, cluster)
    g = topo.graph
    assert (g.graph["ocs_nics"], g.graph["eps_nics"], g.graph["regions"]) == (3, 1, 2)
    # electrical fat-tree over the 8 electrical NICs, radix 8: ToRs of 4 host ports + 4 uplinks -> 2 ToRs,
    # one pod -> a leaf-spine with one spine taking 4 parallel links from each ToR
    assert (g.graph["tors"], g.graph["aggs_per_pod"], g.graph["tiers"]) == (2, 1, ("tor", "agg"))
    assert g.edges["host0", "tor0"]["links"] == 1 and g.edges["host0", "tor0"]["medium"] is Medium.COPPER
    assert g.edges["host4", "tor1"]["links"] == 1
    # one OCS per region (3 planes x 4 servers = 12 ports of 160); each host has 3 fibres on it
    assert [o for o in topo.ocs_nodes] == ["ocs.nic.0", "ocs.nic.1"]
    assert g.edges["host0", "ocs.nic.0"]["links"] == 3 and not g.has_edge("host0", "ocs.nic.1")
    assert g.nodes["ocs.nic.1"]["pod"] == 1 and g.nodes["ocs.nic.1"]["port_owner"][:4] == tuple(
        f"host{s}" for s in range(4, 8))
    bom = bill_of_materials(topo)
    assert _lines(bom) == {
        ("gpu", "host"): 32, ("server", "host"): 8,
        ("nic_port", "host"): 32,  # N NICs
        ("dac", "host"): 8,  # one per electrical NIC
        ("switch", "tor"): 2, ("switch", "agg"): 1,
        ("switch_port", "tor"): 16, ("switch_port", "agg"): 8,  # 8 host + 8 up; 8 down
        ("transceiver", "host"): 24,  # one per OCS NIC (NIC end; the OCS does no O/E conversion)
        ("transceiver", "tor"): 8, ("transceiver", "agg"): 8,  # both ends of the 8 ToR-spine links
        ("ocs", "ocs.nic"): 2, ("ocs_port", "ocs.nic"): 48,  # 24 duplex NIC links x 2 (Tx, Rx)
        ("fibre", "agg"): 8, ("fibre", "ocs.nic"): 24,
    }
    # per GPU: 1.25 transceivers, 0.75 EPS ports, 1.5 OCS ports, 1 fibre (500 m)
    assert bom.count("transceiver") / 32 == 1.25 and bom.count("switch_port") / 32 == 0.75
    assert bom.count("ocs_port") / 32 == 1.5 and bom.count("fibre") / 32 == 1.0
    cost = evaluate(bom, load_catalogue("mixnet-2025"))
    # 32 x 1499 NIC + 40 x 659 transceivers + 3 boxes x 8 x 1090 + 48 x 520 OCS + 32 x 500 m x 0.3 $/m
    assert cost.capex_network_usd == pytest.approx(32 * 1499 + 40 * 659 + 24 * 1090 + 48 * 520 + 32 * 150)


def test_mixnet_1024_gpus_counts_per_gpu() -> None:
    # MixNet's design point: 6 of 8 NICs on regional OCSes of 16 servers, 2 on a non-blocking fat-tree.
    cluster = ClusterConfig(trainer_gpus=512, rollout_gpus=512)
    bom = bill_of_materials(topologies.build("mixnet", {"switch_radix": 64}, cluster))
    n = 1024
    assert bom.count("nic_port") == n
    assert bom.count("transceiver", "host") == 6 * n // 8 and bom.count("ocs_port") == 2 * 6 * n // 8
    assert bom.count("fibre", "ocs.nic") == 6 * n // 8 and bom.count("ocs") == 1024 // 128
    assert bom.count("dac") == 2 * n // 8
    # 256 electrical NICs: 8 leaves (32 down, 32 up) under 4 spines, non-blocking: 2 switch ports per NIC
    assert bom.count("switch", "tor") == 8 and bom.count("switch", "agg") == 4
    assert bom.count("switch_port") == 3 * 256 and bom.count("switch_port_spare") == 0
    assert bom.count("transceiver", "tor") == bom.count("transceiver", "agg") == 256


def test_mixnet_errors_name_the_key() -> None:
    cluster = ClusterConfig()
    with pytest.raises(ConfigError) as e:
        topologies.build("mixnet", {"nic_ocs_share": 1.0}, cluster, path="fabrics[1]")
    assert e.value.key == "fabrics[1].nic_ocs_share"
    with pytest.raises(ConfigError) as e:
        topologies.build("mixnet", {"region_servers": 64, "ocs_radix": 64, "ocs_count": 1}, cluster,
                         path="fabrics[1]")
    assert e.value.key in ("fabrics[1].ocs_count", "fabrics[1].ocs_radix")


def test_mixnet_share_zero_is_a_fat_tree_of_hosts() -> None:
    topo = topologies.build("mixnet", {"switch_radix": 16, "nic_ocs_share": 0.0}, ClusterConfig())
    assert not topo.has_ocs and topo.graph.graph["eps_nics"] == 8
    assert bill_of_materials(topo).count("switch_port", "tor") == 2 * 128


def test_topoopt_small_instance_by_hand(invariants) -> None:  # type: ignore[no-untyped-def]
    cluster = ClusterConfig(trainer_gpus=16, rollout_gpus=16, gpus_per_server=4)
    topo = topologies.build("topoopt", {}, cluster)
    invariants(topo, cluster)
    g = topo.graph
    assert not topo.reconfigurable and g.graph["circuit_template"] == "solver"
    assert topo.nodes(NodeRole.TOR) == [] and len(topo.nodes(NodeRole.HOST)) == 8
    # one device per NIC plane, sized to the 8 servers (16 physical ports)
    assert topo.ocs_nodes == [f"ocs.nic.{k}" for k in range(4)]
    assert g.nodes["ocs.nic.2"]["port_owner"] == tuple(f"host{s}" for s in range(8))
    assert g.nodes["ocs.nic.2"]["radix"] == 16
    assert _lines(bill_of_materials(topo)) == {
        ("gpu", "host"): 32, ("server", "host"): 8, ("nic_port", "host"): 32,
        ("transceiver", "host"): 32,  # one per NIC
        ("patch_panel", "ocs.nic"): 4, ("patch_panel_port", "ocs.nic"): 64,  # 32 duplex links x 2
        ("fibre", "ocs.nic"): 32,
    }
    cost = evaluate(bill_of_materials(topo), load_catalogue("mixnet-2025"))
    assert cost.capex_network_usd == pytest.approx(32 * 1499 + 32 * 659 + 64 * 100 + 32 * 150)
    ocs = topologies.build("topoopt", {"device": "ocs", "bidirectional_ocs": True}, cluster)
    assert _lines(bill_of_materials(ocs))[("ocs_port", "ocs.nic")] == 32


def test_topoopt_errors_name_the_key() -> None:
    cluster = ClusterConfig()
    with pytest.raises(ConfigError) as e:
        topologies.build("topoopt", {"ring_planes": 9}, cluster, path="fabrics[2]")
    assert e.value.key == "fabrics[2].ring_planes"
    with pytest.raises(ConfigError) as e:
        topologies.build("topoopt", {"ocs_radix": 8}, cluster, path="fabrics[2]")
    assert e.value.key == "fabrics[2].ocs_radix"
    with pytest.raises(ConfigError) as e:
        topologies.build("topoopt", {"switch_radix": 64}, cluster, path="fabrics[2]")
    assert e.value.key == "fabrics[2].switch_radix"
