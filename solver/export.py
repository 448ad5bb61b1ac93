"""Write a phase's MILP per OCS domain as an LP / MPS file through PuLP (``rfabric solve --export``)."""

from __future__ import annotations

from pathlib import Path

from rfabric.errors import ConfigError
from rfabric.topology import Topology
from rfabric.traffic_matrix import TrafficMatrix
from solver.formulation import formulate
from solver.heuristics import node_bound
from solver.options import SolverOptions
from solver.planner import problems

# ------------------------------------------------------------------------------------------------
# Export


def export_model(topology: Topology, traffic: TrafficMatrix, options: SolverOptions, path: str | Path) -> list[Path]:
    """Write the MILP of every OCS domain with traffic as LP or MPS (by ``path``'s suffix) through PuLP.

    One domain: ``path`` itself; several: ``<stem>.<domain><suffix>`` beside it. Returns the files written.
    """
    p = Path(path)
    if p.suffix.lower() not in (".lp", ".mps"):
        raise ConfigError("--export", "model files end in .lp or .mps", str(path))
    from solver.backends.pulp import write_model

    live = [q for q in problems(topology, traffic, options) if not q.empty]
    if not live:
        raise ConfigError("--phase", "this phase sends no traffic across any OCS layer: there is no model to write",
                          traffic.phase)
    out = []
    for q in live:
        target = p if len(live) == 1 else p.with_name(f"{p.stem}.{q.domain.name}{p.suffix}")
        out.append(write_model(formulate(q, node_bound(q)), target))
    return out
