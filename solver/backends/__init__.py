"""MILP backends: each turns a :class:`solver.formulation.Formulation` into a :class:`MipOutcome`.

``highs`` (highspy, arrays passed directly) and ``pulp`` (a PuLP ``LpProblem`` built from the same arrays,
any PuLP solver, LP/MPS export). Backends never raise for solver trouble: they report ``error``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True, eq=False)
class MipOutcome:
    """What a MILP run produced.

    ``status``: ``optimal`` (within the gap), ``feasible`` (a limit stopped it with a solution),
    ``infeasible`` (proven), ``limit`` (a limit stopped it without a solution or proof), ``error``.
    ``bound``: a valid upper bound on the objective (the solver's dual bound) or ``nan`` when unknown --
    never the incumbent of a run stopped by a limit. ``timed_out``: the wall-clock limit (the planner's
    safety net, ``solver.time_limit_s``) stopped the run, so its result may depend on the machine's load.
    """

    status: str
    values: np.ndarray | None
    objective: float
    bound: float
    wall_time_s: float
    message: str = ""
    nodes: int = 0
    timed_out: bool = False


__all__ = ["MipOutcome"]
