"""Markdown tables of the evaluation from saved sweep tables: ``python experiments/report.py [RESULTS_DIR]``.

Reads ``RESULTS_DIR/<experiment>/sweep.csv`` (default ``experiments/results``, the committed copy of the runs
behind the README) and prints the README's "Results" tables to stdout: per model and size every fabric's
step time / performance per network $ / per cluster $ relative to the non-blocking Fat-Tree (mean over
seeds, with the min..max spread of the step-time ratio when there are several seeds), then one table per
sensitivity sweep. Never simulates.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from rfabric.plotting.evaluation import derived, stats
from rfabric.plotting.sweep import read_sweep

HERE = Path(__file__).resolve().parent
SENSITIVITIES = {
    "sync_method": "workload.weight_sync.method",
    "schedule": "workload.schedule.mode",
    "nic_speed": "cluster.nic_gbps",
    "mini_batches": "workload.train.mini_batches",
    "response_length": "workload.rollout.length_sigma",
    "routing": "sim.routing",
    "eps_share": "topology.agg_ocs_share",
    "ocs_price": "cost.prices.ocs_port_usd",
}


def _fabrics(rows: list[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for r in rows:
        seen.setdefault(str(r["fabric"]), None)
    return list(seen)


def _cell(rows: list[dict[str, Any]]) -> str:
    t, t_lo, t_hi = stats([r["time_vs_ref"] for r in rows])
    usd = stats([r["perf_per_usd_vs_ref"] for r in rows])[0]
    cl = stats([r["perf_per_cluster_usd_vs_ref"] for r in rows])[0]
    spread = f" (±{max(t - t_lo, t_hi - t):.3f})" if len(rows) > 1 and t_hi - t_lo > 5e-4 else ""
    return f"{t:.3f}{spread} / {usd:.2f} / {cl:.3f}"


def headline(d: Path) -> str:
    rows = [derived(r) for r in read_sweep(d)]
    out = []
    fabrics = _fabrics(rows)
    for model in sorted({str(r["workload.model"]) for r in rows}):
        grp = [r for r in rows if r["workload.model"] == model]
        out.append(f"**{model}** — cells: *step time / perf per network $ / perf per cluster $*, each × the "
                   "Fat-Tree's (mean over seeds; ± the seeds' largest deviation of the step-time ratio when ≥ 5e-4)\n")
        out.append("| GPUs (trainer + rollout) | seeds | Fat-Tree step (s) | " + " | ".join(fabrics[1:]) + " |")
        out.append("|---" * (3 + len(fabrics) - 1) + "|")
        for gpus in sorted({r["gpus"] for r in grp}):
            g = [r for r in grp if r["gpus"] == gpus]
            ref = [r for r in g if r["fabric"] == fabrics[0]]
            splits = sorted({f"{r['trainer_gpus']:,}+{r['rollout_gpus']:,}" for r in ref})
            step = stats([r["iteration_time_s"] for r in ref])[0]
            cells = [_cell([r for r in g if r["fabric"] == f]) for f in fabrics[1:]]
            out.append(f"| {gpus:,} ({', '.join(splits)}) | {len({r['seed'] for r in ref})} | {step:.1f} | "
                       + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def anatomy(d: Path) -> str:
    rows = [derived(r) for r in read_sweep(d)]
    out = ["| model | GPUs | critical pool | trainer bubble | rollout bubble | weight sync (s) | "
           "bytes on circuits: rfabric / static_ocs / mixnet / topoopt |", "|---" * 6 + "|"]
    for model in sorted({str(r["workload.model"]) for r in rows}):
        for gpus in sorted({r["gpus"] for r in rows if r["workload.model"] == model}):
            g = [r for r in rows if r["workload.model"] == model and r["gpus"] == gpus]
            ref = [r for r in g if r["fabric"] == "fat_tree"]
            share = [stats([r["circuit_byte_share"] for r in g if r["fabric"] == f])[0]
                     for f in ("rfabric", "static_ocs", "mixnet", "topoopt")]
            out.append(f"| {model} | {gpus:,} | {'/'.join(sorted({str(r['critical_cluster']) for r in ref}))} | "
                       f"{stats([r['trainer_bubble'] for r in ref])[0]:.2f} | "
                       f"{stats([r['rollout_bubble'] for r in ref])[0]:.2f} | "
                       f"{stats([r['phase_weight_sync_s'] for r in ref])[0]:.2f} | "
                       + " / ".join("—" if s != s else f"{s:.2f}" for s in share) + " |")
    return "\n".join(out)


def sensitivities(d: Path) -> str:
    """One table over every sensitivity sweep found under ``d``: a row per swept value."""
    out: list[str] = []
    for name, key in SENSITIVITIES.items():
        if not (d / name / "sweep.csv").is_file():
            continue
        rows = read_sweep(d / name)
        fabrics = _fabrics(rows)
        if not out:
            out = ["| sweep: value | Fat-Tree step (s) | " + " | ".join(fabrics[1:]) + " |",
                   "|---" * (2 + len(fabrics) - 1) + "|"]
        by: dict[Any, list[dict[str, Any]]] = defaultdict(list)
        for r in rows:
            by[r[key]].append(r)
        for v, g in by.items():
            step = stats([r["iteration_time_s"] for r in g if r["fabric"] == fabrics[0]])[0]
            cells = [_cell([r for r in g if r["fabric"] == f]) for f in fabrics[1:]]
            out.append(f"| `{key.rsplit('.', 1)[-1]}`: {v} | {step:.1f} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def gain_map(d: Path) -> str:
    rows = read_sweep(d)
    t: dict[tuple[Any, ...], list[float]] = defaultdict(list)
    for r in rows:
        t[(r["fabric"], r["cluster.placement"], r["topology.agg_ocs_share"], r["topology.ocs_reconfig_ms"])].append(
            r["iteration_time_s"])
    gains = []
    for (f, *rest), v in t.items():
        if f == "rfabric" and ("static_ocs", *rest) in t:
            gains.append((100.0 * (stats(t[("static_ocs", *rest)])[0] / stats(v)[0] - 1.0), rest))
    if not gains:
        return "(no rfabric / static_ocs pairs)"
    best = max(gains)
    worst = min(gains)
    return (f"{len(gains)} cells; RFabric's step-time gain over static OCS: max {best[0]:+.2f} % at "
            f"placement={best[1][0]}, OCS share={best[1][1]}, reconfig={best[1][2]} ms; min {worst[0]:+.2f} % at "
            f"placement={worst[1][0]}, OCS share={worst[1][1]}, reconfig={worst[1][2]} ms; "
            f"{sum(1 for g, _ in gains if g > 0.1)} cells > +0.1 %")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("results", nargs="?", type=Path, default=HERE / "results")
    args = ap.parse_args(argv)
    d: Path = args.results
    parts = []
    if (d / "headline" / "sweep.csv").is_file():
        parts += ["## headline", headline(d / "headline"), "## anatomy", anatomy(d / "headline")]
    for name in ("dynamic_map", "dynamic_map_p2p"):
        if (d / name / "sweep.csv").is_file():
            parts += [f"## {name}", gain_map(d / name)]
    if any((d / name / "sweep.csv").is_file() for name in SENSITIVITIES):
        parts += ["## sensitivities", sensitivities(d)]
    if not parts:
        print(f"report.py: error: no sweep.csv under {d}", file=sys.stderr)
        return 2
    print("\n\n".join(parts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
