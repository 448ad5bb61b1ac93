"""Cross-check the flow-level simulator against ns-3 on the scenario set and write a table and a figure.

For every scenario (:mod:`validation.scenarios`, built by the real builders) both backends play the same
flows on the same fabric (circuits and circuit changes included): ``rfabric.sim.simulate_flows`` with the
run config's ``sim`` options and seed, and :func:`validation.backend.run_packet`. Compared:

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

from rfabric.errors import ConfigError
from rfabric.parsing import suggest
from rfabric.workload import FlowSet
from validation.backend import PacketOptions, PacketTrace, run_packet
from validation.scenarios import SCENARIOS, Case, build_case

log = logging.getLogger(__name__)

TOLERANCE = 0.05
COLUMNS = ("scenario", "fabric", "routing", "packet_routing", "flows", "flow_end_s", "packet_end_s", "phase_err",
           "collective_err_max", "fct_err_max", "fct_err_median", "flow_wall_s", "packet_wall_s", "packet_events",
           "packet_drops", "within_5pct", "description")

__all__ = ["SCENARIOS", "COLUMNS", "TOLERANCE", "check_names", "compare_traces", "run_case", "run_validation",
           "write_table"]


def _rel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b > 0, (a - b) / b, np.where(a == b, 0.0, np.inf))


def compare_traces(flows: FlowSet, flow_start: np.ndarray, flow_finish: np.ndarray, flow_end: float,
                   packet: PacketTrace) -> dict[str, Any]:
    """Error metrics between a flow-level and a packet-level run of one scenario (times from 0)."""
    chains = flows.chain
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


def _packet_routing(opts: PacketOptions, routing: str) -> str:
    """How ns-3 forwarded: its own ECMP, or the flow model's routes (and how packets were sprayed)."""
    if opts.ecmp != "pinned" or routing == "hash":
        return opts.ecmp
    return f"pinned/{opts.spray}"


def run_case(case: Case, *, options: PacketOptions | None = None) -> dict[str, Any]:
    """Play one built scenario on both backends; a row of the validation table (plus per-flow arrays).

    The flow model runs with the case's ``sim`` options and seed; ns-3 with ``options`` (default
    :class:`PacketOptions`) overlaid by the scenario's ``packet`` fields, the same seed.
    """
    from dataclasses import replace

    from rfabric.sim import simulate_flows

    sc = case.scenario
    seed = case.config.seed
    opts = replace(options if options is not None else PacketOptions(), **dict(sc.packet))
    t = time.perf_counter()
    flow = simulate_flows(case.topology, case.flows, assignment=case.assignment, changes=case.changes,
                          options=case.config.sim, seed=seed)
    flow_wall = time.perf_counter() - t
    packet = run_packet(case.topology, case.flows, assignment=case.assignment, changes=case.changes, options=opts,
                        seed=seed, routing=case.routing)
    row: dict[str, Any] = {"scenario": sc.name, "description": sc.description, "fabric": case.topology.kind,
                           "routing": case.routing, "packet_routing": _packet_routing(opts, case.routing),
                           "flows": len(case.flows), "flow_end_s": float(flow.end_s),
                           "packet_end_s": float(packet.end_s), "flow_wall_s": flow_wall,
                           "packet_wall_s": packet.wall_time_s, "packet_events": packet.events,
                           "packet_drops": packet.drops}
    row.update(compare_traces(case.flows, np.asarray(flow.start_s), np.asarray(flow.finish_s), float(flow.end_s), packet))
    if packet.unfinished:
        row["within_5pct"] = False
    log.info("%s: flow %.4g s, packet %.4g s (%+.2f %%), ns-3 %.1f s wall", sc.name, flow.end_s, packet.end_s,
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


def check_names(scenarios: Sequence[str] | None, key: str = "scenarios") -> list[str]:
    """The scenario names to run (all when empty); ConfigError naming ``key`` for an unknown one."""
    names = list(SCENARIOS) if not scenarios else list(scenarios)
    for n in names:
        if n not in SCENARIOS:
            raise ConfigError(key, f"unknown scenario; {suggest(n, list(SCENARIOS))}", n)
    return names


def run_validation(out_dir: str | os.PathLike[str], *, scenarios: Sequence[str] | None = None, quick: bool = False,
                   options: PacketOptions | None = None, figure: bool = True) -> list[dict[str, Any]]:
    """Run the scenario set on both backends; write ``validation.csv``/``.json``/``.png``/``.pdf`` to ``out_dir``.

    ``scenarios``: names from :data:`SCENARIOS` (default all); ``quick``: transfers 4x smaller. Returns
    the table rows (dicts with the :data:`COLUMNS`). Raises ``ConfigError`` for an unknown scenario and
    ``RfabricError`` when ns-3 is not installed.
    """
    from validation._loader import load, load_times

    names = check_names(scenarios)
    opts = options if options is not None else PacketOptions()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    load()
    full = [run_case(build_case(SCENARIOS[n], quick=quick), options=opts) for n in names]
    if quick:
        for r in full:
            r["description"] += " [quick: sizes / 4]"
    rows = [{c: r[c] for c in COLUMNS} for r in full]
    write_table(rows, out / "validation.csv")
    doc = {"rows": rows, "quick": quick, "tolerance": TOLERANCE, "packet_options": asdict(opts),
           "ns3_load_s": load_times(), "all_within_5pct": all(r["within_5pct"] for r in rows)}
    (out / "validation.json").write_text(json.dumps(doc, indent=2, default=float))
    if figure:
        from rfabric.plotting.sweep import save
        from rfabric.plotting.validation import plot_validation

        save(plot_validation(full, tolerance=TOLERANCE), out / "validation")
    return rows
