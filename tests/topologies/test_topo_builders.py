"""Structural invariants of every builder over many sizes (Hypothesis), plus hand-checked small cases."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import topologies
from rfabric.bom import bill_of_materials, bisection_bandwidth_bps, oversubscription
from rfabric.config import ClusterConfig
from rfabric.cost import evaluate, load_catalogue
from rfabric.errors import ConfigError
from rfabric.topology import Medium, NodeRole, Topology

Check = Callable[[Topology, ClusterConfig], None]

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def clusters(draw: st.DrawFn) -> ClusterConfig:
    gps = draw(st.sampled_from([1, 2, 4, 8]))
    trainer = draw(st.integers(1, 24))
    rollout = draw(st.integers(0, 24))
    return ClusterConfig(trainer_gpus=trainer * gps, rollout_gpus=rollout * gps, gpus_per_server=gps)


eps_params = st.fixed_dictionaries({
    "switch_radix": st.sampled_from([4, 6, 8, 12, 16]),
    "oversubscription": st.sampled_from([1, 1.5, 2, 4]),
    "core_oversubscription": st.sampled_from([1, 2]),
    "host_dac": st.booleans(),
})

ocs_params = st.fixed_dictionaries({
    "switch_radix": st.sampled_from([4, 8, 12, 16]),
    "oversubscription": st.sampled_from([1, 2]),
    "agg_ocs_share": st.sampled_from([0.0, 0.25, 0.5, 1.0]),
    "agg_ocs_upper_share": st.sampled_from([0.0, 0.5, 1.0]),
    "core_ocs_share": st.sampled_from([0.0, 0.5, 0.75, 1.0]),
    "core_ocs_upper_share": st.sampled_from([0.0, 0.5, 1.0]),
    "ocs_radix": st.sampled_from([8, 16, 64, 320]),
    "bidirectional_ocs": st.booleans(),
    "ocs_wiring": st.sampled_from(["striped", "blocked"]),
})


def _build_or_reject(kind: str, params: dict, cluster: ClusterConfig, allowed: set[str]) -> Topology | None:
    """Build; a ConfigError is fine only if it names one of the ``allowed`` keys."""
    try:
        topo = topologies.build(kind, params, cluster)
    except ConfigError as e:
        assert e.key.removeprefix("topology.") in allowed, str(e)
        event(f"rejected: {e.key}")
        return None
    event(f"built: {topo.graph.graph['num_pods']} pods" if topo.graph.graph["num_pods"] < 3 else "built: 3+ pods")
    return topo


@pytest.mark.parametrize("kind", ["fat_tree", "rail_optimized"])
@SETTINGS
@given(cluster=clusters(), params=eps_params)
def test_eps_builders_hold_invariants(kind: str, cluster: ClusterConfig, params: dict, invariants: Check) -> None:
    topo = _build_or_reject(kind, params, cluster, {"switch_radix"})
    if topo is None:
        return
    invariants(topo, cluster)
    assert not topo.has_ocs and not topo.reconfigurable
    if params["oversubscription"] == 1 and params["core_oversubscription"] == 1:
        # non-blocking: the bisection is limited only by the NICs (NVLink joins a server cut in two)
        full = cluster.gpus // 2 * cluster.nic_bps
        if (cluster.gpus // cluster.gpus_per_server) % 2 == 0:
            assert bisection_bandwidth_bps(topo) == pytest.approx(full)
        else:
            assert bisection_bandwidth_bps(topo) >= full * (1 - 1e-9)


@pytest.mark.parametrize("kind", ["rfabric", "static_ocs"])
@SETTINGS
@given(cluster=clusters(), params=ocs_params, allow=st.booleans())
def test_ocs_builders_hold_invariants(kind: str, cluster: ClusterConfig, params: dict, allow: bool,
                                      invariants: Check) -> None:
    params = {**params, "allow_circuit_only": allow}
    allowed = {"switch_radix", "ocs_radix", "agg_ocs_share", "core_ocs_share", "agg_ocs_upper_share"}
    topo = _build_or_reject(kind, params, cluster, allowed)
    if topo is None:
        return
    if allow and (params["agg_ocs_share"] == 1.0 or params["core_ocs_share"] == 1.0):
        return  # circuit-only plants are allowed to leave GPUs unreachable without circuits
    invariants(topo, cluster)
    assert topo.reconfigurable is (kind == "rfabric")
    assert topo.ocs_reconfig_s == pytest.approx(0.01)


def test_demo_sizes_build_for_every_kind(invariants: Check) -> None:
    cluster = ClusterConfig()  # 64 trainer + 64 rollout GPUs, 8 per server, 400 Gb/s
    for kind in topologies.REGISTRY:
        for radix in (16, 64):
            params = {"switch_radix": radix} if "switch_radix" in topologies.param_names(kind) else {}
            topo = topologies.build(kind, params, cluster)
            invariants(topo, cluster)
            # mixnet's Clos holds only 2 electrical NICs per server; topoopt has no switch
            pods = 2 if radix == 16 and kind not in ("mixnet", "topoopt") else 1
            assert topo.graph.graph["num_pods"] == pods, kind


def test_fat_tree_radix16_demo_by_hand() -> None:
    topo = topologies.build("fat_tree", {"switch_radix": 16}, ClusterConfig())
    g = topo.graph
    # 16 servers, one per ToR (8 host ports + 8 uplinks), 2 pods of 8 ToRs, 8 aggs per pod, 8 cores
    assert len(topo.nodes(NodeRole.TOR)) == 16 and len(topo.nodes(NodeRole.AGG)) == 16
    assert len(topo.nodes(NodeRole.CORE)) == 8
    assert g.nodes["gpu9"]["tor"] == "tor1" and g.nodes["gpu64"]["pod"] == 1
    # core c takes uplink c of every agg: agg0 (pod 0) and agg8 (pod 1) each have one link to core3
    assert g.edges["agg0", "core3"]["links"] == 1 and g.edges["agg8", "core3"]["links"] == 1
    assert g.edges["nic0", "tor0"]["medium"] is Medium.COPPER
    assert oversubscription(topo) == {"tor": 1.0, "agg": 1.0}


def test_single_partial_pod_uses_few_aggs() -> None:
    topo = topologies.build("fat_tree", {"switch_radix": 64}, ClusterConfig())
    g = topo.graph
    # 128 GPUs = 4 ToRs of 32; 32 uplinks each over 2 spines (all 64 ports down) with 16 parallel links
    assert g.graph["tors"] == 4 and g.graph["aggs_per_pod"] == 2 and g.graph["tiers"] == ("tor", "agg")
    assert g.edges["tor0", "agg1"]["links"] == 16


def test_one_pod_fat_tree_is_a_right_sized_leaf_spine() -> None:
    """1,024 GPUs at radix 64: 32 leaves (32 down, 32 up) and 16 spines of 64 ports, 2 links per pair;
    no core tier and no spare port -- the hand count of a two-tier leaf-spine."""
    cluster = ClusterConfig(trainer_gpus=512, rollout_gpus=512)
    topo = topologies.build("fat_tree", {"switch_radix": 64}, cluster)
    bom = bill_of_materials(topo)
    assert topo.graph.graph["tiers"] == ("tor", "agg")
    assert bom.count("switch", "tor") == 32 and bom.count("switch", "agg") == 16 and bom.count("switch", "core") == 0
    assert bom.count("switch_port_spare") == 0
    assert bom.count("switch_port", "tor") == 32 * 64 and bom.count("switch_port", "agg") == 16 * 64
    assert bom.count("transceiver") == 2 * 32 * 32  # both ends of the 1,024 leaf-spine links (hosts on DAC)
    assert bom.count("dac") == 1024
    assert topo.graph.edges["tor0", "agg15"]["links"] == 2
    assert bisection_bandwidth_bps(topo) == pytest.approx(512 * 400e9)
    capex = evaluate(bom, load_catalogue("mixnet-2025")).capex_network_usd
    hand = 48 * 64 * 1090 + 2048 * 659 + 1024 * 1499 + 1024 * 500 * 0.3  # ports, optics, NICs, fibre
    assert capex == pytest.approx(hand, rel=1e-9)


def test_single_tor_has_no_upper_tiers(invariants: Check) -> None:
    cluster = ClusterConfig(trainer_gpus=16, rollout_gpus=0)
    topo = topologies.build("fat_tree", {"switch_radix": 64}, cluster)
    invariants(topo, cluster)
    assert topo.graph.graph["tiers"] == ("tor",)


def test_partial_pods_fill_in_order(invariants: Check) -> None:
    # radix 8, 2-GPU servers: 2 servers per ToR, 4 ToRs per pod; 9 servers -> 5 ToRs -> pods of 4 and 1
    cluster = ClusterConfig(trainer_gpus=10, rollout_gpus=8, gpus_per_server=2)
    topo = topologies.build("fat_tree", {"switch_radix": 8}, cluster)
    invariants(topo, cluster)
    g = topo.graph
    assert g.graph["tors"] == 5 and g.graph["num_pods"] == 2
    assert [g.nodes[f"tor{t}"]["pod"] for t in range(5)] == [0, 0, 0, 0, 1]
    assert g.nodes["gpu17"]["tor"] == "tor4"
    # the last pod keeps all 4 aggs; the core is sized for 2 pods: 16 links per pod over cores of 8 ports
    # taking 4 links per pod each -> 4 cores
    assert g.graph["aggs_per_pod"] == 4 and g.graph["cores"] == 4


def test_rail_optimized_puts_rails_on_leaves(invariants: Check) -> None:
    cluster = ClusterConfig()
    topo = topologies.build("rail_optimized", {"switch_radix": 16}, cluster)
    invariants(topo, cluster)
    g = topo.graph
    # rail group = 8 servers; NIC i of servers 0..7 on leaf i, of servers 8..15 on leaf 8 + i
    for gpu in (0, 8, 63, 64, 127):
        server, rail = divmod(gpu, 8)
        assert g.nodes[f"gpu{gpu}"]["tor"] == f"tor{(server // 8) * 8 + rail}"
        assert g.nodes[g.nodes[f"gpu{gpu}"]["tor"]]["rail"] == rail


def test_oversubscribed_ratios_are_exact() -> None:
    cluster = ClusterConfig(trainer_gpus=1024, rollout_gpus=1024)
    for ratio in (2, 4, 8):
        topo = topologies.build("fat_tree", {"switch_radix": 64, "oversubscription": ratio}, cluster)
        assert oversubscription(topo)["tor"] == pytest.approx(ratio)
    topo = topologies.build("fat_tree", {"switch_radix": 16, "oversubscription": 2}, ClusterConfig())
    assert bisection_bandwidth_bps(topo) == pytest.approx(64 * 400e9 / 2)


def test_rfabric_default_demo_by_hand() -> None:
    topo = topologies.build("rfabric", {"wiring": "core", "switch_radix": 16}, ClusterConfig())
    g = topo.graph
    # 8 agg uplinks: 2 electrical (thin 4:1 core of 2 switches), 6 fibred to one core-layer OCS
    assert g.graph["agg_uplinks_eps"] == 2 and g.graph["agg_uplinks_ocs"] == 6 and g.graph["cores"] == 2
    assert g.graph["ocs_layers"] == ("core",)
    (ocs,) = topo.ocs_nodes
    d = g.nodes[ocs]
    assert d["ports"] == 160 and sum(1 for o in d["port_owner"] if o) == 48 * 2
    assert g.edges["agg0", ocs]["links"] == 6
    assert oversubscription(topo)["agg.always_on"] == pytest.approx(4.0)
    assert bisection_bandwidth_bps(topo) == pytest.approx(64 * 400e9 / 4)


def test_builds_are_deterministic() -> None:
    params = {"switch_radix": 8, "agg_ocs_share": 0.5}
    cluster = ClusterConfig(trainer_gpus=48, rollout_gpus=48, gpus_per_server=4)
    a, b = (topologies.build("rfabric", params, cluster) for _ in range(2))
    assert list(a.graph.nodes(data=True)) == list(b.graph.nodes(data=True))
    assert list(a.graph.edges(data=True)) == list(b.graph.edges(data=True))


def test_param_names_share_spellings() -> None:
    shared = {"switch_radix", "port_bps", "port_gbps", "oversubscription", "core_oversubscription", "host_dac",
              "switch_latency_s", "link_latency_s", "fibre_length_m"}
    for kind in topologies.REGISTRY:
        if kind == "topoopt":  # no packet switch: only the latency and fibre keys apply
            assert {"switch_latency_s", "link_latency_s", "fibre_length_m"} <= topologies.param_names(kind)
            assert "switch_radix" not in topologies.param_names(kind)
            continue
        assert shared <= topologies.param_names(kind)
    assert {"ocs_radix", "ocs_reconfig_ms", "agg_ocs_share", "core_ocs_share", "bidirectional_ocs"} <= \
        topologies.param_names("rfabric")
    assert "ocs_radix" not in topologies.param_names("fat_tree")
    assert "circuit_template" in topologies.param_names("static_ocs")


def test_build_accepts_dataclasses_and_units() -> None:
    p = topologies.RFabricParams(switch_radix=16, ocs_reconfig_s=0.001)
    assert topologies.build("rfabric", p, ClusterConfig()).ocs_reconfig_s == 0.001
    topo = topologies.build("static_ocs", {"switch_radix": 16, "ocs_reconfig_ms": 25, "port_gbps": 400},
                            ClusterConfig(), name="s")
    assert topo.name == "s" and topo.ocs_reconfig_s == pytest.approx(0.025) and not topo.reconfigurable
    assert topo.graph.graph["circuit_template"] == "solver"
    # another kind's dataclass is re-checked against this kind's fields
    with pytest.raises(ConfigError, match="ocs_radix"):
        topologies.build("fat_tree", p, ClusterConfig())
