"""PuLP backend: an ``LpProblem`` built from the formulation's arrays; any PuLP solver; LP/MPS export.

Status reading: PuLP's ``status`` says "Optimal" for a time-limited CBC incumbent, "Infeasible" when CBC
stopped on its time limit before an integer solution ("Integer infeasible" in CBC's solution file), and
leaves LP-relaxation values in the variables when CBC finds no integer solution, so only ``sol_status`` is
trusted: ``LpSolutionOptimal`` -> optimal, ``LpSolutionIntegerFeasible`` -> feasible,
``LpSolutionInfeasible`` -> infeasible, ``LpSolutionNoSolutionFound`` -> limit (stopped without a
solution and without a proof; values discarded), a solver failure -> error.

Bound: PuLP exposes no dual bound for CBC. When ``sol_status`` is optimal the solver stopped within
``mip_gap``, so :func:`solver.backends.highs.gap_bound` (valid for CBC's, HiGHS's and Gurobi's gap rules)
is reported; otherwise ``nan`` (the planner falls back on its node bound).
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from rfabric.errors import ConfigError
from solver.backends import MipOutcome
from solver.backends.highs import gap_bound, silence_banner
from solver.formulation import Formulation
from solver.options import TIME_LIMIT_S


def installed_solvers() -> list[str]:
    import pulp

    return list(pulp.listSolvers(onlyAvailable=True))


def build_problem(form: Formulation, name: str = "circuits") -> tuple[Any, list[Any]]:
    """The formulation as a ``pulp.LpProblem`` (maximise) and its variables in column order."""
    import pulp

    prob = pulp.LpProblem(name, pulp.LpMaximize)
    names = form.col_names()
    lo, hi = form.col_lo, form.col_hi
    make = prob.add_variable if hasattr(prob, "add_variable") else pulp.LpVariable  # PuLP >= 3.3 idiom
    variables = [
        make(nm, lowBound=float(lo[i]) if np.isfinite(lo[i]) else None,
             upBound=float(hi[i]) if np.isfinite(hi[i]) else None,
             cat=pulp.LpInteger if form.integer[i] else pulp.LpContinuous)
        for i, nm in enumerate(names)
    ]
    prob += pulp.LpAffineExpression([(variables[i], float(c)) for i in np.flatnonzero(form.cost).tolist()
                                     for c in (form.cost[i],)], name="objective")
    A = form.A.tocsr()
    rnames = form.row_names()
    for r in range(form.num_rows):
        s, e = A.indptr[r], A.indptr[r + 1]
        expr = pulp.LpAffineExpression(list(zip([variables[j] for j in A.indices[s:e].tolist()],
                                                A.data[s:e].tolist(), strict=True)))
        lo_r, hi_r = form.row_lo[r], form.row_hi[r]
        if np.isfinite(lo_r) and np.isfinite(hi_r) and lo_r == hi_r:
            prob += pulp.LpConstraint(expr, pulp.LpConstraintEQ, rnames[r], float(hi_r))
            continue
        if np.isfinite(hi_r):
            prob += pulp.LpConstraint(expr, pulp.LpConstraintLE, rnames[r] if not np.isfinite(lo_r) else rnames[r] + "_hi",
                                      float(hi_r))
        if np.isfinite(lo_r):
            prob += pulp.LpConstraint(expr, pulp.LpConstraintGE, rnames[r] if not np.isfinite(hi_r) else rnames[r] + "_lo",
                                      float(lo_r))
    return prob, variables


def get_solver(name: str, *, time_limit_s: float, mip_gap: float, warm: bool, threads: int = 0,
               node_limit: int = 0) -> Any:
    """A PuLP solver object; a solver PuLP knows but that is not installed is a ``ConfigError`` (user's choice).

    ``node_limit`` (> 0) reaches CBC as ``maxNodes``; PuLP passes no node limit to the other solvers.
    """
    import pulp

    have = installed_solvers()
    if name not in have:
        raise ConfigError("solver.pulp_solver", f"PuLP solver '{name}' is not installed here; installed: "
                          f"{', '.join(have) or 'none'}", name)
    kw: dict[str, Any] = {"msg": False, "timeLimit": float(time_limit_s), "gapRel": float(mip_gap)}
    if warm and name in ("PULP_CBC_CMD", "COIN_CMD", "GUROBI", "GUROBI_CMD", "CPLEX_CMD", "CPLEX_PY"):
        kw["warmStart"] = True
    if threads > 0:
        kw["threads"] = threads
    if node_limit > 0 and name in ("PULP_CBC_CMD", "COIN_CMD"):
        kw["maxNodes"] = int(node_limit)
    with warnings.catch_warnings():  # PULP_CBC_CMD (the bundled CBC) is deprecated for PuLP 4, pinned < 4
        warnings.simplefilter("ignore", DeprecationWarning)
        return pulp.getSolver(name, **kw)


def solve(form: Formulation, *, solver_name: str = "PULP_CBC_CMD", start: np.ndarray | None = None,
          time_limit_s: float = TIME_LIMIT_S, mip_gap: float = 1e-3, threads: int = 0,
          node_limit: int = 0) -> MipOutcome:
    """Solve ``form`` through PuLP (raises ``ConfigError`` only for a solver that is not installed).

    PuLP does not say which limit stopped a solver: ``timed_out`` is set when a run without a proof
    lasted at least 95 % of ``time_limit_s``.
    """
    import pulp

    t0 = time.perf_counter()
    solver = get_solver(solver_name, time_limit_s=time_limit_s, mip_gap=mip_gap, warm=start is not None,
                        threads=threads, node_limit=node_limit)
    try:
        prob, variables = build_problem(form)
        if start is not None:
            for v, val in zip(variables, np.asarray(start).tolist(), strict=True):
                v.setInitialValue(round(val) if v.cat == pulp.LpInteger else val)
        if "highs" in solver_name.lower():
            silence_banner()  # PuLP's HiGHS constructs a highspy.Highs before it can set output_flag
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            prob.solve(solver)
        ss = prob.sol_status
        if ss == pulp.LpSolutionOptimal:
            status = "optimal"
        elif ss == pulp.LpSolutionIntegerFeasible:
            status = "feasible"
        elif ss == pulp.LpSolutionInfeasible:
            status = "infeasible"
        elif ss == pulp.LpSolutionNoSolutionFound:
            status = "limit"
        else:
            status = "error"
        values = None
        obj = float("nan")
        if status in ("optimal", "feasible"):
            values = np.array([v.varValue if v.varValue is not None else 0.0 for v in variables], dtype=np.float64)
            obj = float(form.cost @ values)
        bound = gap_bound(obj, mip_gap) if status == "optimal" else float("nan")
        wall = time.perf_counter() - t0
        return MipOutcome(status=status, values=values, objective=obj, bound=bound, wall_time_s=wall,
                          message=f"{pulp.LpStatus.get(prob.status, prob.status)} / sol_status {ss}",
                          timed_out=status in ("feasible", "limit") and wall >= 0.95 * float(time_limit_s))
    except Exception as e:  # noqa: BLE001 - a solver failure is a result, not a crash
        return MipOutcome(status="error", values=None, objective=float("nan"), bound=float("nan"),
                          wall_time_s=time.perf_counter() - t0, message=f"{type(e).__name__}: {e}")


def write_model(form: Formulation, path: str | Path) -> Path:
    """Write the model as ``.lp`` or ``.mps`` (by suffix) through PuLP."""
    p = Path(path)
    prob, _ = build_problem(form)
    p.parent.mkdir(parents=True, exist_ok=True)
    if p.suffix.lower() == ".mps":
        prob.writeMPS(str(p), with_objsense=True)  # OBJSENSE MAX, read correctly by other solvers
    else:
        prob.writeLP(str(p))
    return p
