"""Flow-level, event-driven simulator: fluid flows, exact max-min fair rates, circuit reconfigurations.

* :func:`simulate` plays a :class:`~rfabric.workload.Workload` (an RL step of phase steps) on a physical
  topology under a :class:`~rfabric.circuits.CircuitSchedule` and fills a
  :class:`~rfabric.sim.result.SimulationResult` (timeline rules: :mod:`rfabric.sim.step`).
* :func:`simulate_flows` plays one :class:`~rfabric.workload.FlowSet` with a circuit assignment and timed
  circuit changes and returns a :class:`FlowTrace` (event semantics: :mod:`rfabric.sim.engine`).
* Routing (ECMP hash/split, circuits vs the always-on path): :mod:`rfabric.sim.routing`.
* Rates: :func:`maxmin_rates` (:mod:`rfabric.sim.maxmin`).
* Options (the ``sim`` section of a run config): :class:`~rfabric.sim.options.SimConfig`
  (:mod:`rfabric.sim.options`).

Only numpy, scipy and networkx (through :mod:`rfabric.topology`) are used. The names above are imported on
first use, so :mod:`rfabric.sim.options` (which :mod:`rfabric.config` needs) loads without the engine.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rfabric.sim.engine import FlowTrace, simulate_flows
    from rfabric.sim.maxmin import maxmin_rates
    from rfabric.sim.routing import Fabric
    from rfabric.sim.step import simulate

__all__ = ["simulate", "simulate_flows", "FlowTrace", "maxmin_rates", "Fabric"]

_HOME = {"simulate": "step", "simulate_flows": "engine", "FlowTrace": "engine", "maxmin_rates": "maxmin",
         "Fabric": "routing"}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        value = getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOME])
