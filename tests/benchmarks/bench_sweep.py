"""Benchmark: a sweep's wall time and speed-up over workers, local process pool and Ray (issue #19).

Run as ``python tests/benchmarks/bench_sweep.py [--experiment scaling] [--smoke] [--runs local:1 local:2 ray:2 ray:4]``.

Each ``executor:workers`` runs ``python experiments/run.py <experiment> -j <workers> --executor <executor>``
from scratch into a fresh temporary directory (a new interpreter each time, so numba's on-disk cache is
warm but nothing else is shared) and reports its wall time, the sum of the runs' own wall times
(``wall_time_s`` of every record: the serial work), the speed-up over the first entry and the parallel
efficiency (speed-up / workers). With Ray the sweep starts a local cluster of ``workers`` CPUs (its start-up,
a few seconds, is part of the wall time). ``--check`` asserts every entry's ``sweep.csv`` has the same rows as
the first one (except the wall-time column): the executor and worker count never change results.

On a machine with C cores no entry can beat C; entries with more workers than cores show the overhead of
oversubscription, not a speed-up.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.benchmark

ROOT = Path(__file__).resolve().parents[2]


def one(experiment: str, executor: str, workers: int, out: Path, smoke: bool) -> dict[str, object]:
    cmd = [sys.executable, str(ROOT / "experiments" / "run.py"), experiment, "--out", str(out), "-j", str(workers),
           "--executor", executor] + (["--smoke"] if smoke else [])
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    runs = [json.loads(p.read_text()) for p in sorted((out / "runs").glob("*.json"))]
    return {"executor": executor, "workers": workers, "wall_s": wall, "runs": len(runs),
            "work_s": sum(float(r.get("wall_time_s", 0.0)) for r in runs)}


def _rows(out: Path) -> list[dict[str, str]]:
    with open(out / "sweep.csv", newline="") as f:
        return [{k: v for k, v in r.items() if not k.endswith("wall_time_s")} for r in csv.DictReader(f)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--experiment", default="scaling")
    ap.add_argument("--smoke", action="store_true", help="the CI-sized sweep")
    ap.add_argument("--runs", nargs="+", default=["local:1", "local:2", "ray:2"], metavar="EXECUTOR:WORKERS")
    ap.add_argument("--check", action="store_true", help="assert all entries give the same sweep.csv rows")
    args = ap.parse_args(argv)
    print(f"{args.experiment}{' --smoke' if args.smoke else ''} on {os.cpu_count()} cores")
    print(f"{'executor':<9}{'workers':>8}{'runs':>6}{'wall_s':>9}{'work_s':>9}{'speed-up':>10}{'efficiency':>12}")
    base: float | None = None
    first: list[dict[str, str]] | None = None
    with tempfile.TemporaryDirectory(prefix="bench_sweep_") as tmp:
        for spec in args.runs:
            executor, _, n = spec.partition(":")
            workers = int(n or 1)
            out = Path(tmp) / f"{executor}-{workers}"
            r = one(args.experiment, executor, workers, out, args.smoke)
            base = base or float(r["wall_s"])  # type: ignore[arg-type]
            speed = base / float(r["wall_s"])  # type: ignore[arg-type]
            print(f"{executor:<9}{workers:>8}{r['runs']:>6}{r['wall_s']:>9.1f}{r['work_s']:>9.1f}{speed:>10.2f}"
                  f"{speed / workers:>12.2f}", flush=True)
            if args.check:
                rows = _rows(out)
                first = first if first is not None else rows
                assert rows == first, f"{spec}: sweep.csv differs from {args.runs[0]}"
    return 0


def test_bench_sweep_smoke() -> None:
    """The smoke scaling sweep with one and two local workers gives the same rows (opt-in: ``-m benchmark``)."""
    assert main(["--smoke", "--runs", "local:1", "local:2", "--check"]) == 0


if __name__ == "__main__":
    sys.exit(main())
