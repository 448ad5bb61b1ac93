"""Result types: bill of materials, cost, simulation, comparison — each with provenance."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where a result came from: the resolved config's hash, the seed and the package version."""

    config_hash: str = ""
    seed: int = 0
    version: str = ""


# ---------------------------------------------------------------------------------------------------
# Bill of materials


@dataclass(frozen=True, slots=True, order=True)
class BomLine:
    """``count`` parts of one kind.

    ``part`` is one of: ``switch`` (a box, ``radix`` ports at ``rate_bps``), ``switch_port`` (used ports),
    ``switch_port_spare``, ``nic_port``, ``transceiver``, ``dac``, ``ocs`` (a device of ``radix`` ports),
    ``ocs_port`` (ports fibred), ``fibre`` (with ``length_m`` per fibre), ``gpu``, ``server``.
    ``tier`` says where: ``host``, ``tor``, ``agg``, ``core``, ``ocs.agg``, ``ocs.core``, ...
    """

    part: str
    tier: str
    rate_bps: float = 0.0
    radix: int = 0
    count: int = 0
    length_m: float = 0.0


@dataclass(frozen=True, slots=True)
class BillOfMaterials:
    """Every part of one built fabric, counted from its graph (never from a formula)."""

    topology: str
    lines: tuple[BomLine, ...]
    num_gpus: int = 0

    def count(self, part: str, tier: str | None = None, rate_bps: float | None = None) -> int:
        return sum(ln.count for ln in self.lines if ln.part == part and (tier is None or ln.tier == tier)
                   and (rate_bps is None or math.isclose(ln.rate_bps, rate_bps)))

    def as_rows(self) -> list[dict[str, Any]]:
        return [{"part": ln.part, "tier": ln.tier, "rate_gbps": ln.rate_bps / 1e9, "radix": ln.radix,
                 "count": ln.count, "length_m": ln.length_m} for ln in self.lines]


# ---------------------------------------------------------------------------------------------------
# Cost


@dataclass(frozen=True, slots=True)
class CostLine:
    part: str
    tier: str
    rate_bps: float
    count: int
    unit_usd: float
    total_usd: float
    unit_w: float
    total_w: float
    network: bool = True  # False for GPUs/servers (whole-cluster figures only)


