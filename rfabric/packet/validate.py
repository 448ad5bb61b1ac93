"""Cross-check the flow-level simulator against ns-3 on the scenario set and write a table and a figure.

For every scenario both backends play the same flows on the same fabric (circuits and circuit changes
included): ``rfabric.sim.simulate_flows`` with the scenario's ECMP mode and :func:`run_packet`. Compared:

* **phase completion**: the last finish (the phase/collective makespan) -- the number the flow model
  is meant to get right;
* **collective completion**: the last finish of every chain (one collective instance or one transfer),
  worst relative error over chains;
* **per-flow FCT**: ``finish - start`` of every flow, max and median relative error -- reported, not
  hidden: a fluid max-min model has no slow start, no losses and no transient unfairness.

Errors are ``(flow - packet) / packet`` (negative: the flow model is optimistic). ``within_5pct`` is
true when both the phase and the collective completion agree within 5 %.

``DIR/validation.csv`` (one row per scenario), ``DIR/validation.json`` (rows + ns-3 load times and the
options) and ``DIR/validation.png`` / ``.pdf``.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from rfabric.config import SimConfig, suggest
from rfabric.errors import ConfigError
from rfabric.packet.backend import PacketOptions, PacketTrace, run_packet
from rfabric.packet.scenarios import SCENARIOS, Scenario

log = logging.getLogger(__name__)

TOLERANCE = 0.05
COLUMNS = ("scenario", "flows", "flow_end_s", "packet_end_s", "phase_err", "collective_err_max", "fct_err_max",
           "fct_err_median", "flow_wall_s", "packet_wall_s", "packet_events", "packet_drops", "within_5pct",
           "description")

__all__ = ["SCENARIOS", "COLUMNS", "TOLERANCE", "compare_traces", "run_scenario", "run_validation"]


def _rel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b > 0, (a - b) / b, np.where(a == b, 0.0, np.inf))


def compare_traces(scenario: Scenario, flow_start: np.ndarray, flow_finish: np.ndarray, flow_end: float,
                   packet: PacketTrace) -> dict[str, Any]:
    """Error metrics between a flow-level and a packet-level run of one scenario (times from 0)."""
    chains = scenario.flows.chain
    fct_f = flow_finish - flow_start
    fct_p = packet.finish_s - packet.start_s
    fct_err = _rel(fct_f, fct_p)
    ids, inv = np.unique(chains, return_inverse=True)
    end_f = np.full(ids.size, -np.inf)
    end_p = np.full(ids.size, -np.inf)
    np.maximum.at(end_f, inv, flow_finish)
    np.maximum.at(end_p, inv, packet.finish_s)
    coll_err = _rel(end_f, end_p)
    phase_err = float(_rel(np.array([flow_end]), np.array([packet.end_s]))[0])
    worst_coll = float(coll_err[np.argmax(np.abs(coll_err))]) if coll_err.size else 0.0
    worst_fct = float(fct_err[np.argmax(np.abs(fct_err))]) if fct_err.size else 0.0
    ok = bool(abs(phase_err) <= TOLERANCE and abs(worst_coll) <= TOLERANCE)
    return {"phase_err": phase_err, "collective_err_max": worst_coll, "fct_err_max": worst_fct,
            "fct_err_median": float(np.median(np.abs(fct_err))) if fct_err.size else 0.0, "within_5pct": ok,
            "fct_flow_s": fct_f, "fct_packet_s": fct_p}


def run_scenario(scenario: Scenario, *, options: PacketOptions | None = None, seed: int = 0) -> dict[str, Any]:
    """Play one scenario on both backends; a row of the validation table (plus per-flow arrays)."""
    from rfabric.sim import simulate_flows

    t = time.perf_counter()
    flow = simulate_flows(scenario.topology, scenario.flows, assignment=scenario.assignment,
                          changes=scenario.changes, options=SimConfig(ecmp=scenario.ecmp), seed=seed)
    flow_wall = time.perf_counter() - t
    packet = run_packet(scenario.topology, scenario.flows, assignment=scenario.assignment, changes=scenario.changes,
                        options=options, seed=seed)
    row: dict[str, Any] = {"scenario": scenario.name, "description": scenario.description,
                           "flows": len(scenario.flows), "flow_end_s": float(flow.end_s),
                           "packet_end_s": float(packet.end_s), "flow_wall_s": flow_wall,
                           "packet_wall_s": packet.wall_time_s, "packet_events": packet.events,
                           "packet_drops": packet.drops}
    row.update(compare_traces(scenario, np.asarray(flow.start_s), np.asarray(flow.finish_s), float(flow.end_s), packet))
    if packet.unfinished:
        row["within_5pct"] = False
    log.info("%s: flow %.4g s, packet %.4g s (%+.2f %%), ns-3 %.1f s wall", scenario.name, flow.end_s, packet.end_s,
             100 * row["phase_err"], packet.wall_time_s)
    return row


def _fmt(v: Any) -> Any:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.6g}"
    return v


def write_table(rows: Sequence[dict[str, Any]], path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    with p.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(COLUMNS)
        for r in rows:
            w.writerow([_fmt(r[c]) for c in COLUMNS])
    return p


def plot_validation(rows: Sequence[dict[str, Any]], ax: Any = None) -> Any:
    """Two panels: completion errors per scenario (bars, the ±5 % band) and per-flow FCT flow vs packet."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    if ax is None:
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [3, 2]})
    else:
        a1, a2 = ax
        fig = a1.figure
    names = [r["scenario"] for r in rows]
    x = np.arange(len(rows))
    w = 0.27
    for k, (key, label) in enumerate((("phase_err", "phase completion"), ("collective_err_max", "collective (worst)"),
                                      ("fct_err_median", "per-flow FCT (median |err|)"))):
        a1.bar(x + (k - 1) * w, [100 * r[key] for r in rows], w, label=label)
    a1.axhspan(-100 * TOLERANCE, 100 * TOLERANCE, color="0.9", zorder=0)
    a1.axhline(0, color="0.3", lw=0.8)
    a1.set_xticks(x, names, rotation=35, ha="right", fontsize=8)
    a1.set_ylabel("flow-level vs ns-3 error (%)")
    a1.legend(fontsize=8)
    a1.set_title("completion-time error (grey band: ±5 %)")
    for r in rows:
        a2.loglog(1e3 * r["fct_packet_s"], 1e3 * r["fct_flow_s"], ".", ms=3, label=r["scenario"])
    lo = min((np.nanmin(r["fct_packet_s"]) for r in rows if len(r["fct_packet_s"])), default=1e-3) * 1e3
    hi = max((np.nanmax(r["fct_packet_s"]) for r in rows if len(r["fct_packet_s"])), default=1.0) * 1e3
    a2.plot([lo, hi], [lo, hi], color="0.3", lw=0.8)
    from matplotlib.ticker import NullFormatter

    for axis in (a2.xaxis, a2.yaxis):
        axis.set_minor_formatter(NullFormatter())
    a2.set_xlabel("ns-3 FCT (ms)")
    a2.set_ylabel("flow-level FCT (ms)")
    a2.set_title("per-flow completion times")
    a2.legend(fontsize=6, markerscale=3)
    fig.tight_layout()
    return fig


