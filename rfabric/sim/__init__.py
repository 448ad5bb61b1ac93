"""Flow-level, event-driven simulator: fluid flows, exact max-min fair rates, circuit reconfigurations.

* :func:`simulate` plays a :class:`~rfabric.workload.Workload` (an RL step of phase steps) on a physical
  topology under a :class:`~rfabric.circuits.CircuitSchedule` and fills a
  :class:`~rfabric.results.SimulationResult` (timeline rules: :mod:`rfabric.sim.step`).
* :func:`simulate_flows` plays one :class:`~rfabric.workload.FlowSet` with a circuit assignment and timed
  circuit changes and returns a :class:`FlowTrace` (event semantics: :mod:`rfabric.sim.engine`).
* Routing (ECMP hash/split, circuits vs the always-on path): :mod:`rfabric.sim.routing`.
* Rates: :func:`maxmin_rates` (:mod:`rfabric.sim.maxmin`).

Only numpy, scipy and networkx (through :mod:`rfabric.topology`) are used.
"""

from __future__ import annotations

from rfabric.sim.engine import FlowTrace, simulate_flows
from rfabric.sim.maxmin import maxmin_rates
from rfabric.sim.routing import Fabric
from rfabric.sim.step import simulate

__all__ = ["simulate", "simulate_flows", "FlowTrace", "maxmin_rates", "Fabric"]