@dataclass(frozen=True, slots=True)
class CostBreakdown:
    """Itemised capex and power of one fabric under one price catalogue."""

    topology: str
    catalogue: str
    lines: tuple[CostLine, ...]

    @property
    def capex_network_usd(self) -> float:
        return float(sum(ln.total_usd for ln in self.lines if ln.network))

    @property
    def capex_cluster_usd(self) -> float:
        return float(sum(ln.total_usd for ln in self.lines))

    @property
    def power_network_w(self) -> float:
        return float(sum(ln.total_w for ln in self.lines if ln.network))

    @property
    def power_cluster_w(self) -> float:
        """Network plus GPUs and servers (the ``gpu_w`` / ``server_w`` catalogue lines), in W."""
        return float(sum(ln.total_w for ln in self.lines))

    def by_part(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for ln in self.lines:
            out[ln.part] = out.get(ln.part, 0.0) + ln.total_usd
        return out

    def by_tier(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for ln in self.lines:
            out[ln.tier] = out.get(ln.tier, 0.0) + ln.total_usd
        return out


# ---------------------------------------------------------------------------------------------------
# Simulation


@dataclass(frozen=True, slots=True)
class PhaseTiming:
    """When one phase step ran (first RL step simulated), in seconds from the step's start."""

    name: str
    phase: str
    start_s: float  # when its compute_before window began
    comm_start_s: float  # when its first flow could start (after compute_before)
    end_s: float  # last flow finished + compute_after
    repeat: int = 1
    reconfig_s: float = 0.0  # time some circuits were dark during this phase's window
    reconfig_exposed_s: float = 0.0  # part of the reconfiguration not hidden by compute_before
    circuits_changed: int = 0
    bytes_by_medium: Mapping[str, float] = field(default_factory=dict)
    flows: int = 0
    cluster: str = ""  # trainer | rollout | sync (pipelined schedules; see rfabric.sim.pipeline)
    step: int = 0  # the RL step of this instance (pipelined schedules)

    @property
    def duration_s(self) -> float:
        """Wall time of the phase including its compute, times its repeat count."""
        return (self.end_s - self.start_s) * self.repeat

    @property
    def comm_s(self) -> float:
        return self.end_s - self.comm_start_s


@dataclass(frozen=True, slots=True, eq=False)
class SimulationResult:
    """What the flow-level simulator reports for one fabric and one workload.

    ``iteration_time_s`` is the time per RL step: the mean step time of the sequential (``sync``) step, or
    the steady-state period of a pipelined schedule (``mode``); ``instances`` holds every phase instance
    played by a pipelined schedule (both clusters' lanes), ``phases`` one instance per phase.
    """

    fabric: str
    iteration_time_s: float  # one RL step (all phases, repeats included)
    phases: tuple[PhaseTiming, ...]
    flow_start_s: Mapping[str, np.ndarray] = field(default_factory=dict)  # phase name -> per flow
    flow_finish_s: Mapping[str, np.ndarray] = field(default_factory=dict)
    link_util_times_s: np.ndarray | None = None  # (T,) sample instants
    link_util: np.ndarray | None = None  # (T, L) utilisation of selected links, 0..1
    link_names: tuple[str, ...] = ()
    reconfig_time_s: float = 0.0
    events: int = 0
    solves: int = 0
    wall_time_s: float = 0.0
    provenance: Provenance = field(default_factory=Provenance)
    extra: Mapping[str, Any] = field(default_factory=dict)
    instances: tuple[PhaseTiming, ...] = ()
    mode: str = "sync"

    @property
    def steps_per_s(self) -> float:
        return 1.0 / self.iteration_time_s if self.iteration_time_s > 0 else float("inf")

    def phase_times(self) -> dict[str, float]:
        return {p.name: p.duration_s for p in self.phases}

    def bytes_by_medium(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for p in self.phases:
            for k, v in p.bytes_by_medium.items():
                out[k] = out.get(k, 0.0) + v * p.repeat
        return out


# ---------------------------------------------------------------------------------------------------
# Comparison


@dataclass(frozen=True, slots=True)
class ComparisonRow:
    fabric: str
    kind: str
    gpus: int
    iteration_time_s: float
    steps_per_s: float
    capex_usd: float  # network capex
    capex_cluster_usd: float
    power_w: float
    perf_per_usd: float  # steps/s per network USD
    perf_per_usd_vs_ref: float
    time_vs_ref: float  # iteration time / reference iteration time
    perf_per_w: float
    perf_per_w_vs_ref: float
    perf_per_cluster_usd_vs_ref: float
    reconfig_time_s: float
    phase_times_s: Mapping[str, float] = field(default_factory=dict)
    mode: str = "sync"  # the schedule (workload.schedule.mode)
    trainer_gpus: int = 0
    rollout_gpus: int = 0
    trainer_busy_frac: float = 0.0  # share of the step period the trainer pool computes or syncs
    rollout_busy_frac: float = 0.0
    critical_cluster: str = ""  # the pool that limits the period: trainer | rollout | both
    power_cluster_w: float = 0.0  # network + GPUs + servers
    perf_per_cluster_w_vs_ref: float = 0.0  # steps/s per whole-cluster W, over the reference's


@dataclass(frozen=True, slots=True)
class Comparison:
    """Performance per cost of several fabrics, normalised to a reference fabric."""

    reference: str
    rows: tuple[ComparisonRow, ...]
    provenance: Provenance = field(default_factory=Provenance)

    def row(self, fabric: str) -> ComparisonRow:
        for r in self.rows:
            if r.fabric == fabric:
                return r
        raise KeyError(fabric)

    def table(self) -> list[dict[str, Any]]:
        """One flat dict per fabric (phase times as ``phase_<name>_s`` columns)."""
        out = []
        for r in self.rows:
            d = {k: getattr(r, k) for k in ComparisonRow.__slots__ if k != "phase_times_s"}  # type: ignore[attr-defined]
            for name, t in r.phase_times_s.items():
                d[f"phase_{name}_s"] = t
            out.append(d)
        return out


def compare(results: Mapping[str, tuple[str, SimulationResult, CostBreakdown]], reference: str, gpus: int,
            provenance: Provenance | None = None, split: tuple[int, int] = (0, 0)) -> Comparison:
    """Build a :class:`Comparison` from ``{fabric: (kind, SimulationResult, CostBreakdown)}``.

    ``split``: (trainer GPUs, rollout GPUs) of the run, reported per row with the schedule ``mode`` and each
    pool's busy fraction and the critical pool (from ``SimulationResult.extra``).

    perf = steps per second; perf per $ = perf / network capex; everything ``_vs_ref`` divides by the
    reference fabric's value (so the reference row has 1.0).
    """
    if reference not in results:
        raise KeyError(reference)

    def metrics(sim: SimulationResult, cost: CostBreakdown) -> tuple[float, float, float, float, float]:
        perf = sim.steps_per_s
        return (perf, perf / cost.capex_network_usd if cost.capex_network_usd else float("inf"),
                perf / cost.power_network_w if cost.power_network_w else float("inf"),
                perf / cost.capex_cluster_usd if cost.capex_cluster_usd else float("inf"),
                perf / cost.power_cluster_w if cost.power_cluster_w else float("inf"))

    _, ref_sim, ref_cost = results[reference]
    _, ref_ppu, ref_ppw, ref_ppc, ref_ppcw = metrics(ref_sim, ref_cost)
    rows = []
    for fabric, (kind, sim, cost) in results.items():
        perf, ppu, ppw, ppc, ppcw = metrics(sim, cost)
        rows.append(ComparisonRow(
            fabric=fabric, kind=kind, gpus=gpus, iteration_time_s=sim.iteration_time_s, steps_per_s=perf,
            capex_usd=cost.capex_network_usd, capex_cluster_usd=cost.capex_cluster_usd, power_w=cost.power_network_w,
            perf_per_usd=ppu, perf_per_usd_vs_ref=ppu / ref_ppu, time_vs_ref=sim.iteration_time_s / ref_sim.iteration_time_s,
            perf_per_w=ppw, perf_per_w_vs_ref=ppw / ref_ppw if ref_ppw else float("nan"),
            perf_per_cluster_usd_vs_ref=ppc / ref_ppc if ref_ppc else float("nan"),
            reconfig_time_s=sim.reconfig_time_s, phase_times_s=sim.phase_times(), mode=sim.mode,
            trainer_gpus=split[0], rollout_gpus=split[1],
            trainer_busy_frac=float(sim.extra.get("trainer_busy_frac", 0.0)),
            rollout_busy_frac=float(sim.extra.get("rollout_busy_frac", 0.0)),
            critical_cluster=str(sim.extra.get("critical_cluster", "")), power_cluster_w=cost.power_cluster_w,
            perf_per_cluster_w_vs_ref=ppcw / ref_ppcw if ref_ppcw else float("nan")))
    return Comparison(reference=reference, rows=tuple(rows), provenance=provenance or Provenance())
