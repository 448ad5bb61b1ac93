"""Issue #12, modules split along their seams: the old import paths keep working, and loading the run
config does not load the simulator."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(("old", "new", "names"), [
    ("rfabric.config", "rfabric.parsing", ["parse_dataclass", "positive", "non_negative", "bounded", "choice",
                                           "suggest", "to_plain", "jsonable", "dumps_json", "read_yaml",
                                           "load_yaml_text", "ErrorList", "YamlLoader", "check_fields", "coerce"]),
    ("rfabric.config", "rfabric.sim.options", ["SimConfig", "ROUTINGS", "parse_sim_options"]),
    ("rfabric.api", "rfabric.outputs", ["RunResult", "FabricRun", "write_run", "write_simulation", "write_trace",
                                        "summary_csv", "result_json", "phases_csv", "SUMMARY_COLUMNS"]),
    ("rfabric.results", "rfabric.bom", ["BillOfMaterials", "BomLine"]),
    ("rfabric.results", "rfabric.cost", ["CostBreakdown", "CostLine"]),
    ("rfabric.results", "rfabric.sim.result", ["SimulationResult", "PhaseTiming"]),
    ("rfabric.results", "rfabric.provenance", ["Provenance"]),
    ("rfabric", "rfabric.results", ["BillOfMaterials", "BomLine", "Comparison", "ComparisonRow", "CostBreakdown",
                                    "PhaseTiming", "Provenance", "SimulationResult"]),
])
def test_moved_names_are_the_same_objects_under_their_old_module(old: str, new: str, names: list[str]) -> None:
    import importlib

    a, b = importlib.import_module(old), importlib.import_module(new)
    for n in names:
        assert getattr(a, n) is getattr(b, n), n


def test_the_run_config_loads_without_the_simulator() -> None:
    code = ("import sys, rfabric.config, topologies; "
            "print(sorted(m for m in ('numba', 'rfabric.sim.engine') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    from rfabric import sim
    from rfabric.sim.step import simulate

    assert sim.simulate is simulate and "simulate" in dir(sim)
    with pytest.raises(AttributeError):
        sim.no_such_name  # noqa: B018


@pytest.mark.parametrize(("home", "names"), [
    ("rfabric.bom", ["BillOfMaterials", "BomLine"]),
    ("rfabric.cost", ["CostBreakdown", "CostLine"]),
    ("rfabric.sim.result", ["SimulationResult", "PhaseTiming"]),
    ("rfabric.provenance", ["Provenance"]),
])
def test_result_types_are_defined_beside_their_logic(home: str, names: list[str]) -> None:
    import importlib

    mod = importlib.import_module(home)
    for n in names:
        assert getattr(mod, n).__module__ == home, n


def test_the_simulation_result_types_load_without_the_engine() -> None:
    code = ("import sys, rfabric.results; "
            "print(sorted(m for m in ('numba', 'rfabric.sim.engine') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
