"""Exact mode is bit-identical across engine optimisations: per-flow finish times of a MoE RL step.

The stored digests (``golden/exact_moe_step.json``) were taken at ``merge_tolerance = 0`` with the engine
as it stood before the issue #19 speed work; every later optimisation of the event loop, the solves or the
routing must reproduce them bit for bit (SHA-256 over the float64 bytes of every phase's finish times).
If a *deliberate* model change moves them, regenerate with ``python tests/sim/test_exact_golden.py``
and say why in the commit message. The 256-GPU Qwen3-30B-A3B step has ~12k flows and ~1.5k events per
fabric; the RFabric case plans its circuits, so the step includes circuit changes mid-transfer. Both the
sequential step (``schedule.mode: sync``) and the pipelined one (``one_step_off``: phase-instance gating)
are covered.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from rfabric import api

GOLDEN = Path(__file__).parent / "golden" / "exact_moe_step.json"
CASES = (("fat_tree", 256, "sync"), ("rfabric", 256, "sync"), ("fat_tree", 256, "one_step_off"),
         ("rfabric", 256, "one_step_off"))


#: The model these digests were taken with (pinned when the defaults moved to spray routing and the
#: ``span`` RFabric plant, so the digests keep guarding the engine): per-flow hash ECMP, the ``core`` plant.
PINNED = {"sim.routing": "hash"}
PLANT = {"rfabric": {"name": "rfabric", "kind": "rfabric", "wiring": "core"}}


def _key(fabric: str, gpus: int, mode: str) -> str:
    return f"{fabric}-{gpus}" + ("" if mode == "sync" else f"-{mode}")


def _run(fabric: str, gpus: int, mode: str) -> dict[str, object]:
    cfg = api.load_config(None, {"cluster.trainer_gpus": gpus // 2, "cluster.rollout_gpus": gpus // 2,
                                 "workload.model": "qwen3-30b-a3b", "workload.schedule.mode": mode,
                                 "sim.merge_tolerance": 0.0, **PINNED, "fabrics": [PLANT.get(fabric, fabric)],
                                 "reference": fabric})
    wl = api.build_workload(cfg)
    topo = api.build_topology(cfg, fabric)
    sched = api.plan_circuits(cfg, topo, wl) if topo.has_ocs else None
    res = api.simulate(cfg, topo, wl, sched)
    phases = {}
    for name in sorted(res.flow_finish_s):
        fin = np.ascontiguousarray(res.flow_finish_s[name], dtype=np.float64)
        phases[name] = {"sha256": hashlib.sha256(fin.tobytes()).hexdigest(), "flows": int(fin.size),
                        "last_finish_s": float(np.max(fin)) if fin.size else 0.0}
    return {"iteration_time_s": float(res.iteration_time_s), "events": int(res.events), "phases": phases,
            "circuit_sets": len({a.circuits for a in sched.assignments}) if sched else 0}


@pytest.mark.parametrize(("fabric", "gpus", "mode"), CASES)
def test_exact_finish_times_unchanged(fabric: str, gpus: int, mode: str) -> None:
    want = json.loads(GOLDEN.read_text())[_key(fabric, gpus, mode)]
    got = _run(fabric, gpus, mode)
    if fabric == "rfabric":
        assert got["circuit_sets"] >= 2  # the case does exercise circuit changes
    assert got["phases"].keys() == want["phases"].keys()
    for name, w in want["phases"].items():
        g = got["phases"][name]
        assert g["flows"] == w["flows"], name
        assert g["sha256"] == w["sha256"], (f"{fabric} {name}: finish times changed (last finish "
                                            f"{g['last_finish_s']!r} vs {w['last_finish_s']!r})")
    assert got["iteration_time_s"] == want["iteration_time_s"]


if __name__ == "__main__":  # regenerate the golden digests
    old = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
    keys = sys.argv[1:] or [_key(*c) for c in CASES]  # regenerate only the named cases (default: all)
    old.update({_key(*c): _run(*c) for c in CASES if _key(*c) in keys})
    GOLDEN.write_text(json.dumps(old, indent=1, sort_keys=True) + "\n")
    sys.exit(0)
