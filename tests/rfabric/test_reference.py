"""The configuration reference (issue 16): generated from the dataclasses, committed as docs/config.md."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

import solver
import topologies
import traffic
from rfabric import api
from rfabric.cli import main
from rfabric.config import ClusterConfig, CostConfig, SimConfig
from rfabric.units import convert_key

DOC = Path(__file__).parents[2] / "docs" / "config.md"


@pytest.fixture(scope="module")
def reference() -> str:
    return api.config_reference()


def _rows(text: str) -> list[list[str]]:
    return [[c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]] for line in text.splitlines()
            if line.startswith("| `")]


def test_docs_config_md_is_current(reference: str) -> None:
    """Regenerate with: rfabric config --reference > docs/config.md"""
    assert DOC.read_text() == reference, "docs/config.md is stale: rfabric config --reference > docs/config.md"


def test_cli_prints_the_reference(capsys: pytest.CaptureFixture[str], reference: str) -> None:
    assert main(["config", "--reference"]) == 0
    assert capsys.readouterr().out == reference


def test_every_key_has_type_default_and_meaning(reference: str) -> None:
    rows = _rows(reference)
    assert len(rows) > 150
    for key, typ, _unit, default, _allowed, meaning in rows:
        assert typ and default, key
        assert re.sub(r"\(also .*\)$", "", meaning).strip(), f"{key} has no meaning"


@pytest.mark.parametrize(("prefix", "cls"), [
    ("cluster", ClusterConfig), ("sim", SimConfig), ("cost", CostConfig), ("solver", solver.SolverOptions),
    *[("workload", traffic.REGISTRY.get(k).params_cls) for k in traffic.REGISTRY.kinds()],
    *[("topology", topologies.REGISTRY.get(k).params_cls) for k in topologies.REGISTRY.kinds()],
])
def test_every_field_is_documented_in_a_spelling_the_loader_takes(reference: str, prefix: str, cls: type) -> None:
    keys = {r[0].strip("`") for r in _rows(reference)}
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        spelled = [k for k in keys if k.startswith(prefix + ".") and "." not in k[len(prefix) + 1:]
                   and convert_key(k[len(prefix) + 1:], 1.0)[0] == f.name]
        assert spelled, f"{prefix}.{f.name} missing from the reference"


def test_units_and_defaults_are_those_of_the_loader(reference: str) -> None:
    rows = {r[0].strip("`"): r for r in _rows(reference)}
    assert rows["cluster.nic_gbps"][2:4] == ["Gb/s", "400"]  # nic_bps = 4e11 shown in Gb/s
    assert rows["topology.ocs_reconfig_ms"][2:4] == ["ms", "10"]
    assert rows["workload.weight_sync.bucket_gib"][2:4] == ["GiB", "1"]  # 2**30 bytes
    assert rows["sim.routing"][4] == "`hash`, `split`, `spray`, `adaptive`"
    assert rows["workload.gpu.mfu"][4] == "> 0, ≤ 1"
    cfg = api.load_config(overrides={"cluster.nic_gbps": 400, "topology.ocs_reconfig_ms": 10})
    assert cfg.cluster.nic_bps == 400e9


def test_effective_config_round_trips(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`rfabric config` prints a config that loads back to itself (SI keys), --set applied."""
    assert main(["config", "--set", "cluster.nic_gbps=200", "--set", "topology.ocs_reconfig_ms=1"]) == 0
    text = capsys.readouterr().out
    path = tmp_path / "eff.yaml"
    path.write_text(text)
    assert main(["config", "--config", str(path)]) == 0
    assert capsys.readouterr().out == text
    cfg = api.load_config(str(path))
    assert cfg.cluster.nic_bps == 200e9 and cfg.topology["ocs_reconfig_ms"] == 1  # kind sections as written
