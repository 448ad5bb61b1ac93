"""Sweep expansion, atomic per-run records, resume without recomputation, failures recorded."""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from rfabric.errors import ConfigError
from rfabric.sweep import expand, finished, load_sweep, run_points

SPEC = {
    "base": {"seed": 0, "cluster": {"trainer_gpus": 16}},
    "sweep": {"cluster.nic_gbps": [100, 400], "cluster.trainer_gpus,cluster.rollout_gpus": [[16, 8], [32, 16]]},
    "seeds": [0, 1],
}


def test_expand_cartesian_zip_and_seeds() -> None:
    points = expand(load_sweep(SPEC))
    assert len(points) == 2 * 2 * 2
    assert len({p.run_id for p in points}) == 8
    first = points[0]
    assert first.point == {"cluster.nic_gbps": 100, "cluster.trainer_gpus": 16, "cluster.rollout_gpus": 8}
    assert first.config["cluster"] == {"trainer_gpus": 16, "nic_gbps": 100, "rollout_gpus": 8}
    assert [p.seed for p in points[:2]] == [0, 1]
    # stable ids: same spec, same ids
    assert [p.run_id for p in expand(load_sweep(SPEC))] == [p.run_id for p in points]


@pytest.mark.parametrize(("spec", "key"), [
    ({"base": {}, "swep": {}}, "swep"),
    ({"base": {}, "sweep": {"a": []}}, "sweep.a"),
    ({"base": {}, "sweep": {"a,b": [[1]]}}, "sweep.a,b[0]"),
    ({"base": {}, "seeds": [1.5]}, "seeds"),
    ({"base": 3}, "base"),
])
def test_bad_sweep_files(spec: dict, key: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_sweep(spec)
    assert e.value.key == key


class _Counting:
    def __init__(self, fail_on: int | None = None) -> None:
        self.calls: list[int] = []
        self.fail_on = fail_on

    def __call__(self, config: Mapping[str, Any]) -> dict[str, Any]:
        g = config["cluster"]["trainer_gpus"]
        self.calls.append(g)
        if g == self.fail_on:
            raise RuntimeError("boom")
        return {"rows": [{"fabric": "x", "value": g * 2 + config["seed"]}]}


def test_records_resume_and_failures(tmp_path: Path) -> None:
    points = expand(load_sweep(SPEC))
    fn = _Counting(fail_on=32)
    stats = run_points(points, fn, tmp_path)
    assert stats == {"total": 8, "skipped": 0, "ok": 4, "error": 4, "lost": 0}
    recs = finished(tmp_path)
    assert len(recs) == 8
    bad = [r for r in recs.values() if r["status"] == "error"]
    assert all("RuntimeError: boom" in r["error"] for r in bad)
    before = {p.name: p.read_bytes() for p in (tmp_path / "runs").iterdir()}
    # a second run recomputes nothing and rewrites no record
    fn2 = _Counting()
    stats = run_points(points, fn2, tmp_path)
    assert fn2.calls == [] and stats["skipped"] == 8
    assert {p.name: p.read_bytes() for p in (tmp_path / "runs").iterdir()} == before
    # --retry-failed re-runs exactly the failed ones
    stats = run_points(points, fn2, tmp_path, retry_failed=True)
    assert sorted(fn2.calls) == [32, 32, 32, 32] and stats["ok"] == 4
    rows = list(csv.DictReader((tmp_path / "sweep.csv").open()))
    assert len(rows) == 8 and all(r["status"] == "ok" for r in rows)
    assert {r["value"] for r in rows} == {"32", "33", "64", "65"}


def test_partial_sweep_resumes_only_missing(tmp_path: Path) -> None:
    points = expand(load_sweep(SPEC))
    run_points(points[:3], _Counting(), tmp_path)
    (tmp_path / "runs" / f"{points[3].run_id}.json").write_text("{truncated")  # a torn write is re-run
    fn = _Counting()
    stats = run_points(points, fn, tmp_path)
    assert stats["skipped"] == 3 and len(fn.calls) == 5
    assert json.loads((tmp_path / "runs" / f"{points[3].run_id}.json").read_text())["status"] == "ok"


def test_unknown_executor(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        run_points([], _Counting(), tmp_path, executor="dask")
    assert e.value.key == "--executor"


@pytest.mark.ray
def test_ray_executor_local_cluster(tmp_path: Path) -> None:
    """The Ray executor on a local Ray: every point recorded once, same records as the process pool."""
    pytest.importorskip("ray", reason="Ray is an optional extra: pip install -e '.[ray]'")
    points = expand(load_sweep(SPEC))
    stats = run_points(points, dict, tmp_path / "ray", workers=2, executor="ray")
    assert stats == {"total": 8, "skipped": 0, "ok": 8, "error": 0, "lost": 0}
    local = run_points(points, dict, tmp_path / "local", workers=1)
    assert local["ok"] == 8
    ray_docs, local_docs = finished(tmp_path / "ray"), finished(tmp_path / "local")
    assert set(ray_docs) == set(local_docs) == {p.run_id for p in points}
    for rid, doc in ray_docs.items():  # the function's output (the config itself) came back intact
        assert doc["cluster"] == local_docs[rid]["cluster"]
    # resume through Ray: nothing recomputed
    again = run_points(points, dict, tmp_path / "ray", workers=2, executor="ray")
    assert again == {"total": 8, "skipped": 8, "ok": 0, "error": 0, "lost": 0}


def test_failed_point_in_process_pool_does_not_break_the_sweep(tmp_path: Path) -> None:
    """A ConfigError raised in a worker comes back intact (picklable) and fails only its own point."""
    from rfabric.api import sweep_point

    spec = {"base": {"seed": 0, "cluster": {"trainer_gpus": 8, "rollout_gpus": 8},
                     "workload": {"kind": "collective", "size_bytes": 1e8},
                     "topology": {"switch_radix": 16}, "fabrics": [{"name": "fat_tree", "kind": "fat_tree"}],
                     "reference": "fat_tree"},
            "sweep": {"cluster.trainer_gpus": [8, 12, 16]}}  # 12 GPUs is not whole servers
    points = expand(load_sweep(spec))
    stats = run_points(points, sweep_point, tmp_path, workers=2)
    assert stats == {"total": 3, "skipped": 0, "ok": 2, "error": 1, "lost": 0}
    docs = finished(tmp_path)
    bad = [d for d in docs.values() if d["status"] != "ok"]
    assert len(bad) == 1 and "cluster.trainer_gpus" in bad[0]["error"] and "ConfigError" in bad[0]["error"]
    assert oct((tmp_path / "runs" / f"{points[0].run_id}.json").stat().st_mode & 0o777) == "0o644"


def test_pickled_config_error_keeps_its_fields() -> None:
    import pickle

    e = pickle.loads(pickle.dumps(ConfigError("cluster.nic_gbps", "must be > 0", -1)))
    assert (e.key, e.message, e.value, str(e)) == ("cluster.nic_gbps", "must be > 0", -1, "cluster.nic_gbps = -1: must be > 0")


def _part(config: Mapping[str, Any], part: str) -> dict[str, Any]:
    g = config["cluster"]["trainer_gpus"]
    if part == "bad" and g == 32:
        raise RuntimeError("part boom")
    return {"part": part, "value": g}


def _combine(config: Mapping[str, Any], outs: list[dict[str, Any]]) -> dict[str, Any]:
    return {"rows": [{"fabric": o["part"], "value": o["value"] + config["seed"]} for o in outs]}


@pytest.mark.parametrize("workers", [1, 2])
def test_point_parts_are_units_of_work_and_combine_in_order(tmp_path: Path, workers: int) -> None:
    points = expand(load_sweep(SPEC))
    stats = run_points(points, _part, tmp_path, workers=workers, parts=lambda c: ["a", "bad"], combine=_combine)
    # the points with 32 trainer GPUs fail through their "bad" part; the others combine both parts in order
    assert stats == {"total": 8, "skipped": 0, "ok": 4, "error": 4, "lost": 0}
    for p in points:
        doc = json.loads((tmp_path / "runs" / f"{p.run_id}.json").read_text())
        if p.config["cluster"]["trainer_gpus"] == 32:
            assert doc["status"] == "error" and "part boom" in doc["error"]
        else:
            assert doc["status"] == "ok"
            assert [r["fabric"] for r in doc["rows"]] == ["a", "bad"]
            assert [r["value"] for r in doc["rows"]] == [16 + p.seed] * 2


def test_sweep_fabric_parts_give_the_rows_of_a_whole_point() -> None:
    from rfabric import api

    cfg = {"seed": 0, "cluster": {"trainer_gpus": 16, "rollout_gpus": 16},
           "fabrics": [{"name": "fat_tree", "kind": "fat_tree"}, {"name": "rfabric", "kind": "rfabric"}],
           "reference": "fat_tree"}
    whole = api.sweep_point(cfg)
    names = api.sweep_fabrics(cfg)
    assert names == ["fat_tree", "rfabric"]
    split = api.sweep_combine(cfg, [api.sweep_fabric(cfg, n) for n in names])
    strip = lambda rows: [{k: v for k, v in r.items() if k != "sim_wall_time_s"} for r in rows]  # noqa: E731
    assert strip(split["rows"]) == strip(whole["rows"])
    assert split["config_hash"] == whole["config_hash"]


def test_units_of_work_run_largest_first_with_stable_ties(tmp_path: Path) -> None:
    """With a work estimate the (point, part) units start largest first (LPT); equal estimates keep the
    sweep order; an estimate that raises counts as 0; the records do not depend on the order."""
    order: list[tuple[int, float, str]] = []

    def fn(config: Mapping[str, Any], part: str) -> dict[str, Any]:
        order.append((config["cluster"]["trainer_gpus"], config["cluster"]["nic_gbps"], part))
        return {"part": part, "value": config["cluster"]["trainer_gpus"]}

    def work(config: Mapping[str, Any], part: str) -> float:
        if part == "x":
            raise RuntimeError("no estimate")
        return float(config["cluster"]["trainer_gpus"])

    points = expand(load_sweep({**SPEC, "seeds": [0]}))  # nic 100/400 x trainers 16/32, in this order
    run_points(points, fn, tmp_path / "lpt", parts=lambda c: ["a", "x"], combine=_combine, work=work)
    assert order == [(32, 100, "a"), (32, 400, "a"), (16, 100, "a"), (16, 400, "a"),
                     (16, 100, "x"), (32, 100, "x"), (16, 400, "x"), (32, 400, "x")]
    order.clear()
    run_points(points, fn, tmp_path / "plain", parts=lambda c: ["a", "x"], combine=_combine)
    assert order[0] == (16, 100, "a")  # without an estimate: the sweep order
    for p in points:
        a = json.loads((tmp_path / "lpt" / "runs" / f"{p.run_id}.json").read_text())
        b = json.loads((tmp_path / "plain" / "runs" / f"{p.run_id}.json").read_text())
        assert a["rows"] == b["rows"]


def test_sweep_work_is_the_points_gpus() -> None:
    from rfabric import api

    fabrics = [{"name": "fat_tree", "kind": "fat_tree"}]
    assert api.sweep_work({"cluster": {"trainer_gpus": 48, "rollout_gpus": 16}, "fabrics": fabrics}, "fat_tree") == 64.0
    with pytest.raises(ConfigError):
        api.sweep_work({"cluster": {"trainer_gpus": -1}, "fabrics": fabrics}, "fat_tree")
