"""Run an experiment's sweep and draw its figure: ``python experiments/run.py NAME [--smoke] [--out DIR]``.

Each experiment is a sweep file under ``experiments/configs/`` (``configs/smoke/`` for the CI-sized
version) and a figure in :mod:`rfabric.plotting.figures`. The same thing from the shell::

    rfabric sweep experiments/configs/scaling.yaml --out results/scaling
    rfabric plot scaling results/scaling

Sweeps resume: running the same command again skips every finished run. ``--plot-only`` redraws from
saved results without simulating.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from rfabric import api, sweep
from rfabric.errors import ConfigError
from rfabric.plotting.figures import FIGURES
from rfabric.plotting.sweep import save

HERE = Path(__file__).resolve().parent
#: experiment -> the figures drawn from its results (FIGURES keys); the evaluation (issue #17) first
EXPERIMENTS: dict[str, tuple[str, ...]] = {
    "headline": ("headline", "anatomy"),
    "dynamic_map": ("dynamic_map",),
    "dynamic_map_p2p": ("dynamic_map",),
    **{n: (n,) for n in ("ocs_price", "eps_share", "nic_speed", "response_length", "mini_batches", "routing",
                         "sync_method", "schedule")},
    "scaling": ("scaling",),
    "reconfig": ("reconfig",),
    "phases": ("phases",),
}


#: experiments made of several sweep files into one results directory (default: the one file NAME.yaml).
#: The headline runs 1,024 and 4,096 GPUs with three seeds, 16,384 GPUs with one (three for Qwen3-235B-A22B;
#: the 2-hour budget of the 2-core machine; README "Evaluation"); its smoke version is the one CI-sized file.
SWEEPS: dict[str, tuple[str, ...]] = {"headline": ("headline", "headline-large", "headline-seeds")}


def config_path(name: str, smoke: bool) -> Path:
    return HERE / "configs" / ("smoke" if smoke else "") / f"{name}.yaml"


def config_paths(name: str, smoke: bool) -> list[Path]:
    """The sweep files of experiment ``name`` (those that exist in the smoke directory for ``smoke``)."""
    paths = [config_path(n, smoke) for n in SWEEPS.get(name, (name,))]
    return [p for p in paths if p.is_file()] if smoke else paths


def run(name: str, out: Path, *, smoke: bool = False, workers: int = 1, executor: str = "local",
        plot_only: bool = False, progress: bool = False) -> list[Path]:
    if name not in EXPERIMENTS:
        raise ConfigError("experiment", f"unknown; choose from {', '.join(EXPERIMENTS)}", name)
    cfgs = config_paths(name, smoke)
    t0 = time.perf_counter()
    if not plot_only:
        if name == "phases":  # one run, not a sweep
            api.write_run(api.run(api.load_config(cfgs[0]), progress=progress), out)
        else:
            for cfg in cfgs:
                stats = api.run_sweep(cfg, out, workers=workers, executor=executor, progress=progress)
                print(f"{name} ({cfg.name}): {stats}", file=sys.stderr)
            if len(cfgs) > 1:  # sweep.csv of all the experiment's files, in file order
                points = [p for c in cfgs for p in sweep.expand(sweep.load_sweep(c), fingerprint=api.input_fingerprint)]
                sweep.collect(out, points)
    paths = [p for fig in EXPERIMENTS[name] for p in save(FIGURES[fig](out), out / fig)]
    print(f"{name}: {time.perf_counter() - t0:.1f} s -> {', '.join(map(str, paths))}", file=sys.stderr)
    return paths


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("name", choices=[*EXPERIMENTS, "all"])
    ap.add_argument("--smoke", action="store_true", help="the CI-sized version")
    ap.add_argument("--out", type=Path, default=None, help="results directory (default results/<name>[-smoke])")
    ap.add_argument("--workers", "-j", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--executor", choices=["local", "ray"], default="local")
    ap.add_argument("--plot-only", action="store_true")
    args = ap.parse_args(argv)
    names = tuple(EXPERIMENTS) if args.name == "all" else (args.name,)
    try:
        for n in names:
            out = args.out / n if (args.out and len(names) > 1) else (args.out or Path("results") / (n + ("-smoke" if args.smoke else "")))
            run(n, out, smoke=args.smoke, workers=args.workers, executor=args.executor, plot_only=args.plot_only,
                progress=sys.stderr.isatty())
    except ConfigError as e:
        print(f"run.py: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
