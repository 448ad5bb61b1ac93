"""Circuit solver: which circuits each OCS holds in each phase, and how good that choice is.

Two levels (see :mod:`solver.formulation` and :mod:`solver.decompose`): integer circuit counts between
the nodes of each OCS domain (pods on the core layer, ToRs on each pod's aggregation layer) maximising
the phase's concurrent throughput alpha with spill to the always-on electrical path; then per-OCS port
pairs that keep as many of the previous phase's circuits as possible. Backends: ``highs`` (numpy
heuristic + MILP passed straight to highspy), ``pulp`` (same arrays through PuLP, any PuLP solver, LP/MPS
export), ``greedy`` (heuristic alone). Planning across phases is reconfiguration-aware
(:func:`plan_schedule`).

>>> import topologies
>>> from rfabric.config import ClusterConfig
>>> from rfabric.traffic_matrix import TrafficMatrix
>>> topo = topologies.build("rfabric", {"switch_radix": 16, "wiring": "core"}, ClusterConfig())
>>> tm = TrafficMatrix.from_pairs(128, [0], [64], 1e9)           # one GPU of pod 0 to one of pod 1
>>> res = solve_phase(topo, tm, parse_options({"backend": "greedy"}))
>>> res.termination, res.summary()["circuits_per_pair"]
(<Termination.OPTIMAL: 'optimal'>, {'pod0-pod1': 48})
"""

from __future__ import annotations

import logging

from solver.cache import SolveCache
from solver.decompose import Realisation, realise
from solver.export import export_model
from solver.formulation import Domain, Formulation, Problem, domains, formulate, make_problem
from solver.heuristics import evaluate_alpha, greedy, node_bound
from solver.options import BACKENDS, SolverOptions, parse_options
from solver.planner import evaluate, problems, solve_domain, solve_phase
from solver.result import DomainResult, SolveResult
from solver.schedule import plan_schedule

# A library never prints: without a handler of the application's, log records go nowhere instead of to
# logging.lastResort on stderr (Python logging HOWTO, "Configuring Logging for a Library"); rfabric.cli installs one.
logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "BACKENDS", "Domain", "DomainResult", "Formulation", "Problem", "Realisation", "SolveCache", "SolveResult",
    "SolverOptions", "domains", "evaluate", "evaluate_alpha", "export_model", "formulate", "greedy", "make_problem",
    "node_bound", "parse_options", "plan_schedule", "problems", "realise", "solve_domain", "solve_phase",
]
