"""What the simulator reports: the timing of each phase and the result of one fabric and one workload.

Filled by :func:`rfabric.sim.step.simulate` and :func:`rfabric.sim.pipeline.simulate_pipeline`; re-exported
by :mod:`rfabric.results`. Numpy only: importing this module does not load the engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rfabric.provenance import Provenance


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
