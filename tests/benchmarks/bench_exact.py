"""Benchmark: exact mode is bit-identical on a 16,384-GPU MoE step (issue #19).

Run as ``python tests/benchmarks/bench_exact.py [--gpus 16384] [--update]``.

Plays one pipelined RL step (``experiments/configs/base.yaml``: Qwen3-30B-A3B, the default
``one_step_off`` schedule, Fat-Tree, spray routing) at ``sim.merge_tolerance = 0`` and compares a SHA-256
of every flow's finish time (float64 bytes, in flow order of each phase) against
``golden/exact_step_<gpus>.json``, written by ``--update`` with the engine as it stood when the digest was
taken. The default suite runs the same check on a 256-GPU case (``tests/sim/test_exact_golden.py``);
this one is the 16K step of the issue, too slow for the suite. The Fat-Tree only (the golden predates
it): RFabric's circuit planner now bounds its integer programs by deterministic work limits (node limit,
``solver.ocs_max_columns``) with the wall clock only a reported safety net, so an RFabric digest would be
reproducible too. Prints one JSON line: the digest, whether it matches, flows, events, wall seconds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.benchmark

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "experiments" / "configs" / "base.yaml"
GOLDEN = Path(__file__).parent / "golden"


def digest(gpus: int, model: str = "qwen3-30b-a3b", fabric: str = "fat_tree") -> dict[str, object]:
    from rfabric import api

    cfg = api.load_config(str(BASE), {"cluster.trainer_gpus": gpus // 2, "cluster.rollout_gpus": gpus // 2,
                                      "workload.model": model, "sim.merge_tolerance": 0.0})
    t0 = time.perf_counter()
    wl = api.build_workload(cfg)
    topo = api.build_topology(cfg, fabric)
    res = api.simulate(cfg, topo, wl, None)
    wall = time.perf_counter() - t0
    h = hashlib.sha256()
    flows = 0
    for name in sorted(res.flow_finish_s):
        fin = np.ascontiguousarray(res.flow_finish_s[name], dtype=np.float64)
        h.update(name.encode())
        h.update(fin.tobytes())
        flows += fin.size
    return {"gpus": gpus, "model": model, "fabric": fabric, "mode": wl.schedule.mode,
            "sha256": h.hexdigest(), "flows": flows, "events": int(res.events),
            "iteration_time_s": float(res.iteration_time_s), "wall_s": wall}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--gpus", type=int, default=16384)
    ap.add_argument("--update", action="store_true", help="store this run's digest as the golden one")
    args = ap.parse_args(argv)
    path = GOLDEN / f"exact_step_{args.gpus}.json"
    got = digest(args.gpus)
    if args.update:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(json.dumps({k: v for k, v in got.items() if k != "wall_s"}, indent=1, sort_keys=True) + "\n")
    want = json.loads(path.read_text()) if path.exists() else None
    got["matches"] = want is not None and want["sha256"] == got["sha256"] and want["flows"] == got["flows"]
    print(json.dumps(got), flush=True)
    return 0 if got["matches"] else 1


def test_bench_exact_small() -> None:
    """The digest is a pure function of the inputs (opt-in: ``-m benchmark``)."""
    a, b = digest(1024), digest(1024)
    assert a["sha256"] == b["sha256"] and int(a["flows"]) > 0  # type: ignore[call-overload]


if __name__ == "__main__":
    sys.exit(main())
