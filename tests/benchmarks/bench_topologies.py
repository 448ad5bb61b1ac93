"""Benchmark: build, compile, count and cut every topology kind at 1,024 / 16,384 / 65,536 GPUs.

Run as ``python tests/benchmarks/bench_topologies.py [--sizes 1024 16384] [--kinds fat_tree rfabric]``.
Each case runs in a fresh interpreter (one core), so the peak resident memory it reports is that case's
alone (``resource.getrusage`` high-water mark minus the interpreter's after imports). Targets (issue #3):
build <= 10 s at 16,384 GPUs and <= 60 s at 65,536 GPUs, compile to the link table in the same budget;
issue #15: a new kind (``jupiter``, ``mixnet``, ``topoopt``) builds at 16,384 GPUs in <= 1 s.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

KINDS = ("fat_tree", "rail_optimized", "rfabric", "static_ocs", "jupiter", "mixnet", "topoopt")
SIZES = (1024, 16384, 65536)
BUDGET_S = {16384: 10.0, 65536: 60.0}
#: issue #15: each kind added by it builds at 16,384 GPUs in <= 1 s
NEW_KIND_BUDGET_S = {("jupiter", 16384): 1.0, ("mixnet", 16384): 1.0, ("topoopt", 16384): 1.0}


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def one(kind: str, gpus: int, radix: int) -> dict[str, float | int | str]:
    import topologies
    from rfabric.bom import bill_of_materials, bisection_bandwidth_bps
    from rfabric.config import ClusterConfig

    base = _rss_mib()
    cluster = ClusterConfig(trainer_gpus=gpus // 2, rollout_gpus=gpus // 2)
    params = {"switch_radix": radix} if "switch_radix" in topologies.param_names(kind) else {}
    t0 = time.perf_counter()
    topo = topologies.build(kind, params, cluster)
    t1 = time.perf_counter()
    table = topo.compile()
    t2 = time.perf_counter()
    bom = bill_of_materials(topo)
    t3 = time.perf_counter()
    bis = bisection_bandwidth_bps(topo)
    t4 = time.perf_counter()
    return {"kind": kind, "gpus": gpus, "nodes": topo.graph.number_of_nodes(), "edges": topo.graph.number_of_edges(),
            "arcs": table.num_arcs, "switches": bom.count("switch"), "ocs": bom.count("ocs"),
            "build_s": t1 - t0, "compile_s": t2 - t1, "bom_s": t3 - t2, "bisection_s": t4 - t3,
            "bisection_ratio": bis / (gpus // 2 * cluster.nic_bps), "peak_mib": _rss_mib() - base}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    ap.add_argument("--kinds", nargs="+", default=list(KINDS))
    ap.add_argument("--radix", type=int, default=64)
    ap.add_argument("--one", nargs=2, metavar=("KIND", "GPUS"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(one(args.one[0], int(args.one[1]), args.radix)))
        return 0
    head = (f"{'kind':<15}{'gpus':>7}{'nodes':>9}{'edges':>9}{'switch':>8}{'ocs':>6}{'build_s':>9}{'compile_s':>10}"
            f"{'bom_s':>7}{'cut_s':>7}{'bis/full':>9}{'peak_MiB':>10}  budget")
    print(head)
    print("-" * len(head))
    ok = True
    for n in args.sizes:
        for kind in args.kinds:
            out = subprocess.run([sys.executable, __file__, "--one", kind, str(n), "--radix", str(args.radix)],
                                 capture_output=True, text=True, check=False)
            if out.returncode:
                print(f"{kind:<15}{n:>7}  FAILED: {out.stderr.strip().splitlines()[-1]}")
                ok = False
                continue
            r = json.loads(out.stdout)
            budget = NEW_KIND_BUDGET_S.get((kind, n), BUDGET_S.get(n))
            verdict = ""
            if budget is not None:
                fine = r["build_s"] <= budget and r["compile_s"] <= budget
                ok &= fine
                verdict = f"{'ok' if fine else 'OVER'} (<= {budget:g} s)"
            print(f"{kind:<15}{n:>7}{r['nodes']:>9}{r['edges']:>9}{r['switches']:>8}{r['ocs']:>6}{r['build_s']:>9.2f}"
                  f"{r['compile_s']:>10.2f}{r['bom_s']:>7.2f}{r['bisection_s']:>7.2f}{r['bisection_ratio']:>9.3f}"
                  f"{r['peak_mib']:>10.0f}  {verdict}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