def run_validation(out_dir: str | os.PathLike[str], *, scenarios: Sequence[str] | None = None, quick: bool = False,
                   options: PacketOptions | None = None, seed: int = 0, figure: bool = True) -> list[dict[str, Any]]:
    """Run the scenario set on both backends; write ``validation.csv``/``.json``/``.png``/``.pdf`` to ``out_dir``.

    ``scenarios``: names from :data:`SCENARIOS` (default all); ``quick``: flows 4x smaller. Returns the
    table rows (dicts with the :data:`COLUMNS`).
    """
    from rfabric.packet._loader import load, load_times

    names = list(SCENARIOS) if not scenarios else list(scenarios)
    for n in names:
        if n not in SCENARIOS:
            raise ConfigError("scenarios", f"unknown scenario; {suggest(n, list(SCENARIOS))}", n)
    opts = options if options is not None else PacketOptions()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    load()
    full = [run_scenario(SCENARIOS[n](quick), options=opts, seed=seed) for n in names]
    if quick:
        for r in full:
            r["description"] += " [quick: sizes and times / 4]"
    rows = [{c: r[c] for c in COLUMNS} for r in full]
    write_table(rows, out / "validation.csv")
    doc = {"rows": rows, "quick": quick, "seed": seed, "tolerance": TOLERANCE, "packet_options": asdict(opts),
           "ns3_load_s": load_times(), "all_within_5pct": all(r["within_5pct"] for r in rows)}
    (out / "validation.json").write_text(json.dumps(doc, indent=2, default=float))
    if figure:
        from rfabric.plotting.sweep import save

        save(plot_validation(full), out / "validation")
    return rows
