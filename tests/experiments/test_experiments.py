"""Every experiment's --smoke version runs and draws its figure; the smoke scaling sweep matches a golden CSV.

Regenerate the golden file after an intended change of the model (and say why in the commit)::

    RFABRIC_UPDATE_GOLDEN=1 pytest tests/experiments/test_experiments.py -k golden   # every golden file
"""

from __future__ import annotations

import csv
import importlib.util
import math
import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden" / "scaling-smoke.csv"
# the same sweep with the sequential schedule (workload.schedule.mode: sync): the regression of the pre-pipeline
# step, which must stay exactly as it was before pipelined schedules existed
GOLDEN_SYNC = Path(__file__).parent / "golden" / "scaling-smoke-sync.csv"
# the evaluation's headline (issue #17) at CI size: split auto, weak scaling, gather + broadcast sync, two seeds
GOLDEN_HEADLINE = Path(__file__).parent / "golden" / "headline-smoke.csv"
# columns compared (others, e.g. wall times, vary run to run); relative tolerance per numeric column
COMPARED = {"fabric": None, "kind": None, "gpus": 0.0, "cluster.trainer_gpus": 0.0, "iteration_time_s": 1e-6,
            "capex_usd": 1e-9, "perf_per_usd_vs_ref": 1e-6, "time_vs_ref": 1e-6, "power_w": 1e-9}


