"""Config loader: unit conversion, unknown keys with suggestions, bounds, overrides."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rfabric.config import (
    ClusterConfig,
    RunConfig,
    bounded,
    merge_overrides,
    parse_dataclass,
    parse_override,
    parse_run_config,
    positive,
    read_yaml,
)
from rfabric.errors import ConfigError


@dataclass(frozen=True, kw_only=True, slots=True)
class _Link:
    capacity_bps: float = positive(1e9)
    latency_s: float = bounded(0.0, ge=0.0)
    share: float = bounded(0.5, ge=0.0, le=1.0)
    ports: int = positive(4)


def test_human_units_are_converted_once() -> None:
    link = parse_dataclass(_Link, {"capacity_gbps": 400, "latency_us": 2, "ports": 8})
    assert link.capacity_bps == 400e9
    assert link.latency_s == pytest.approx(2e-6)
    assert link.ports == 8


def test_si_keys_are_accepted_too() -> None:
    assert parse_dataclass(_Link, {"capacity_bps": 5.0}).capacity_bps == 5.0


def test_unknown_key_names_dotted_path_and_suggests() -> None:
    with pytest.raises(ConfigError) as e:
        parse_dataclass(_Link, {"capacity_gpbs": 1}, "topology")
    assert e.value.key == "topology.capacity_gpbs"
    assert "did you mean 'capacity_gbps'" in str(e.value)


def test_same_field_given_twice_is_an_error() -> None:
    with pytest.raises(ConfigError, match="given twice"):
        parse_dataclass(_Link, {"capacity_gbps": 1, "capacity_bps": 1e9})


@pytest.mark.parametrize(("key", "value"), [("capacity_gbps", 0), ("capacity_gbps", -3), ("share", 1.5),
                                            ("latency_ms", -1), ("ports", 2.5), ("ports", True), ("share", "half")])
def test_bad_values_name_the_key(key: str, value: object) -> None:
    with pytest.raises(ConfigError) as e:
        parse_dataclass(_Link, {key: value}, "fabric")
    assert e.value.key == f"fabric.{key}"
    assert e.value.value == value


def test_cluster_must_be_whole_servers() -> None:
    with pytest.raises(ConfigError) as e:
        parse_dataclass(ClusterConfig, {"trainer_gpus": 60, "gpus_per_server": 8}, "cluster")
    assert e.value.key == "cluster.trainer_gpus"
    assert e.value.value == 60


def test_run_config_sections() -> None:
    cfg = parse_run_config({"cluster": {"trainer_gpus": 16, "rollout_gpus": 8, "nic_gbps": 200},
                            "fabrics": ["fat_tree", {"name": "rf", "kind": "rfabric", "core_ocs_share": 1}]})
    assert isinstance(cfg, RunConfig)
    assert cfg.cluster.gpus == 24 and cfg.cluster.nic_bps == 200e9
    assert [f.name for f in cfg.fabrics] == ["fat_tree", "rf"]
    assert cfg.fabrics[1].params == {"core_ocs_share": 1}
    assert cfg.reference == "fat_tree"


@pytest.mark.parametrize(("data", "key"), [
    ({"clustr": {}}, "clustr"),
    ({"fabrics": [{"name": "x"}]}, "fabrics[0].kind"),
    ({"fabrics": ["a", "a"]}, "fabrics"),
    ({"fabrics": ["a"], "reference": "b"}, "reference"),
    ({"workload": 3}, "workload"),
    ({"sim": {"ecmp": "random"}}, "sim.ecmp"),
    ({"fabrics": ["fat_tree"], "cost": {"include_gpus": True}}, "cost.include_gpus"),
])
def test_run_config_errors(data: dict, key: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_run_config(data)
    assert e.value.key == key


def test_overrides_by_dotted_key_and_fabric_name() -> None:
    base = {"topology": {"switch_radix": 16}, "fabrics": ["fat_tree", {"name": "rf", "kind": "rfabric"}]}
    out = merge_overrides(base, ["topology.switch_radix=32", "fabrics.rf.core_ocs_share=0.5", "cluster.nic_gbps=200"])
    assert out["topology"]["switch_radix"] == 32
    assert out["fabrics"][1]["core_ocs_share"] == 0.5
    assert out["cluster"]["nic_gbps"] == 200
    assert base["topology"]["switch_radix"] == 16  # input untouched
    out = merge_overrides(base, {"fabrics[0].oversubscription": 2})
    assert out["fabrics"][0] == {"name": "fat_tree", "kind": "fat_tree", "oversubscription": 2}


@pytest.mark.parametrize("text", ["novalue", "=3", "a..b=1"])
def test_bad_override_syntax(text: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_override(text)
    assert e.value.key == "--set"


def test_override_unknown_fabric_name() -> None:
    with pytest.raises(ConfigError, match="no list entry named 'rfabrc'; did you mean 'rfabric'"):
        merge_overrides({"fabrics": ["rfabric"]}, ["fabrics.rfabrc.x=1"])


def test_read_yaml_errors(tmp_path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        read_yaml(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("cluster: [1, 2\n")
    with pytest.raises(ConfigError, match=r"malformed YAML \(line"):
        read_yaml(bad)


@given(st.floats(min_value=1e-3, max_value=1e4, allow_nan=False), st.integers(min_value=1, max_value=10_000))
def test_unit_conversion_property(gbps: float, ports: int) -> None:
    link = parse_dataclass(_Link, {"capacity_gbps": gbps, "ports": ports})
    assert link.capacity_bps == pytest.approx(gbps * 1e9, rel=1e-12)
    assert link.ports == ports


def test_scientific_notation_is_a_number(tmp_path) -> None:
    """YAML 1.1 reads ``1e-3`` as a string; configs and --set take it as the number users mean."""
    from rfabric.config import parse_override, read_yaml

    assert parse_override("sim.merge_tolerance=1e-3") == ("sim.merge_tolerance", 0.001)
    assert parse_override("workload.gpu.peak_flops=5E14") == ("workload.gpu.peak_flops", 5e14)
    f = tmp_path / "c.yaml"
    f.write_text("sim: {merge_tolerance: 1e-2}\nseed: 3\nname: 1e3x\n")
    assert read_yaml(f) == {"sim": {"merge_tolerance": 0.01}, "seed": 3, "name": "1e3x"}
