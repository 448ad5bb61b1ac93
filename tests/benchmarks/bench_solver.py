"""Benchmark: circuit solving per phase at P = 8 ... 128 pods, 16 optical uplinks per pod.

Run as ``python tests/benchmarks/bench_solver.py [--pods 8 16 32 64 128] [--ports-per-ocs 1 2]``
(or ``pytest tests/benchmarks/bench_solver.py -m benchmark``). Plant (the design notes' setup): each pod has
16 optical uplinks spread over ``16 / ports_per_ocs`` OCSes (one port per pod per OCS is the hard duplex
case), 4 uplinks' worth of always-on electrical capacity and 16 uplinks' worth of hosts. Phases: ``ring``
(ring all-reduce, pod i -> i+1), ``sync`` (weight sync, trainer pod i -> rollout pod i + P/2), ``skew``
(MoE-like: 10 % of pod pairs, Pareto volumes), ``a2a`` (uniform all-to-all) and ``a2a_ln`` (all-to-all
with lognormal volumes: the hard one, where the MILP improves on the greedy and a gap remains). Reported per
phase: greedy time and alpha, full ``highs`` solve time (heuristic + MILP + port-level realisation, with the
exact per-OCS step and the per-OCS MILP when the counts cannot be built), alpha of the realised circuits,
proven bound, gap, winning stage, how the counts became ports (``fast`` / ``exact`` / ``split``), the time
to realise the final counts again from scratch, and dropped circuits. Goals (issues #5, #11): solve +
realisation <= 1 s per phase at P = 128 within 1 % of the bound on the sparse phases (ring, sync, skew);
on the dense ones (a2a, a2a_ln) the gap is reported and the time only printed.

Measured (2-core machine shared with ~8 engineers, so +-30 %), P = 128, ``--time-limit 0.8``, after #11:

===  ======  =======  ======  ======  =====  =========  ===========  =====
ppo  phase   solve s  alpha   bound   gap    stage      termination  ports
===  ======  =======  ======  ======  =====  =========  ===========  =====
1    ring    0.25     0.7500  0.7500  0      heuristic  optimal      fast
1    sync    0.12     1.2500  1.2500  0      heuristic  optimal      fast
1    skew    0.45     1.2500  1.2500  0      heuristic  optimal      fast
1    a2a     3.6      0.2860  0.2860  0      milp_ocs   optimal      split
1    a2a_ln  5.3      0.3211  0.3373  4.8 %  milp_ocs   feasible     split
2    ring    0.20     0.7500  0.7500  0      heuristic  optimal      fast
2    sync    0.10     1.2500  1.2500  0      heuristic  optimal      fast
2    skew    0.20     1.2500  1.2500  0      heuristic  optimal      fast
2    a2a     0.21     0.2860  0.2860  0      heuristic  optimal      fast
2    a2a_ln  1.5      0.3211  0.3373  4.8 %  heuristic  feasible     fast
===  ======  =======  ======  ======  =====  =========  ===========  =====

With one port per pod per OCS the dense phases are edge colourings of 16-regular graphs with 16 colours:
the greedy's counts leave 2 of 1,024 circuits unplaced, the exact step cannot settle them within its
limit, and the per-OCS MILP (130 k columns) re-solves over what can be built: that is where the seconds go.

``--step GPUS [GPUS ...] [--models ...]`` instead plans whole RL steps through the public pipeline
(``experiments/configs/base.yaml``, the RFabric fabric, each case in a fresh interpreter) and reports the
planning alone: wall and CPU seconds, peak resident memory, circuits per planned phase and the planner's
alpha / bound for each (issue #19: planning ~1 s at 16,384 GPUs, a 65,536-GPU step <= 30 s within 4 GiB).
Measured on a 2-core machine shared with other users (CPU seconds are the steadier figure), Qwen3-30B-A3B:

======  ==============================  ===================================
GPUs    before (issue #19)              after
======  ==============================  ===================================
4,096   0.52 CPU-s                      0.34-0.43 CPU-s
16,384  5.05 CPU-s                      0.9-1.5 CPU-s (numba's first use ~0.35)
65,536  58 CPU-s (greedy most of it)    4.3-4.9 CPU-s, peak RSS 0.8 GB
======  ==============================  ===================================

(Qwen2.5-72B alike: 0.39, 1.13 and 4.9 CPU-s.) numba's first use in a process (~0.35 s) falls on whichever
of planning and simulation comes first: in a whole step (bench_step) it is shared with the simulator.
The same simulated iteration times at 16,384 GPUs (Qwen3-30B-A3B 53.7565 s, Qwen2.5-72B 191.4841 s) and the
same circuits at 4,096. A phase whose alpha one pair pins (a pair sharing no OCS, on its electrical
path) now still gets circuits for the other pairs (the train epoch at 16,384 GPUs: 3,048 circuits, none
before; at 65,536: 12,204, 12,054 before). Before, most of the time went to a dense per-round assignment over all
ToR pairs and to per-OCS programs for counts that could not be built: the greedy now works on the pairs
with demand, capped by the ports each pair shares on the OCSes.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.benchmark

PODS = (8, 16, 32, 64, 128)
UPLINKS = 16
PHASE_BUDGET_S = 1.0
SPARSE_GAP = 0.01
SPARSE = ("ring", "sync", "skew")


def traffic(kind: str, P: int) -> np.ndarray:
    i = np.arange(P)
    T = np.zeros((P, P))
    if kind == "ring":
        T[i, (i + 1) % P] = 1e9
    elif kind == "sync":
        h = P // 2
        T[i[:h], i[:h] + h] = 1e9
    elif kind == "a2a_ln":  # all-to-all with lognormal volumes: the MILP improves on the greedy, a gap stays
        T = np.random.default_rng(P).lognormal(0.0, 0.5, size=(P, P)) * 1e9
        np.fill_diagonal(T, 0.0)
    elif kind == "skew":  # MoE-like: 10 % of pairs, heavy-tailed volumes
        rng = np.random.default_rng(P)
        T = rng.pareto(1.2, size=(P, P)) * (rng.random((P, P)) < 0.1) * 1e9
        np.fill_diagonal(T, 0.0)
    else:
        T = (np.ones((P, P)) - np.eye(P)) * 1e9
    return T


def one(P: int, kind: str, ports_per_ocs: int, time_limit_s: float) -> dict[str, object]:
    import solver
    from solver.decompose import realise
    from solver.formulation import make_problem
    from solver.heuristics import evaluate_alpha, greedy, toy_domain

    d = toy_domain(P, ports=ports_per_ocs, ocs=UPLINKS // ports_per_ocs, eps_bps=4 * 100e9,
                   host_bps=UPLINKS * 100e9)
    p = make_problem(d, traffic(kind, P), np.zeros(P), np.zeros(P))
    t0 = time.perf_counter()
    xg, zg = greedy(p)
    t_greedy = time.perf_counter() - t0
    a_greedy = evaluate_alpha(p, xg, zg)
    t0 = time.perf_counter()
    res, _ = solver.solve_domain(p, solver.parse_options({"time_limit_s": time_limit_s, "mip_gap": 1e-4}))
    t_solve = time.perf_counter() - t0
    t0 = time.perf_counter()
    r = realise(d, res.x, res.z)
    t_dec = time.perf_counter() - t0
    return {"P": P, "phase": kind, "greedy_s": t_greedy, "greedy_alpha": a_greedy, "solve_s": t_solve,
            "alpha": res.alpha, "alpha_model": res.alpha_model, "bound": res.bound, "gap": res.gap,
            "stage": res.stage, "termination": res.termination, "decompose_s": t_dec, "dropped": res.dropped,
            "redropped": r.dropped, "rows": res.rows, "cols": res.cols, "realisation": res.realisation}


def run(pods: list[int], ports: list[int], time_limit_s: float) -> tuple[bool, list[dict[str, object]]]:
    ok, rows = True, []
    print(f"{'ppo':>3}{'P':>5} {'phase':<6}{'greedy s':>9}{'greedy a':>9}{'solve s':>9}{'alpha':>8}{'model a':>8}"
          f"{'bound':>8}{'gap':>8}  {'stage':<10}{'term':<11}{'real':<6}{'dec ms':>7}{'drop':>5}{'rows':>7}")
    for ppo in ports:
        for P in pods:
            for kind in ("ring", "sync", "skew", "a2a", "a2a_ln"):
                r = one(P, kind, ppo, time_limit_s)
                rows.append({"ports_per_ocs": ppo, **r})
                fine = int(r["dropped"]) == 0 or r["termination"] != "optimal"  # never "optimal" with losses
                if kind in SPARSE and P == 128:
                    fine &= float(r["solve_s"]) <= PHASE_BUDGET_S * 1.3  # 30 % timing noise
                    fine &= float(r["gap"]) <= SPARSE_GAP
                else:
                    fine &= np.isfinite(float(r["gap"]))  # dense: the gap is reported
                ok &= fine
                print(f"{ppo:>3}{P:>5} {kind:<6}{r['greedy_s']:>9.3f}{r['greedy_alpha']:>9.4f}{r['solve_s']:>9.3f}"
                      f"{r['alpha']:>8.4f}{r['alpha_model']:>8.4f}{r['bound']:>8.4f}{r['gap']:>8.2%}  "
                      f"{r['stage']:<10}{r['termination']:<11}{r['realisation']:<6}{1e3 * float(r['decompose_s']):>7.1f}"
                      f"{r['dropped']:>5}"
                      f"{r['rows']:>7}  {'ok' if fine else 'OVER'}", flush=True)
    return ok, rows


ROOT = Path(__file__).resolve().parents[2]


def plan_step(gpus: int, model: str) -> dict[str, object]:
    """Plan the circuits of one RL step on the RFabric fabric (the base experiment config) and time it."""
    from rfabric import api

    cfg = api.load_config(str(ROOT / "experiments" / "configs" / "base.yaml"),
                          {"cluster.trainer_gpus": gpus // 2, "cluster.rollout_gpus": gpus // 2, "workload.model": model})
    wl = api.build_workload(cfg)
    topo = api.build_topology(cfg, "rfabric")
    t0, c0 = time.perf_counter(), time.process_time()
    sched = api.plan_circuits(cfg, topo, wl)
    t1, c1 = time.perf_counter(), time.process_time()
    return {"gpus": gpus, "model": model, "plan_s": t1 - t0, "plan_cpu_s": c1 - c0,
            "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
            "phases": [{"phase": d.phase, "action": str(d.action), "circuits": d.circuits,
                        "alpha": None if d.alpha != d.alpha else d.alpha,
                        "bound": None if d.bound != d.bound else d.bound} for d in sched.decisions]}


def run_steps(sizes: list[int], models: list[str]) -> None:
    print(f"{'model':<15}{'gpus':>7}{'plan_s':>8}{'cpu_s':>8}{'peak_MiB':>10}  phases (circuits, alpha/bound)")
    for model in models:
        for n in sizes:
            out = subprocess.run([sys.executable, __file__, "--one-step", str(n), model], capture_output=True,
                                 text=True, check=False)
            if out.returncode:
                print(f"{model:<15}{n:>7}  FAILED: {(out.stderr.strip().splitlines() or ['?'])[-1]}", flush=True)
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            ph = "; ".join(f"{p['phase']} {p['circuits']} "
                           + ("-" if p["alpha"] is None else f"{p['alpha']:.4g}/{p['bound']:.4g}") for p in r["phases"])
            print(f"{model:<15}{n:>7}{r['plan_s']:>8.2f}{r['plan_cpu_s']:>8.2f}{r['peak_mib']:>10.0f}  {ph}", flush=True)


def test_solver_benchmark() -> None:
    ok, _ = run(list(PODS), [1, 2], time_limit_s=0.8)
    assert ok


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pods", type=int, nargs="+", default=list(PODS))
    ap.add_argument("--ports-per-ocs", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--time-limit", type=float, default=0.8, help="MILP seconds per phase")
    ap.add_argument("--step", type=int, nargs="+", metavar="GPUS", help="plan whole RL steps at these sizes")
    ap.add_argument("--models", nargs="+", default=["qwen3-30b-a3b", "qwen2.5-72b"], help="with --step")
    ap.add_argument("--one-step", nargs=2, metavar=("GPUS", "MODEL"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one_step:
        print(json.dumps(plan_step(int(a.one_step[0]), a.one_step[1])))
        raise SystemExit(0)
    if a.step:
        run_steps(a.step, a.models)
        raise SystemExit(0)
    ok, _ = run(a.pods, a.ports_per_ocs, a.time_limit)
    raise SystemExit(0 if ok else 1)
