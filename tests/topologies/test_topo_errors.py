"""Bad parameters are ConfigErrors that name the offending key (with the caller's path)."""

from __future__ import annotations

import pytest

import topologies
from rfabric.config import ClusterConfig
from rfabric.errors import ConfigError


def _key(kind: str, params: dict, cluster: ClusterConfig | None = None, path: str = "topology") -> str:
    with pytest.raises(ConfigError) as info:
        topologies.build(kind, params, cluster or ClusterConfig(), path=path)
    return info.value.key


@pytest.mark.parametrize("kind", ["fat_tree", "rail_optimized", "rfabric", "static_ocs"])
def test_radix_too_small_for_a_server(kind: str) -> None:
    assert _key(kind, {"switch_radix": 8}) == "topology.switch_radix"  # 8 NICs + 8 uplinks > 8


def test_radix_too_small_for_the_gpu_count() -> None:
    cluster = ClusterConfig(trainer_gpus=64, rollout_gpus=64, gpus_per_server=1)  # radix 4 holds 16
    with pytest.raises(ConfigError, match="at most 16 GPUs") as info:
        topologies.build("fat_tree", {"switch_radix": 4}, cluster, path="fabrics[1]")
    assert info.value.key == "fabrics[1].switch_radix"


@pytest.mark.parametrize("key", ["agg_ocs_share", "core_ocs_share", "agg_ocs_upper_share", "core_ocs_upper_share"])
@pytest.mark.parametrize("value", [-0.1, 1.5])
def test_share_outside_unit_interval(key: str, value: float) -> None:
    assert _key("rfabric", {"switch_radix": 16, key: value}) == f"topology.{key}"


def test_no_always_on_path_needs_the_flag() -> None:
    assert _key("rfabric", {"switch_radix": 16, "core_ocs_share": 1.0}) == "topology.core_ocs_share"
    assert _key("rfabric", {"switch_radix": 16, "agg_ocs_share": 1.0}) == "topology.agg_ocs_share"
    topo = topologies.build("rfabric", {"switch_radix": 16, "core_ocs_share": 1.0, "allow_circuit_only": True},
                            ClusterConfig())
    assert topo.graph.graph["cores"] == 0  # spine-free: no core EPS at all


def test_ocs_ports_fewer_than_fibred_uplinks() -> None:
    # 48 core planes x 2 pods = 96 ports; one OCS of 64 physical (32 duplex) ports cannot hold them
    assert _key("rfabric", {"wiring": "core", "switch_radix": 16, "ocs_radix": 64, "core_ocs_count": 1}) == "topology.core_ocs_count"
    assert _key("rfabric", {"switch_radix": 16, "agg_ocs_share": 0.5, "agg_ocs_count": 1, "ocs_radix": 32}) == \
        "topology.agg_ocs_count"
    # a plane (one port per pod, plus the core side) must fit in one OCS
    assert _key("rfabric", {"switch_radix": 16, "ocs_radix": 2}) == "topology.ocs_radix"
    assert _key("rfabric", {"wiring": "core", "switch_radix": 16, "ocs_radix": 6, "core_ocs_upper_share": 1}) == "topology.ocs_radix"


@pytest.mark.parametrize(("params", "key"), [
    ({"oversubscription": 0.5}, "topology.oversubscription"),
    ({"core_oversubscription": 0}, "topology.core_oversubscription"),
    ({"switch_radix": 2}, "topology.switch_radix"),
    ({"switch_radix": 16.5}, "topology.switch_radix"),
    ({"port_gbps": -1}, "topology.port_gbps"),
    ({"swich_radix": 16}, "topology.swich_radix"),
    ({"ocs_radix": 320}, "topology.ocs_radix"),  # not a fat-tree parameter
])
def test_bad_fat_tree_parameters(params: dict, key: str) -> None:
    assert _key("fat_tree", params) == key


def test_unknown_key_suggests_and_unknown_kind_names_path() -> None:
    with pytest.raises(ConfigError, match="did you mean 'ocs_reconfig_ms'"):
        topologies.build("rfabric", {"ocs_reconfig_msec": 5}, ClusterConfig())
    with pytest.raises(ConfigError, match="did you mean 'fat_tree'") as info:
        topologies.build("fat_tre", {}, ClusterConfig(), path="fabrics[0]")
    assert info.value.key == "fabrics[0].kind"
    assert _key("static_ocs", {"circuit_template": "star"}) == "topology.circuit_template"
    assert _key("rfabric", {"ocs_wiring": "random"}) == "topology.ocs_wiring"