def _runner():  # experiments/ is not a package: load its runner by path
    spec = importlib.util.spec_from_file_location("experiments_run", ROOT / "experiments" / "run.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def smoke_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    run = _runner()
    base = tmp_path_factory.mktemp("experiments")
    out = {}
    for name in run.EXPERIMENTS:
        d = base / name
        paths = run.run(name, d, smoke=True, workers=1)
        assert {p.suffix for p in paths} == {".png", ".pdf"}
        assert all(p.stat().st_size > 1000 for p in paths)
        out[name] = d
    return out


def test_every_smoke_experiment_completes(smoke_results: dict[str, Path]) -> None:
    for name, d in smoke_results.items():
        if name == "phases":
            assert (d / "result.json").is_file() and (d / "summary.csv").is_file()
            continue
        rows = list(csv.DictReader((d / "sweep.csv").open()))
        assert rows and all(r["status"] == "ok" for r in rows), name
        for r in rows:
            assert float(r["iteration_time_s"]) > 0 and float(r["capex_usd"]) > 0
        refs = [r for r in rows if r["fabric"] == "fat_tree"]
        assert all(math.isclose(float(r["perf_per_usd_vs_ref"]), 1.0) for r in refs)


def test_resume_recomputes_nothing(smoke_results: dict[str, Path]) -> None:
    from rfabric import api

    d = smoke_results["ocs_price"]
    before = {p.name: p.stat().st_mtime_ns for p in (d / "runs").glob("*.json")}
    stats = api.run_sweep(ROOT / "experiments" / "configs" / "smoke" / "ocs_price.yaml", d, workers=1)
    assert stats["skipped"] == stats["total"] == len(before) and stats["ok"] == 0
    assert {p.name: p.stat().st_mtime_ns for p in (d / "runs").glob("*.json")} == before


def _key(r: dict[str, str]) -> tuple[str, ...]:
    """A row's identity: seed, fabric and every swept (dotted) column's value."""
    return (r["seed"], r["fabric"], *(f"{k}={v}" for k, v in sorted(r.items()) if "." in k and k != "fabrics"))


def _check_golden(sweep_csv: Path, golden: Path) -> None:
    got = list(csv.DictReader(sweep_csv.open()))
    if os.environ.get("RFABRIC_UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(sweep_csv, golden)
    want = list(csv.DictReader(golden.open()))
    assert set(COMPARED) - {"cluster.trainer_gpus"} <= set(want[0]), "golden file lacks compared columns"
    assert set(want[0]) <= set(got[0]) | {"sim_wall_time_s"}, "columns disappeared from sweep.csv"
    assert sorted(map(_key, got)) == sorted(map(_key, want))
    by_key = {_key(r): r for r in got}
    for w in want:
        g = by_key[_key(w)]
        for col, tol in COMPARED.items():
            if col not in w:
                continue
            if tol is None:
                assert g[col] == w[col], (col, _key(w))
            else:
                assert math.isclose(float(g[col]), float(w[col]), rel_tol=tol, abs_tol=1e-12), (col, _key(w), g[col], w[col])


def test_golden_scaling_smoke(smoke_results: dict[str, Path]) -> None:
    _check_golden(smoke_results["scaling"] / "sweep.csv", GOLDEN)


def test_golden_scaling_smoke_sync_mode(tmp_path: Path) -> None:
    from rfabric import api

    api.run_sweep(ROOT / "experiments" / "configs" / "smoke" / "scaling.yaml", tmp_path,
                  overrides=["workload.schedule.mode=sync"], workers=1)
    _check_golden(tmp_path / "sweep.csv", GOLDEN_SYNC)


# every evaluation smoke sweep (issue #17) against its golden file
EVALUATION_GOLDEN = ("dynamic_map", "dynamic_map_p2p", "ocs_price", "eps_share", "nic_speed", "response_length",
                     "mini_batches", "routing", "sync_method", "schedule")


@pytest.mark.parametrize("name", EVALUATION_GOLDEN)
def test_golden_evaluation_smoke(smoke_results: dict[str, Path], name: str) -> None:
    _check_golden(smoke_results[name] / "sweep.csv", Path(__file__).parent / "golden" / f"{name}-smoke.csv")


def test_golden_headline_smoke(smoke_results: dict[str, Path]) -> None:
    _check_golden(smoke_results["headline"] / "sweep.csv", GOLDEN_HEADLINE)
    rows = list(csv.DictReader((smoke_results["headline"] / "sweep.csv").open()))
    assert {r["seed"] for r in rows} == {"0", "1"}
    # split auto chose the pools: the reported split is whole servers summing to the point's total
    for r in rows:
        assert int(r["trainer_gpus"]) + int(r["rollout_gpus"]) == 2 * int(r["cluster.trainer_gpus"])
        assert int(r["trainer_gpus"]) % 8 == 0 and float(r["perf_per_cluster_w_vs_ref"]) > 0


def test_report_prints_the_readme_tables_from_saved_sweeps(smoke_results: dict[str, Path],
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("experiments_report", ROOT / "experiments" / "report.py")
    assert spec and spec.loader
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)
    d = next(iter(smoke_results.values())).parent  # every smoke experiment's directory side by side
    assert report.main([str(d)]) == 0
    out = capsys.readouterr().out
    assert "## headline" in out and "## dynamic_map" in out and "| `method`: p2p |" in out
    rows = list(csv.DictReader((smoke_results["headline"] / "sweep.csv").open()))
    ref = [r for r in rows if r["fabric"] == "fat_tree" and r["gpus"] == "64"]
    mean_step = sum(float(r["iteration_time_s"]) for r in ref) / len(ref)
    assert f"| {mean_step:.1f} |" in out  # the Fat-Tree's mean step over seeds, as the table prints it
    assert report.main([str(d / "nothing-here")]) == 2


def test_readme_results_tables_are_the_committed_sweeps() -> None:
    """Every table row the README's Evaluation shows is what experiments/report.py prints from the committed
    sweep tables in experiments/results/ (so a number in the README cannot drift from its source)."""
    spec = importlib.util.spec_from_file_location("experiments_report", ROOT / "experiments" / "report.py")
    assert spec and spec.loader
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)
    res = ROOT / "experiments" / "results"
    readme = (ROOT / "README.md").read_text()
    tables = [report.headline(res / "headline"), report.anatomy(res / "headline"), report.sensitivities(res)]
    rows = [ln for t in tables for ln in t.splitlines() if ln.startswith("| ") and "---" not in ln]
    assert len(rows) > 30
    missing = [ln for ln in rows if ln not in readme]
    assert not missing, missing[:3]
