"""The ``rfabric`` command line: each subcommand is a thin adapter over :mod:`rfabric.api`.

Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error. Logs go to stderr; results only
under ``--out`` (or to stdout for the inspection commands).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from rfabric import __version__
from rfabric.errors import ConfigError, RfabricError
from rfabric.parsing import dumps_json

log = logging.getLogger("rfabric")

_MAX_ERRORS_SHOWN = 20


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # usage errors: one line, exit 2
        self.print_usage(sys.stderr)
        print(f"rfabric: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _common(p: argparse.ArgumentParser, *, out: bool = False, out_required: bool = False) -> None:
    p.add_argument("--config", "-c", metavar="YAML",
                   help="run config; it REPLACES the built-in demo config wholesale (nothing of the default is "
                        "merged in: a section you leave out gets the dataclass defaults). Without --config: the "
                        "built-in small demo, which --set edits")
    p.add_argument("--set", "-s", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a dotted key, e.g. --set topology.ocs_reconfig_ms=1 (repeatable)")
    p.add_argument("--seed", type=int, default=None, help="override the config's seed")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log output (stderr)")
    p.add_argument("-q", "--quiet", action="store_true", help="only errors on stderr, no progress bar")
    if out:
        p.add_argument("--out", "-o", metavar="DIR", required=out_required, help="directory for the results")


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="rfabric", description="Emulate reconfigurable optical-electrical fabrics for LLM RL clusters.")
    ap.add_argument("--version", action="version", version=f"rfabric {__version__}")
    sub = ap.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("run", help="compare the config's fabrics end to end (results under --out)")
    _common(p, out=True)
    p.add_argument("--no-figure", action="store_true", help="skip the PNG figure")

    p = sub.add_parser("topology", help="bill of materials and bisection figures of each fabric")
    _common(p)
    p.add_argument("--fabric", help="only this fabric (name from the config)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--draw", metavar="PNG", help="draw the fabric (<= 64 GPUs) to a PNG file")

    p = sub.add_parser("traffic", help="per-phase traffic summary of the workload")
    _common(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--heatmaps", metavar="DIR", help="save a pod x pod heat map per phase (PNG) into DIR")
    p.add_argument("--level", default="pod", choices=["server", "tor", "pod"], help="heat-map aggregation level")

    p = sub.add_parser("solve", help="solve the circuit assignment of one phase")
    _common(p)
    p.add_argument("--phase", required=True, help="phase step name (see `rfabric traffic`)")
    p.add_argument("--fabric", help="fabric with OCS (default: the first one that has OCS)")
    p.add_argument("--heatmap", metavar="PNG", help="save the circuit-count matrix as a heat map")
    p.add_argument("--export", metavar="FILE", help="export the ILP as .lp or .mps")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")

    p = sub.add_parser("simulate", help="simulate one fabric: per-phase table and timeline figure")
    _common(p, out=True, out_required=True)
    p.add_argument("--fabric", help="fabric to simulate (default: the first)")
    p.add_argument("--trace", metavar="JSON", help="also write the timeline as a Chrome trace / Perfetto JSON "
                                                   "file (open in ui.perfetto.dev or chrome://tracing)")

    p = sub.add_parser("sweep", help="run a sweep file; resumable (finished runs are never recomputed)")
    p.add_argument("sweep_file", metavar="SWEEP_YAML")
    p.add_argument("--out", "-o", metavar="DIR", required=True, help="sweep directory (runs/, sweep.csv)")
    p.add_argument("--set", "-s", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a dotted key of the base config (repeatable)")
    p.add_argument("--workers", "-j", type=int, default=os.cpu_count() or 1, help="parallel runs (default: cores)")
    p.add_argument("--executor", choices=["local", "ray"], default="local", help="process pool or Ray")
    p.add_argument("--ray-address", default=None, help="connect to an existing Ray cluster (default: start one)")
    p.add_argument("--retry-failed", action="store_true", help="re-run points recorded as failed")
    p.add_argument("-v", "--verbose", action="count", default=0)
    p.add_argument("-q", "--quiet", action="store_true")

    p = sub.add_parser("plot", help="draw an experiment figure from a saved sweep/run directory (PNG + PDF)")
    p.add_argument("figure", help="scaling | reconfig | ocs_price | eps_share | phases, or 'sweep' for any "
                                  "sweep with --x/--y [--hue]")
    p.add_argument("directory", metavar="DIR", help="sweep directory (sweep.csv) or run directory (result.json)")
    p.add_argument("--out", "-o", metavar="BASE", help="output path without extension (default: DIR/FIGURE)")
    p.add_argument("--x", metavar="KEY", help="'sweep': the x column (a swept key such as cluster.nic_gbps, or gpus)")
    p.add_argument("--y", metavar="METRIC", help="'sweep': the y column (e.g. perf_per_usd_vs_ref, iteration_time_s)")
    p.add_argument("--hue", metavar="KEY", default="fabric", help="'sweep': one line per value of this column "
                                                                  "(default: fabric)")
    p.add_argument("--logx", action="store_true", help="'sweep': logarithmic x axis")

    p = sub.add_parser("validate", help="cross-check the flow-level simulator against ns-3 (needs the 'packet' extra)")
    p.add_argument("--out", "-o", metavar="DIR", required=True, help="directory for validation.csv and the figure")
    p.add_argument("--scenario", action="append", default=None, metavar="NAME", help="only this scenario (repeatable)")
    p.add_argument("--quick", action="store_true", help="smaller flows (faster, for smoke tests)")
    p.add_argument("-v", "--verbose", action="count", default=0)
    p.add_argument("-q", "--quiet", action="store_true")

    p = sub.add_parser("config", help="print the effective run config (YAML), or --reference: every key")
    _common(p)
    p.add_argument("--reference", action="store_true", help="print the configuration reference (markdown): every "
                                                            "key with type, unit, default and meaning")

    p = sub.add_parser("models", help="list the model catalogue")
    p.add_argument("--json", action="store_true")
    return ap


def _setup_logging(args: argparse.Namespace) -> None:
    level = logging.ERROR if getattr(args, "quiet", False) else (logging.DEBUG if getattr(args, "verbose", 0) > 1
                                                              else logging.INFO if getattr(args, "verbose", 0) else logging.WARNING)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def _progress(args: argparse.Namespace) -> bool:
    return not args.quiet and sys.stderr.isatty()


def _print_table(rows: list[dict[str, Any]], cols: Sequence[str] | None = None) -> None:
    if not rows:
        print("(nothing)")
        return
    cols = list(cols or rows[0].keys())

    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    cells = [[fmt(r.get(c, "")) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))


# ------------------------------------------------------------------------------------------------


def _check_out(out: str | None, key: str = "--out") -> None:
    """Fail before any work if results could not be written to the directory ``out`` (exit 2 naming ``key``)."""
    if out is None:
        return
    if not out.strip():
        raise ConfigError(key, "must name a directory (it is empty)", out)
    p = Path(out)
    if p.exists() and not p.is_dir():
        raise ConfigError(key, "exists and is not a directory", out)
    _probe(p if p.is_dir() else _existing_ancestor(p), key, out, directory=True)


def _check_file_out(path: str | None, key: str) -> None:
    """Fail before any work if a file could not be written at ``path`` (exit 2 naming ``key``)."""
    if path is None:
        return
    if not path.strip():
        raise ConfigError(key, "must name a file (it is empty)", path)
    p = Path(path)
    if p.is_dir():
        raise ConfigError(key, "is a directory; give a file name", path)
    if p.exists() and not os.access(p, os.W_OK):
        raise ConfigError(key, "the file is not writable", path)
    parent = p.parent if p.parent.exists() else _existing_ancestor(p.parent)
    if not parent.is_dir():
        raise ConfigError(key, f"'{parent}' is not a directory", path)
    _probe(parent, key, path, directory=not p.parent.exists())


def _existing_ancestor(p: Path) -> Path:
    return next((q for q in (p, *p.parents) if q.exists()), Path("."))


def _probe(parent: Path, key: str, given: str, *, directory: bool) -> None:
    """Really create (and remove) a directory or file in ``parent``: ``os.access`` says yes for root on /proc."""
    import tempfile

    if not parent.is_dir():
        raise ConfigError(key, f"'{parent}' is not a directory", given)
    try:
        if directory:
            os.rmdir(tempfile.mkdtemp(prefix=".rfabric-probe-", dir=parent))
        else:
            fd, tmp = tempfile.mkstemp(prefix=".rfabric-probe-", dir=parent)
            os.close(fd)
            os.unlink(tmp)
    except OSError as e:
        raise ConfigError(key, f"cannot write under '{parent}': {e.strerror}", given) from None


def cmd_run(args: argparse.Namespace) -> int:
    from rfabric import api

    _check_out(args.out)
    cfg = api.load_config(args.config, args.overrides, seed=args.seed)
    result = api.run(cfg, progress=_progress(args))
    _print_table(result.summary_rows(), ["fabric", "gpus", "iteration_time_s", "capex_usd", "perf_per_usd_vs_ref",
                                         "time_vs_ref"])
    if args.out:
        out = api.write_run(result, args.out, figure=not args.no_figure)
        print(f"results in {out}", file=sys.stderr)
    return 0


def cmd_topology(args: argparse.Namespace) -> int:
    from rfabric import api
    from rfabric.bom import fabric_report

    _check_file_out(args.draw, "--draw")
    cfg = api.load_config(args.config, args.overrides, seed=args.seed)
    names = [args.fabric] if args.fabric else [f.name for f in cfg.fabrics]
    reports = {}
    topo = None
    for n in names:
        topo = api.build_topology(cfg, n)
        reports[n] = fabric_report(topo)
    if args.json:
        print(dumps_json(reports, indent=2, sort_keys=True))
    else:
        for n, rep in reports.items():
            print(f"== {n}")
            for k, v in rep.items():
                if isinstance(v, list) and v and isinstance(v[0], dict):
                    print(f"{k}:")
                    _print_table(v)
                else:
                    print(f"{k}: {v}")
    if args.draw:
        if topo is None or topo.num_gpus > 64:
            raise ConfigError("--draw", "drawing is for small fabrics (<= 64 GPUs); use --set cluster.* to shrink it",
                              topo.num_gpus if topo else None)
        from rfabric.plotting.network import draw_topology

        fig, _ax = draw_topology(topo)
        Path(args.draw).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.draw, dpi=150, bbox_inches="tight")
        print(f"drawing in {args.draw}", file=sys.stderr)
    return 0


def cmd_traffic(args: argparse.Namespace) -> int:
    from rfabric import api
    from traffic.summary import phase_summary

    _check_out(args.heatmaps, "--heatmaps")
    cfg = api.load_config(args.config, args.overrides, seed=args.seed)
    workload = api.build_workload(cfg)
    topo = api.build_topology(cfg)
    groups = {lvl: topo.gpu_groups(lvl) for lvl in ("server", "tor", "pod")}
    rows = phase_summary(workload, groups)
    if args.json:
        print(dumps_json(rows, indent=2))
    else:
        _print_table(rows)
    if args.heatmaps:
        import matplotlib

        matplotlib.use("Agg")
        from rfabric.plotting.heatmaps import save_phase_heatmaps

        save_phase_heatmaps(workload, topo, args.level, args.heatmaps)
        print(f"heat maps in {Path(args.heatmaps)}", file=sys.stderr)
    return 0


def cmd_solve(args: argparse.Namespace) -> int:
    import solver as solver_pkg
    from rfabric import api

    _check_file_out(args.heatmap, "--heatmap")
    _check_file_out(args.export, "--export")
    cfg = api.load_config(args.config, args.overrides, seed=args.seed)
    workload = api.build_workload(cfg)
    names = [p.name for p in workload.phases]
    if args.phase not in names:
        from rfabric.parsing import suggest

        raise ConfigError("--phase", f"no such phase; {suggest(args.phase, names)} (phases: {', '.join(names)})", args.phase)
    candidates = [args.fabric] if args.fabric else [f.name for f in cfg.fabrics]
    topo = None
    for n in candidates:
        t = api.build_topology(cfg, n)
        if t.has_ocs:
            topo = t
            break
    if topo is None:
        raise ConfigError("--fabric", "no fabric with optical circuit switches in the config", args.fabric)
    phase = workload.phase(args.phase)
    res = solver_pkg.solve_phase(topo, phase.traffic, api.resolved(cfg).solver_options, seed=cfg.seed)
    info = res.summary()
    domains = info.pop("domains", None) if not args.json else None
    if args.json:
        print(dumps_json(info, indent=2))
    else:
        for k, v in info.items():
            print(f"{k}: {v}")
        if domains:
            print("domains:")
            _print_table([{k: v for k, v in d.items() if not isinstance(v, list | dict)} for d in domains])
    if args.heatmap:
        import matplotlib

        matplotlib.use("Agg")
        from rfabric.plotting.heatmaps import save_domains

        domains = [(d.domain, d.nodes, d.x) for d in res.domains if len(d.nodes)]
        if not domains:
            raise ConfigError("--heatmap", "this phase has no OCS domain to draw", args.phase)
        save_domains(domains, args.heatmap, title=f"circuits per switch pair, per OCS domain: {args.phase}")
    if args.export:
        paths = solver_pkg.export_model(topo, phase.traffic, api.resolved(cfg).solver_options, args.export)
        print("model written to " + ", ".join(map(str, paths)), file=sys.stderr)
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from rfabric import api

    _check_out(args.out)
    _check_file_out(args.trace, "--trace")
    cfg = api.load_config(args.config, args.overrides, seed=args.seed)
    fabric = args.fabric or cfg.fabrics[0].name
    topo = api.build_topology(cfg, fabric)
    workload = api.build_workload(cfg)
    say = (lambda line: print(f"[rfabric.sim] {line}", file=sys.stderr)) if _progress(args) else None
    cfg = replace(cfg, sim=replace(cfg.sim, steps=max(2, cfg.sim.steps)))  # the timeline shows two steps or more
    schedule, res = api.plan_and_simulate(cfg, topo, workload, progress=say)
    rows = [{"phase": p.name, "tag": p.phase, **({"cluster": p.cluster, "step": p.step} if res.instances else {}),
             "start_s": p.start_s, "end_s": p.end_s, "repeat": p.repeat, "duration_s": p.duration_s,
             "reconfig_s": p.reconfig_s, "circuits_changed": p.circuits_changed, "flows": p.flows}
            for p in (res.instances or res.phases)]
    _print_table(rows)
    print(f"iteration_time_s: {res.iteration_time_s:.6g}")
    api.write_simulation(res, args.out)
    print(f"results in {args.out}", file=sys.stderr)
    if args.trace:
        api.write_trace(res, args.trace, workload)
        print(f"trace in {args.trace} (open it in https://ui.perfetto.dev)", file=sys.stderr)
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from rfabric import api

    if args.workers < 1:
        raise ConfigError("--workers", "must be >= 1", args.workers)
    _check_out(args.out)
    stats = api.run_sweep(args.sweep_file, args.out, overrides=args.overrides, workers=args.workers,
                          executor=args.executor, ray_address=args.ray_address, progress=_progress(args),
                          retry_failed=args.retry_failed)
    lost = stats.get("lost", 0)
    print(f"{stats['total']} runs: {stats['skipped']} already done, {stats['ok']} ok, {stats['error']} failed"
          + (f", {lost} lost with a worker process (run the same command again to resume them)" if lost else "")
          + f"; table in {Path(args.out) / 'sweep.csv'}", file=sys.stderr)
    return 1 if stats["error"] or lost else 0


def cmd_plot(args: argparse.Namespace) -> int:
    from rfabric.parsing import suggest
    from rfabric.plotting.figures import FIGURES
    from rfabric.plotting.sweep import save

    if args.figure not in FIGURES and args.figure != "sweep":
        raise ConfigError("figure", f"unknown figure; {suggest(args.figure, [*FIGURES, 'sweep'])}", args.figure)
    _check_file_out(None if args.out is None else (args.out and args.out + ".png"), "--out")
    d = Path(args.directory)
    if args.figure == "sweep":
        from rfabric.plotting.sweep import plot_sweep, read_sweep

        for flag, v in (("--x", args.x), ("--y", args.y)):
            if not v:
                raise ConfigError(flag, "required with 'rfabric plot sweep'", has_value=False)
        if not (d / "sweep.csv").is_file():
            raise ConfigError("DIR", "no sweep.csv in this directory (run the sweep first)", str(d))
        fig = plot_sweep(read_sweep(d), args.x, args.y, args.hue, logx=args.logx)
        paths = save(fig, args.out or d / f"{args.y}_vs_{args.x}")
        print("wrote " + ", ".join(map(str, paths)), file=sys.stderr)
        return 0
    need = d / ("result.json" if args.figure == "phases" else "sweep.csv")
    if not need.is_file():
        raise ConfigError("DIR", f"no {need.name} in this directory (run the experiment first)", str(d))
    paths = save(FIGURES[args.figure](d), args.out or d / args.figure)
    print("wrote " + ", ".join(map(str, paths)), file=sys.stderr)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from validation import available
    from validation.compare import check_names, run_validation

    names = check_names(args.scenario, "--scenario")
    if not available():
        raise RfabricError("the packet-level backend needs ns-3: pip install -e '.[packet]'")
    _check_out(args.out)
    rows = run_validation(args.out, scenarios=names, quick=args.quick)
    _print_table(rows, ["scenario", "routing", "flows", "phase_err", "collective_err_max", "fct_err_max",
                        "fct_err_median", "within_5pct", "flow_wall_s", "packet_wall_s"])
    print(f"validation table and figure in {args.out}", file=sys.stderr)
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    from rfabric import api

    if args.reference:
        sys.stdout.write(api.config_reference())
        return 0
    import yaml

    cfg = api.load_config(args.config, args.overrides, seed=args.seed)
    sys.stdout.write(yaml.safe_dump(api.config_data(cfg), sort_keys=False))
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from traffic.models import available_models, load_model

    rows = []
    for n in available_models():
        m = load_model(n)
        rows.append({k: getattr(m, k) for k in ("name", "kind", "layers", "hidden", "params_b") if hasattr(m, k)})
    if args.json:
        print(dumps_json(rows, indent=2))
    else:
        _print_table(rows)
    return 0


COMMANDS = {"run": cmd_run, "topology": cmd_topology, "traffic": cmd_traffic, "solve": cmd_solve,
            "simulate": cmd_simulate, "sweep": cmd_sweep, "plot": cmd_plot, "validate": cmd_validate,
            "models": cmd_models, "config": cmd_config}


def _terminate(signum: int, frame: Any) -> None:  # SIGTERM behaves like Ctrl-C: clean up, no orphans
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    import signal

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    os.environ.setdefault("MPLBACKEND", "Agg")  # files only: the command line never opens a window
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args)
    try:
        return COMMANDS[args.command](args)
    except ConfigError as e:  # one line per mistake found (all of them, unknown keys first)
        errors = e.errors
        for err in errors[:_MAX_ERRORS_SHOWN]:
            print(f"rfabric: error: {err}", file=sys.stderr)
        if len(errors) > _MAX_ERRORS_SHOWN:
            print(f"rfabric: error: ... and {len(errors) - _MAX_ERRORS_SHOWN} more", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader left early (`rfabric traffic | head`): stop quietly, as a Unix tool does
        # point stdout at /dev/null so the interpreter's flush at exit does not fail again (Python docs,
        # "Note on SIGPIPE"); exit as a process killed by SIGPIPE would (128 + 13)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    except (RfabricError, OSError) as e:  # OSError: e.g. the disk filled up while writing results
        print(f"rfabric: failed: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("rfabric: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
