"""Benchmark: the pipelined RL step (one_step_off) against the sequential one (sync), same flows.

Run as ``python tests/benchmarks/bench_pipeline.py [--sizes 16384] [--models qwen3-30b-a3b qwen2.5-72b]
[--fabrics fat_tree rfabric] [--modes sync one_step_off] [--eps 0.01]``.

Each (size, model, fabric, mode) runs in a fresh interpreter on ``experiments/configs/base.yaml`` (half
trainers, half rollout) through :func:`rfabric.api.plan_and_simulate` -- for RFabric in a pipelined mode that
is the two passes (static union assignment, then per-epoch circuits) -- and reports the wall seconds of
planning + simulation, the period, the events and the peak resident memory. The last column is the wall
time relative to the ``sync`` run of the same case.

Goal (issue #13): the 16,384-GPU ``one_step_off`` step costs at most 1.5x the wall time of the same ``sync``
simulation. The machine has 2 cores shared with other users: numbers are noisy.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.benchmark

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "experiments" / "configs" / "base.yaml"


def one(gpus: int, model: str, fabric: str, mode: str, eps: float) -> dict[str, object]:
    from rfabric import api

    overrides = {"cluster.trainer_gpus": gpus // 2, "cluster.rollout_gpus": gpus // 2, "workload.model": model,
                 "sim.merge_tolerance": eps, "workload.schedule.mode": mode}
    cfg = api.load_config(str(BASE), overrides)
    wl = api.build_workload(cfg)
    topo = api.build_topology(cfg, fabric)
    t0 = time.perf_counter()
    _, res = api.plan_and_simulate(cfg, topo, wl)
    wall = time.perf_counter() - t0
    return {"gpus": gpus, "model": model, "fabric": fabric, "mode": mode, "wall_s": wall,
            "iteration_time_s": res.iteration_time_s, "events": res.events,
            "critical": res.extra.get("critical_cluster", ""),
            "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[16384])
    ap.add_argument("--models", nargs="+", default=["qwen3-30b-a3b"])
    ap.add_argument("--fabrics", nargs="+", default=["fat_tree", "rfabric"])
    ap.add_argument("--modes", nargs="+", default=["sync", "one_step_off"])
    ap.add_argument("--eps", type=float, default=0.01)
    ap.add_argument("--timeout", type=float, default=3600.0)
    ap.add_argument("--one", nargs=4, metavar=("GPUS", "MODEL", "FABRIC", "MODE"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(one(int(args.one[0]), args.one[1], args.one[2], args.one[3], args.eps)))
        return 0
    head = f"{'model':<15}{'fabric':<10}{'gpus':>7}{'mode':>14}{'period_s':>10}{'wall_s':>9}{'events':>8}{'MiB':>7}{'vs_sync':>8}"
    print(f"merge_tolerance={args.eps}\n{head}\n{'-' * len(head)}")
    for n in args.sizes:
        for model in args.models:
            for fabric in args.fabrics:
                base_wall = None
                for mode in args.modes:
                    cmd = [sys.executable, __file__, "--one", str(n), model, fabric, mode, "--eps", str(args.eps)]
                    out = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=args.timeout)
                    if out.returncode:
                        print(f"{model:<15}{fabric:<10}{n:>7}{mode:>14}  FAILED: "
                              f"{(out.stderr.strip().splitlines() or ['?'])[-1]}", flush=True)
                        continue
                    r = json.loads(out.stdout.strip().splitlines()[-1])
                    wall = float(r["wall_s"])
                    base_wall = wall if mode == "sync" else base_wall
                    ratio = f"{wall / base_wall:.2f}" if base_wall else "-"
                    print(f"{model:<15}{fabric:<10}{n:>7}{mode:>14}{r['iteration_time_s']:>10.2f}{wall:>9.2f}"
                          f"{r['events']:>8}{r['peak_mib']:>7.0f}{ratio:>8}", flush=True)
    return 0


def test_bench_pipeline_small() -> None:
    """Smoke run at 256 GPUs (opt-in: ``-m benchmark``)."""
    r = one(256, "qwen3-30b-a3b", "rfabric", "one_step_off", 0.01)
    assert float(r["wall_s"]) > 0 and float(r["iteration_time_s"]) > 0  # type: ignore[arg-type]


if __name__ == "__main__":
    sys.exit(main())
