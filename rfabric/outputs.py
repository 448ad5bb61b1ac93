"""What a run produces and the files written from it.

:class:`RunResult` (one :class:`FabricRun` per fabric) is what :func:`rfabric.api.run` returns;
:func:`write_run` writes it as ``summary.csv``, ``result.json``, ``config.resolved.yaml`` and
``comparison.png``; :func:`write_simulation` one simulation's ``phases.csv``, ``simulation.json`` and
``timeline.png``; :func:`write_trace` a Chrome-trace / Perfetto JSON timeline. Every write is atomic (a
temporary file or directory beside the target, moved in when complete) and every JSON is strict (no NaN).
The names are re-exported by :mod:`rfabric.api`.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rfabric.circuits import CircuitSchedule
from rfabric.config import RunConfig
from rfabric.parsing import dumps_json, to_plain
from rfabric.results import BillOfMaterials, Comparison, CostBreakdown, Provenance, SimulationResult
from rfabric.topology import Topology
from rfabric.workload import Workload


@dataclass(frozen=True)
class FabricRun:
    """One fabric of a run: its topology, bill of materials and cost, circuit schedule (None without OCS) and
    simulation; ``wall_time_s`` is the wall time of the four stages, seconds.
    """
    name: str
    kind: str
    topology: Topology
    bom: BillOfMaterials
    cost: CostBreakdown
    schedule: CircuitSchedule | None
    sim: SimulationResult
    wall_time_s: float = 0.0


@dataclass(frozen=True)
class RunResult:
    """Everything one run produced, as objects (``write_run`` turns it into files)."""

    config: RunConfig
    resolved: Mapping[str, Any]
    workload: Workload
    fabrics: Mapping[str, FabricRun]
    comparison: Comparison
    provenance: Provenance
    timings_s: Mapping[str, float] = field(default_factory=dict)

    def summary_rows(self) -> list[dict[str, Any]]:
        return self.comparison.table()


SUMMARY_COLUMNS = ["fabric", "kind", "gpus", "iteration_time_s", "steps_per_s", "capex_usd", "perf_per_usd",
                   "perf_per_usd_vs_ref", "time_vs_ref", "capex_cluster_usd", "power_w", "perf_per_w",
                   "perf_per_w_vs_ref", "perf_per_cluster_usd_vs_ref", "reconfig_time_s", "mode", "trainer_gpus",
                   "rollout_gpus", "trainer_busy_frac", "rollout_busy_frac", "critical_cluster", "power_cluster_w",
                   "perf_per_cluster_w_vs_ref"]


def summary_csv(result: RunResult) -> str:
    """The run's comparison as CSV text: one row per fabric, the columns :data:`SUMMARY_COLUMNS` then the
    ``phase_*`` columns (floats with 9 significant digits).

    Parameters
    ----------
    result : RunResult

    Returns
    -------
    str
    """
    rows = result.summary_rows()
    phase_cols = [c for c in rows[0] if c.startswith("phase_")] if rows else []
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=SUMMARY_COLUMNS + phase_cols, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.9g}" if isinstance(v, float) else v) for k, v in r.items()})
    return buf.getvalue()


def result_json(result: RunResult) -> dict[str, Any]:
    """The run as JSON-able data: comparison, per-fabric phases, costs, circuit decisions, provenance.

    Parameters
    ----------
    result : RunResult

    Returns
    -------
    dict
        ``provenance``, ``reference``, ``comparison`` (rows), ``workload`` (phases with flow counts and bytes)
        and ``fabrics`` (per fabric: topology summary, iteration time and phases in seconds, bytes per
        medium, bill of materials, cost in USD and W, circuit decisions). May hold NaN: write it with
        :func:`rfabric.parsing.dumps_json`.
    """
    fabrics = {}
    for name, f in result.fabrics.items():
        fabrics[name] = {
            "kind": f.kind,
            "topology": f.topology.summary(),
            "iteration_time_s": f.sim.iteration_time_s,
            "phases": [{**to_plain(p), "duration_s": p.duration_s} for p in f.sim.phases],
            "bytes_by_medium": f.sim.bytes_by_medium(),
            "reconfig_time_s": f.sim.reconfig_time_s,
            "sim_events": f.sim.events,
            "sim_wall_time_s": f.sim.wall_time_s,
            "bom": f.bom.as_rows(),
            "cost": {"catalogue": f.cost.catalogue, "capex_network_usd": f.cost.capex_network_usd,
                     "capex_cluster_usd": f.cost.capex_cluster_usd, "power_network_w": f.cost.power_network_w,
                     "by_part_usd": f.cost.by_part(), "by_tier_usd": f.cost.by_tier()},
            "circuits": [to_plain(d) for d in f.schedule.decisions] if f.schedule else [],
        }
    return {
        "provenance": to_plain(result.provenance),
        "reference": result.comparison.reference,
        "comparison": result.comparison.table(),
        "workload": {"name": result.workload.name, "num_gpus": result.workload.num_gpus,
                     "meta": to_plain(dict(result.workload.meta)),  # the traffic package's resolved choices
                     "phases": [{"name": p.name, "phase": p.phase, "flows": len(p.flows), "bytes": p.flows.total_bytes,
                                 "repeat": p.repeat, "compute_before_s": p.compute_before_s,
                                 "compute_after_s": p.compute_after_s} for p in result.workload.phases]},
        "fabrics": fabrics,
    }


@contextlib.contextmanager
def _atomic_dir(out: str | os.PathLike[str], stale: Sequence[str] = ()) -> Iterator[Path]:
    """Yield a temporary directory beside ``out``; on success move its files into ``out`` (created), so an
    interrupted write leaves nothing half-written there. Files named in ``stale`` that this write did not
    produce are removed from ``out`` so results of two runs never mix."""
    out_dir = Path(out)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        yield tmp
        out_dir.mkdir(parents=True, exist_ok=True)
        for name in stale:  # outputs of an earlier run that this one does not produce (e.g. --no-figure)
            if not (tmp / name).exists():
                (out_dir / name).unlink(missing_ok=True)
        for p in sorted(tmp.iterdir()):
            os.replace(p, out_dir / p.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _save_figure(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig = fig if hasattr(fig, "savefig") else fig.figure
    fig.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(fig)


def write_run(result: RunResult, out: str | os.PathLike[str], *, figure: bool = True) -> Path:
    """Write ``summary.csv``, ``result.json``, ``config.resolved.yaml`` and ``comparison.png`` into ``out``.

    Files are written into a temporary directory beside ``out`` and moved in only when all are complete, so
    an interrupted run leaves nothing half-written; a ``comparison.png`` of an earlier run is removed when
    ``figure`` is False.

    Parameters
    ----------
    result : RunResult
    out : str or os.PathLike
        Directory (created with its parents).
    figure : bool
        Draw ``comparison.png`` (matplotlib).

    Returns
    -------
    Path
        ``out``.
    """
    with _atomic_dir(out, stale=("comparison.png",)) as tmp:
        (tmp / "summary.csv").write_text(summary_csv(result))
        (tmp / "result.json").write_text(dumps_json(result_json(result), indent=2, sort_keys=True))
        (tmp / "config.resolved.yaml").write_text(yaml.safe_dump(to_plain(result.resolved), sort_keys=False))
        if figure:
            from rfabric.plotting.compare import plot_comparison

            _save_figure(plot_comparison(result.comparison), tmp / "comparison.png")
    return Path(out)


def phases_csv(sim: SimulationResult) -> str:
    """One simulation's phases as CSV text: one row per phase (per phase instance of a pipelined schedule),
    times in seconds and bytes per medium (9 significant digits).

    Parameters
    ----------
    sim : SimulationResult

    Returns
    -------
    str
    """
    buf = io.StringIO()
    cols = ["phase", "tag", "start_s", "comm_start_s", "end_s", "repeat", "duration_s", "reconfig_s",
            "reconfig_exposed_s", "circuits_changed", "flows", "bytes_nvlink", "bytes_electrical", "bytes_optical",
            "cluster", "step"]
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for p in sim.instances or sim.phases:  # a pipelined schedule: every phase instance played
        b = p.bytes_by_medium
        w.writerow([p.name, p.phase, f"{p.start_s:.9g}", f"{p.comm_start_s:.9g}", f"{p.end_s:.9g}", p.repeat,
                    f"{p.duration_s:.9g}", f"{p.reconfig_s:.9g}", f"{p.reconfig_exposed_s:.9g}", p.circuits_changed,
                    p.flows, f"{b.get('nvlink', 0.0):.9g}", f"{b.get('electrical', 0.0):.9g}", f"{b.get('optical', 0.0):.9g}",
                    p.cluster, p.step])
    return buf.getvalue()


def write_simulation(sim: SimulationResult, out: str | os.PathLike[str], *, figure: bool = True) -> Path:
    """Write one simulation's ``phases.csv``, ``simulation.json`` and ``timeline.png`` into ``out`` (atomically,
    as :func:`write_run`).

    Parameters
    ----------
    sim : SimulationResult
    out : str or os.PathLike
        Directory (created with its parents).
    figure : bool
        Draw ``timeline.png`` (matplotlib).

    Returns
    -------
    Path
        ``out``.
    """
    with _atomic_dir(out, stale=("timeline.png",)) as tmp:
        (tmp / "phases.csv").write_text(phases_csv(sim))
        doc = {"fabric": sim.fabric, "iteration_time_s": sim.iteration_time_s, "reconfig_time_s": sim.reconfig_time_s,
               "events": sim.events, "solves": sim.solves, "wall_time_s": sim.wall_time_s,
               "bytes_by_medium": sim.bytes_by_medium(), "provenance": to_plain(sim.provenance),
               "phases": [{**to_plain(p), "duration_s": p.duration_s} for p in sim.phases]}
        (tmp / "simulation.json").write_text(dumps_json(doc, indent=2, sort_keys=True))
        if figure:
            from rfabric.plotting.timeline import plot_timeline

            _save_figure(plot_timeline(sim), tmp / "timeline.png")
    return Path(out)


def write_trace(sim: SimulationResult, path: str | os.PathLike[str], workload: Workload | None = None) -> Path:
    """Write ``sim``'s timeline as a Chrome trace / Perfetto JSON file (strict JSON, atomically); see
    :func:`rfabric.trace.chrome_trace` for the layout.

    Parameters
    ----------
    sim : SimulationResult
    path : str or os.PathLike
        The file (its directory is created).
    workload : Workload, optional
        The workload simulated (adds its collectives to the trace).

    Returns
    -------
    Path
    """
    from rfabric.trace import chrome_trace

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(dumps_json(chrome_trace(sim, workload)))
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out
