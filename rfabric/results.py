"""The comparison of fabrics (performance per cost against a reference), and every result type's old home.

The result types live beside their logic: :class:`BillOfMaterials` / :class:`BomLine` in :mod:`rfabric.bom`,
:class:`CostBreakdown` / :class:`CostLine` in :mod:`rfabric.cost`, :class:`SimulationResult` /
:class:`PhaseTiming` in :mod:`rfabric.sim.result`, :class:`Provenance` in :mod:`rfabric.provenance`. They are
re-exported here (the same objects), so ``from rfabric.results import ...`` keeps working.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rfabric.bom import BillOfMaterials, BomLine
from rfabric.cost import CostBreakdown, CostLine
from rfabric.errors import UnknownNameError
from rfabric.provenance import Provenance
from rfabric.sim.result import PhaseTiming, SimulationResult

__all__ = ["BillOfMaterials", "BomLine", "Comparison", "ComparisonRow", "CostBreakdown", "CostLine", "PhaseTiming",
           "Provenance", "SimulationResult", "compare"]


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
        raise UnknownNameError("fabric", fabric, (r.fabric for r in self.rows))

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
        raise UnknownNameError("reference fabric", reference, results)

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
