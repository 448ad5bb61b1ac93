"""Benchmark: build + simulate the training phase of one RL step on 16,384 GPUs (8,192 trainer GPUs).

Run as ``python tests/benchmarks/bench_train.py [--gpus 16384] [--models qwen2.5-72b qwen3-30b-a3b]``.
Each case runs in a fresh interpreter; only the trainer's phase steps (phase tag ``train``: log-prob passes
and updates) are simulated, on a non-blocking fat-tree at ``merge_tolerance`` 0.01. Goal (issue #18): the per-layer training graph (with layer grouping) stays
within 2x of the wall time of the coarse model it replaced.

Baseline (coarse model, commit 164411c) and per-layer model: see the README's benchmark section.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.benchmark

MODELS = ("qwen2.5-72b", "qwen3-30b-a3b")
#: the layouts the coarse model chose automatically (TP8; EP8 carved out of DP), pinned so both models
#: simulate the same parallelism
LAYOUT = {"qwen2.5-72b": {"tp": 8}, "qwen3-30b-a3b": {"tp": 8, "ep": 8}}


def one(model: str, gpus: int) -> dict[str, object]:
    import topologies
    import traffic
    from rfabric.config import ClusterConfig, SimConfig
    from rfabric.sim import simulate
    from rfabric.workload import Workload

    cl = ClusterConfig(trainer_gpus=gpus // 2, rollout_gpus=gpus // 2)
    topo = topologies.build("fat_tree", {}, cl)
    t0 = time.perf_counter()
    wl = traffic.build_workload({"kind": "rl_step", "model": model, "train": LAYOUT.get(model, {})}, cl, seed=0)
    train = tuple(p for p in wl.phases if p.phase == "train")  # log-prob passes and updates
    t1 = time.perf_counter()
    trainer = Workload(name=wl.name, num_gpus=wl.num_gpus, phases=train, trainer_gpus=wl.trainer_gpus,
                       rollout_gpus=wl.rollout_gpus, meta=wl.meta)
    res = simulate(topo, trainer, None, options=SimConfig(merge_tolerance=0.01))
    t2 = time.perf_counter()
    return {"model": model, "gpus": gpus, "build_s": t1 - t0, "sim_wall_s": t2 - t1, "wall_s": t2 - t0,
            "train_s": res.iteration_time_s, "flows": sum(len(p.flows) for p in train), "events": res.events}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--gpus", type=int, default=16384)
    ap.add_argument("--models", nargs="+", default=list(MODELS))
    ap.add_argument("--one", nargs=2, metavar=("MODEL", "GPUS"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(one(args.one[0], int(args.one[1]))))
        return 0
    print(f"{'model':<16}{'gpus':>7}{'build_s':>9}{'sim_s':>9}{'wall_s':>9}{'train_s':>10}{'flows':>10}{'events':>8}")
    for m in args.models:
        out = subprocess.run([sys.executable, __file__, "--one", m, str(args.gpus)], capture_output=True, text=True,
                             check=False)
        if out.returncode:
            print(f"{m:<16}{args.gpus:>7}  FAILED: {(out.stderr.strip().splitlines() or ['?'])[-1]}")
            continue
        r = json.loads(out.stdout)
        print(f"{m:<16}{r['gpus']:>7}{r['build_s']:>9.2f}{r['sim_wall_s']:>9.2f}{r['wall_s']:>9.2f}"
              f"{r['train_s']:>10.4g}{r['flows']:>10}{r['events']:>8}", flush=True)
    return 0


def test_bench_train_small() -> None:
    """Smoke run at 1,024 GPUs (opt-in: ``-m benchmark``)."""
    r = one("qwen2.5-14b", 1024)
    assert float(r["train_s"]) > 0  # type: ignore[arg-type]


if __name__ == "__main__":
    sys.exit(main())
