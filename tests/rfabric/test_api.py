"""The whole pipeline on a tiny case computed by hand, the default run, what-if, and the output files."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from rfabric import api
from rfabric.cost import evaluate, load_catalogue

S_BYTES = 1e9
NIC_BPS = 400e9

TINY = {
    "seed": 0,
    # 16 GPUs = two 8-GPU servers; radix-16 switches: one server per ToR, so the ring crosses the network twice
    "cluster": {"trainer_gpus": 8, "rollout_gpus": 8, "gpus_per_server": 8, "nic_gbps": 400, "nvlink_gbps": 3200},
    "workload": {"kind": "collective", "collective": "all_reduce", "algorithm": "ring", "size_bytes": S_BYTES,
                 "gpus": "all"},
    "topology": {"switch_radix": 16},
    "sim": {"link_latency": False},
    "fabrics": [{"name": "fat_tree", "kind": "fat_tree"}, {"name": "ft_2to1", "kind": "fat_tree", "oversubscription": 2}],
    "reference": "fat_tree",
}


def test_tiny_ring_all_reduce_by_hand() -> None:
    """Ring all-reduce of S over n=16 GPUs: every rank sends 2(n-1)/n*S to its successor. Two of the 16 ring
    edges leave a server (7->8, 15->0) and run at the NIC rate; the other 14 use NVLink (8x faster), so
    the step takes 2(n-1)/n*S / NIC rate. The 2:1 Fat-Tree still has 4 uplinks per ToR for 1 flow: same time."""
    r = api.run(TINY)
    n = 16
    t_hand = 2 * (n - 1) / n * S_BYTES / (NIC_BPS / 8)  # 37.5 ms
    ft, ft2 = r.comparison.row("fat_tree"), r.comparison.row("ft_2to1")
    assert math.isclose(ft.iteration_time_s, t_hand, rel_tol=1e-9)
    assert math.isclose(ft2.iteration_time_s, t_hand, rel_tol=1e-9)
    # perf per $ is (1/T) / network capex, normalised to the reference; capex from the counted parts
    cat = load_catalogue("mixnet-2025", {})
    for name, row in (("fat_tree", ft), ("ft_2to1", ft2)):
        capex = evaluate(r.fabrics[name].bom, cat).capex_network_usd
        assert row.capex_usd == capex > 0
        assert math.isclose(row.perf_per_usd, 1 / t_hand / capex, rel_tol=1e-9)
    assert ft.perf_per_usd_vs_ref == 1.0
    assert math.isclose(ft2.perf_per_usd_vs_ref, ft.capex_usd / ft2.capex_usd, rel_tol=1e-9)
    assert ft2.capex_usd < ft.capex_usd
    assert r.fabrics["fat_tree"].sim.bytes_by_medium().get("optical", 0.0) == 0.0


def test_default_run_compares_fat_tree_and_rfabric(tmp_path: Path) -> None:
    r = api.run()
    names = [row.fabric for row in r.comparison.rows]
    assert {"fat_tree", "rfabric"} <= set(names)
    assert r.workload.num_gpus >= 128 and r.workload.trainer_gpus[1] <= r.workload.rollout_gpus[0]
    for row in r.comparison.rows:
        assert row.iteration_time_s > 0 and row.capex_usd > 0 and row.perf_per_usd > 0
    # the reference's own figures
    assert r.comparison.row("fat_tree").time_vs_ref == 1.0
    # OCS fabric got a schedule whose every assignment passed the checker (solver calls it) and
    # the simulator moved some bytes over circuits
    rf = r.fabrics["rfabric"]
    assert rf.schedule is not None and len(rf.schedule) == len(r.workload.phases)
    assert rf.sim.bytes_by_medium().get("optical", 0.0) > 0
    out = api.write_run(r, tmp_path / "demo")
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert [x["fabric"] for x in rows] == names
    for col in ("fabric", "gpus", "iteration_time_s", "steps_per_s", "capex_usd", "perf_per_usd", "perf_per_usd_vs_ref"):
        assert col in rows[0]
    assert any(c.startswith("phase_") for c in rows[0])
    doc = json.loads((out / "result.json").read_text())
    assert doc["provenance"]["config_hash"] and doc["provenance"]["version"]
    assert (out / "comparison.png").stat().st_size > 1000
    assert (out / "config.resolved.yaml").is_file()
    assert not list(tmp_path.glob(".demo.tmp-*"))  # no temp dirs left behind


def test_same_config_and_seed_same_bytes(tmp_path: Path) -> None:
    a = api.write_run(api.run(TINY), tmp_path / "a", figure=False)
    b = api.write_run(api.run(TINY), tmp_path / "b", figure=False)
    da, db = json.loads((a / "result.json").read_text()), json.loads((b / "result.json").read_text())
    for d in (da, db):
        for f in d["fabrics"].values():
            f.pop("sim_wall_time_s")
    assert da == db
    assert (a / "summary.csv").read_text() == (b / "summary.csv").read_text()


def test_what_if_changes_one_thing() -> None:
    base = api.load_config(TINY)
    r = api.what_if(base, {"workload.size_bytes": 2 * S_BYTES})
    assert math.isclose(r.comparison.row("fat_tree").iteration_time_s, 2 * 2 * 15 / 16 * S_BYTES / (NIC_BPS / 8),
                        rel_tol=1e-9)


@pytest.mark.parametrize(("change", "key"), [({"workload.train.tp": 3}, "workload.train"),
                                             ({"cluster.trainer_gpus": 12}, "cluster.trainer_gpus")])
def test_library_errors_name_the_key(change: dict, key: str) -> None:
    from rfabric.errors import ConfigError

    with pytest.raises(ConfigError) as e:
        api.load_config(None, change)
    assert e.value.key.startswith(key)
