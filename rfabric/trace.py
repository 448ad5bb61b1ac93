"""A simulated timeline as a Chrome trace / Perfetto JSON document (``rfabric simulate --trace FILE``).

The `Trace Event Format <https://docs.google.com/document/d/1CvAClvFfyA5R-PhYUmn5OOQtYMH4h6I0nSsKchNAySU>`_
read by ``chrome://tracing``, https://ui.perfetto.dev and the tools built on them (Vidur and ASTRA-sim export
their timelines the same way): ``{"traceEvents": [...]}`` with complete events (``"ph": "X"``, ``ts`` and
``dur`` in microseconds) and metadata events naming processes and threads.

Layout:

* one process per cluster (``trainer``, ``rollout``, ``sync``), one thread per phase kind (``rollout``,
  ``train``, ``logprob``, ``weight_sync``, ...): one event per phase instance, ``ts`` = its start (compute
  before its flows included), ``dur`` = its duration (:attr:`~rfabric.sim.result.PhaseTiming.duration_s`,
  repeats included);
* under each cluster, one thread per collective (the flows' tag, e.g. ``dp/all_reduce``): one event per
  collective of a phase whose flows were recorded, from its first flow's start to its last flow's finish;
* one process for the fabric with a thread ``ocs reconfiguration``: one event per circuit change, as long as
  the circuits are dark (``topology.ocs_reconfig_ms``).

Times are the simulator's, in seconds from the start of the simulated run, converted once to microseconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from rfabric.errors import ConfigError
from rfabric.sim.result import PhaseTiming, SimulationResult
from rfabric.workload import Workload

#: cluster of a phase kind in a sequential (``mode: sync``) run, where instances carry no cluster
_CLUSTER_OF_KIND = {"rollout": "rollout", "score": "rollout", "weight_sync": "sync"}

US_PER_S = 1e6


def _cluster(p: PhaseTiming) -> str:
    return p.cluster or _CLUSTER_OF_KIND.get(p.phase, "trainer")


def chrome_trace(result: SimulationResult, workload: Workload | None = None) -> dict[str, Any]:
    """The Chrome trace of ``result`` (plain JSON-able data, finite numbers only).

    ``workload`` (the one simulated) adds one event per collective, from the recorded flow times; without
    it only phases and reconfigurations are traced. Raises ``ConfigError`` when ``workload`` has no phase of
    a name the result reports (another workload).
    """
    if not isinstance(result, SimulationResult):
        raise ConfigError("result", "must be a SimulationResult", type(result).__name__)
    timings = result.instances or result.phases
    events: list[dict[str, Any]] = []
    pids: dict[str, int] = {}
    tids: dict[tuple[int, str], int] = {}

    def pid_of(name: str) -> int:
        if name not in pids:
            pids[name] = len(pids) + 1
            events.append({"ph": "M", "name": "process_name", "pid": pids[name], "tid": 0, "args": {"name": name}})
            events.append({"ph": "M", "name": "process_sort_index", "pid": pids[name], "tid": 0,
                           "args": {"sort_index": pids[name]}})
        return pids[name]

    def tid_of(pid: int, name: str) -> int:
        if (pid, name) not in tids:
            tid = tids[(pid, name)] = 1 + sum(1 for p, _ in tids if p == pid)
            events.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid, "args": {"name": name}})
            events.append({"ph": "M", "name": "thread_sort_index", "pid": pid, "tid": tid, "args": {"sort_index": tid}})
        return tids[(pid, name)]

    for cluster in ("rollout", "trainer", "sync"):  # a stable order in the viewer
        if any(_cluster(p) == cluster for p in timings):
            pid_of(cluster)
    for p in timings:
        pid = pid_of(_cluster(p))
        events.append({"ph": "X", "cat": "phase", "name": p.name, "pid": pid, "tid": tid_of(pid, p.phase),
                       "ts": p.start_s * US_PER_S, "dur": p.duration_s * US_PER_S,
                       "args": {"phase": p.phase, "step": p.step, "repeat": p.repeat, "flows": p.flows,
                                "comm_start_s": p.comm_start_s, "end_s": p.end_s,
                                "circuits_changed": p.circuits_changed, "reconfig_s": p.reconfig_s,
                                "bytes_by_medium": dict(p.bytes_by_medium)}})
    if workload is not None:
        events.extend(_collectives(result, workload, timings, pid_of, tid_of))
    fabric = pid_of(f"fabric: {result.fabric}")
    for start_s, dur_s, changed in _reconfigurations(result):
        events.append({"ph": "X", "cat": "reconfiguration", "name": "OCS reconfiguration", "pid": fabric,
                       "tid": tid_of(fabric, "ocs reconfiguration"), "ts": start_s * US_PER_S,
                       "dur": dur_s * US_PER_S, "args": {"circuits_changed": changed}})
    return {"traceEvents": events, "displayTimeUnit": "ms",
            "otherData": {"fabric": result.fabric, "mode": result.mode, "iteration_time_s": result.iteration_time_s,
                          "reconfig_time_s": result.reconfig_time_s, "version": result.provenance.version,
                          "seed": result.provenance.seed, "config_hash": result.provenance.config_hash}}


def _reconfigurations(result: SimulationResult) -> list[tuple[float, float, int]]:
    """(start, dark time, circuits changed) of every circuit change the result reports."""
    epochs = result.extra.get("epochs")
    if isinstance(epochs, list):  # pipelined: reconfigurations happen at epoch starts
        dark = float(result.extra.get("ocs_reconfig_s", 0.0))
        return [(float(e["start_s"]), dark, int(e["circuits_changed"])) for e in epochs
                if int(e.get("circuits_changed", 0)) > 0 and dark > 0]
    # sequential: each phase's circuits are set when it starts (the first RL step is traced)
    return [(p.start_s, p.reconfig_s, p.circuits_changed) for p in result.phases
            if p.circuits_changed > 0 and p.reconfig_s > 0]


def _collectives(result: SimulationResult, workload: Workload, timings: tuple[PhaseTiming, ...], pid_of: Any,
                 tid_of: Any) -> list[dict[str, Any]]:
    by_name = {ph.name: ph for ph in workload.phases}
    out: list[dict[str, Any]] = []
    for name, starts in result.flow_start_s.items():
        ph = by_name.get(name)
        if ph is None:
            raise ConfigError("workload", f"has no phase '{name}': trace the workload that was simulated", name)
        finish = np.asarray(result.flow_finish_s[name], dtype=np.float64)
        starts = np.asarray(starts, dtype=np.float64)
        fl = ph.flows
        if starts.shape != (len(fl),) or finish.shape != (len(fl),) or not len(fl):
            continue
        inst = _instance_of(name, float(starts.min()), timings)
        pid = pid_of(_cluster(inst) if inst is not None else _CLUSTER_OF_KIND.get(ph.phase, "trainer"))
        for t in np.unique(fl.tag):
            mask = fl.tag == t
            label = fl.tags[int(t)] if int(t) < len(fl.tags) and fl.tags[int(t)] else (ph.collective or ph.phase)
            lo, hi = float(starts[mask].min()), float(finish[mask].max())
            out.append({"ph": "X", "cat": "collective", "name": label, "pid": pid, "tid": tid_of(pid, label),
                        "ts": lo * US_PER_S, "dur": (hi - lo) * US_PER_S,
                        "args": {"phase": name, "flows": int(mask.sum()),
                                 "bytes": float((fl.size_bytes[mask] * fl.multiplicity[mask]).sum())}})
    return out


def _instance_of(name: str, t: float, timings: tuple[PhaseTiming, ...]) -> PhaseTiming | None:
    """The instance of phase ``name`` running at time ``t``."""
    cands = [p for p in timings if p.name == name]
    inside = [p for p in cands if p.start_s - 1e-9 <= t <= p.start_s + p.duration_s + 1e-9]
    pick = inside or cands
    return pick[0] if pick else None


def trace_summary(doc: Mapping[str, Any]) -> dict[str, int]:
    """Event counts per category of a trace document (for logs and tests)."""
    out: dict[str, int] = {}
    for e in doc.get("traceEvents", []):
        if e.get("ph") == "X":
            out[e["cat"]] = out.get(e["cat"], 0) + 1
    return out
