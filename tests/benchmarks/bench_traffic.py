"""Benchmark: build an RL step (rollout + train + weight sync) at 1k / 4k / 16k GPUs, dense and MoE models.

Run as ``python tests/benchmarks/bench_traffic.py [--sizes 1024 4096 16384] [--models qwen2.5-72b qwen3-30b-a3b]``
(or ``pytest tests/benchmarks/bench_traffic.py -m benchmark``). Half the GPUs train, half generate. Reports
build time, flows per phase and peak memory per case (each case in a fresh interpreter). Targets (issue #4):
build <= 10 s at 16,384 GPUs and <= ~1e6 flows per phase.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.benchmark

MODELS = ("qwen2.5-72b", "qwen3-30b-a3b", "deepseek-v3")
SIZES = (1024, 4096, 16384)
BUDGET_S = 10.0
FLOW_BUDGET = 1_100_000


def one(model: str, gpus: int) -> dict[str, object]:
    from rfabric.config import ClusterConfig
    from traffic import build_workload

    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    cluster = ClusterConfig(trainer_gpus=gpus // 2, rollout_gpus=gpus // 2)
    t0 = time.perf_counter()
    wl = build_workload({"kind": "rl_step", "model": model}, cluster, seed=0)
    dt = time.perf_counter() - t0
    return {"model": model, "gpus": gpus, "build_s": dt, "flows": {p.name: len(p.flows) for p in wl.phases},
            "tb": {p.name: p.flows.total_bytes / 1e12 for p in wl.phases},
            "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0 - base}


def run(sizes: list[int], models: list[str]) -> tuple[bool, list[dict[str, object]]]:
    ok, rows = True, []
    for n in sizes:
        for m in models:
            out = subprocess.run([sys.executable, __file__, "--one", m, str(n)], capture_output=True, text=True,
                                 check=False)
            if out.returncode:
                print(f"{m:<16}{n:>7}  FAILED: {out.stderr.strip().splitlines()[-1]}")
                ok = False
                continue
            r = json.loads(out.stdout)
            flows: dict[str, int] = r["flows"]
            fine = r["build_s"] <= BUDGET_S and max(flows.values()) <= FLOW_BUDGET
            ok &= fine
            cells = "  ".join(f"{k}={v:,}" for k, v in flows.items())
            print(f"{m:<16}{n:>7}{r['build_s']:>9.2f}{r['peak_mib']:>10.0f}  {cells}  {'ok' if fine else 'OVER'}",
                  flush=True)
            rows.append(r)
    return ok, rows


def test_benchmark_traffic_16k() -> None:
    ok, _ = run([16384], ["qwen2.5-72b", "qwen3-30b-a3b"])
    assert ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    ap.add_argument("--models", nargs="+", default=list(MODELS))
    ap.add_argument("--one", nargs=2, metavar=("MODEL", "GPUS"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(one(args.one[0], int(args.one[1]))))
        return 0
    print(f"{'model':<16}{'gpus':>7}{'build_s':>9}{'peak_MiB':>10}  flows per phase")
    ok, _ = run(args.sizes, args.models)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
