"""Benchmark: routing models at scale (``sim.routing`` spray / hash / adaptive / split).

Run as ``python tests/benchmarks/bench_routing.py [--sizes 16384] [--cases wsync:spray step:spray step:hash]``.
Each case runs in a fresh interpreter. Cases (non-blocking Fat-Tree, radix 64, merge_tolerance 0.01):

* ``wsync:<routing>``: the trainer -> rollout weight sync of one Qwen2.5-72B RL step alone; reported
  against its analytic NIC-bound time (the busiest NIC's bytes over the NIC rate): goal ``spray`` <= 1.05x.
* ``step:<routing>``: one whole RL step (rollout + train + weight sync) of ``--model``; goal: the
  ``spray`` wall time <= 1.5x the ``hash`` wall time at 16,384 GPUs.

Measured (shared 2-core machine, so wall times are noisy; see the closing note of issue #15 for medians)::

    case           gpus   sim_s   vs NIC bound
    wsync:spray   16384   0.3635  1.000
    wsync:hash    16384   2.181   6.000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.benchmark

SIZES = (16384,)
CASES = ("wsync:spray", "wsync:hash", "step:spray", "step:hash")


def one(case: str, gpus: int, eps: float, model: str) -> dict[str, object]:
    import warnings

    import numpy as np

    import topologies
    import traffic
    from rfabric.config import ClusterConfig, SimConfig
    from rfabric.sim import simulate, simulate_flows

    warnings.simplefilter("ignore")
    what, routing = case.split(":")
    cl = ClusterConfig(trainer_gpus=gpus // 2, rollout_gpus=gpus // 2)
    opts = SimConfig(routing=routing, merge_tolerance=eps)
    topo = topologies.build("fat_tree", {"switch_radix": 64}, cl)
    out: dict[str, object] = {"case": case, "gpus": gpus}
    if what == "wsync":
        wl = traffic.build_workload({"kind": "rl_step", "model": "qwen2.5-72b"}, cl, seed=0)
        (ph,) = [p for p in wl.phases if p.phase == "weight_sync"]
        fs = ph.flows
        t0 = time.perf_counter()
        tr = simulate_flows(topo, fs, options=SimConfig(routing=routing, link_latency=False))
        wall = time.perf_counter() - t0
        size = fs.size_bytes * fs.multiplicity
        net = fs.src // cl.gpus_per_server != fs.dst // cl.gpus_per_server
        sent = np.bincount(fs.src[net], size[net], minlength=gpus)
        recv = np.bincount(fs.dst[net], size[net], minlength=gpus)
        bound = float(max(sent.max(), recv.max())) * 8 / cl.nic_bps
        out.update(sim_s=tr.end_s, bound_s=bound, ratio=tr.end_s / bound, wall_s=wall, flows=len(fs))
    else:
        wl = traffic.build_workload({"kind": "rl_step", "model": model}, cl, seed=0)
        t0 = time.perf_counter()
        res = simulate(topo, wl, None, options=opts)
        wall = time.perf_counter() - t0
        out.update(sim_s=res.iteration_time_s, wall_s=wall, flows=sum(len(p.flows) for p in wl.phases),
                   events=res.events)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    ap.add_argument("--cases", nargs="+", default=list(CASES))
    ap.add_argument("--eps", type=float, default=0.01)
    ap.add_argument("--model", default="qwen2.5-14b")
    ap.add_argument("--one", nargs=2, metavar=("CASE", "GPUS"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(one(args.one[0], int(args.one[1]), args.eps, args.model)))
        return 0
    print(f"{'case':<14}{'gpus':>7}{'sim_s':>10}{'vs bound':>10}{'wall_s':>9}{'flows':>9}")
    for n in args.sizes:
        for case in args.cases:
            r = subprocess.run([sys.executable, __file__, "--one", case, str(n), "--eps", str(args.eps), "--model",
                                args.model], capture_output=True, text=True, check=False)
            if r.returncode:
                print(f"{case:<14}{n:>7}  FAILED: {(r.stderr.strip().splitlines() or ['?'])[-1]}")
                continue
            o = json.loads(r.stdout)
            ratio = f"{o['ratio']:.3f}" if "ratio" in o else "-"
            print(f"{case:<14}{n:>7}{o['sim_s']:>10.4g}{ratio:>10}{o['wall_s']:>9.2f}{o['flows']:>9}", flush=True)
    return 0


def test_bench_routing_small() -> None:
    """Smoke run at 1,024 GPUs (opt-in: ``-m benchmark``): spray reaches the NIC bound."""
    r = one("wsync:spray", 1024, 0.01, "qwen2.5-14b")
    assert float(r["ratio"]) <= 1.05  # type: ignore[arg-type]


if __name__ == "__main__":
    sys.exit(main())
