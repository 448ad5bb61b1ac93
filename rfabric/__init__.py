"""RFabric: an emulator of reconfigurable optical-electrical fabrics for LLM RL post-training clusters.

The core package holds the types every stage speaks; ``rfabric.api`` composes the stages.
"""

import logging

from rfabric.circuits import Circuit, CircuitAssignment, CircuitSchedule, PhaseDecision, check_assignment
from rfabric.errors import ConfigError, RfabricError, SimulationError, SolverError
from rfabric.results import (
    BillOfMaterials,
    BomLine,
    Comparison,
    ComparisonRow,
    CostBreakdown,
    PhaseTiming,
    Provenance,
    SimulationResult,
)
from rfabric.topology import LinkTable, Medium, NodeRole, Topology
from rfabric.traffic_matrix import TrafficMatrix
from rfabric.workload import FlowSet, PhaseStep, Workload

# A library never prints: without a handler of the application's, log records go nowhere instead of to
# logging.lastResort on stderr (Python logging HOWTO, "Configuring Logging for a Library"); rfabric.cli installs one.
logging.getLogger(__name__).addHandler(logging.NullHandler())

__version__ = "0.1.0"

__all__ = [
    "BillOfMaterials", "BomLine", "Circuit", "CircuitAssignment", "CircuitSchedule", "Comparison", "ComparisonRow",
    "ConfigError", "CostBreakdown", "FlowSet", "LinkTable", "Medium", "NodeRole", "PhaseDecision", "PhaseStep",
    "PhaseTiming", "Provenance", "RfabricError", "SimulationError", "SimulationResult", "SolverError", "Topology",
    "TrafficMatrix", "Workload", "__version__", "check_assignment",
]
