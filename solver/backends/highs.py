"""HiGHS backend: the formulation's arrays passed straight to highspy (``passModel``), MIP start, limits.

Status reading: HiGHS's *model status* says why it stopped; whether a solution exists is the separate
``primal_solution_status``. A time/node-limited run with an incumbent is ``feasible`` (with its gap), a
proof of infeasibility is ``infeasible``, anything else without a solution is ``error``.
"""

from __future__ import annotations

import time

import numpy as np

from solver.backends import MipOutcome
from solver.formulation import Formulation


def available() -> bool:
    try:
        import highspy  # noqa: F401
    except ImportError:  # pragma: no cover - highspy is a hard dependency
        return False
    return True


def solve(form: Formulation, *, start: np.ndarray | None = None, time_limit_s: float = 2.0, mip_gap: float = 1e-3,
          node_limit: int = 0, seed: int = 0, threads: int = 0) -> MipOutcome:
    """Solve the MILP ``form`` (maximisation) with HiGHS; never raises for solver trouble."""
    import highspy

    t0 = time.perf_counter()
    try:
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("time_limit", float(time_limit_s))
        h.setOptionValue("mip_rel_gap", float(mip_gap))
        h.setOptionValue("random_seed", int(seed) % (2**31 - 1))
        if not form.integer.any():  # concurrent-flow LPs are degenerate: interior point, no crossover
            h.setOptionValue("solver", "ipm")
            h.setOptionValue("run_crossover", "off")
        if node_limit > 0:
            h.setOptionValue("mip_max_nodes", int(node_limit))
        if threads > 0:
            h.setOptionValue("threads", int(threads))
        lp = highspy.HighsLp()
        lp.num_col_ = form.num_cols
        lp.num_row_ = form.num_rows
        inf = highspy.kHighsInf
        lp.col_cost_ = form.cost
        lp.col_lower_ = np.where(np.isfinite(form.col_lo), form.col_lo, -inf)
        lp.col_upper_ = np.where(np.isfinite(form.col_hi), form.col_hi, inf)
        lp.row_lower_ = np.where(np.isfinite(form.row_lo), form.row_lo, -inf)
        lp.row_upper_ = np.where(np.isfinite(form.row_hi), form.row_hi, inf)
        lp.sense_ = highspy.ObjSense.kMaximize
        csc = form.A.tocsc()
        csc.sort_indices()
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = csc.indptr.astype(np.int32)
        lp.a_matrix_.index_ = csc.indices.astype(np.int32)
        lp.a_matrix_.value_ = csc.data.astype(np.float64)
        if form.integer.any():  # an integrality list, even all-continuous, sends HiGHS down the MIP path
            kint, kcont = highspy.HighsVarType.kInteger, highspy.HighsVarType.kContinuous
            lp.integrality_ = [kint if b else kcont for b in form.integer.tolist()]
        h.passModel(lp)
        if start is not None:
            sol = highspy.HighsSolution()
            sol.col_value = np.asarray(start, dtype=np.float64).tolist()
            sol.value_valid = True
            h.setSolution(sol)
        h.run()
        ms = h.getModelStatus()
        info = h.getInfo()
        has_sol = int(info.primal_solution_status) == int(highspy.SolutionStatus.kSolutionStatusFeasible)
        values = np.asarray(h.getSolution().col_value, dtype=np.float64) if has_sol else None
        obj = float(info.objective_function_value) if has_sol else float("nan")
        bound = float(info.mip_dual_bound)
        message = h.modelStatusToString(ms)
        S = highspy.HighsModelStatus
        if ms == S.kOptimal:
            status = "optimal"
            if not np.isfinite(bound) or not form.integer.any():
                bound = obj
        elif ms == S.kInfeasible:
            status = "infeasible"
        elif has_sol:
            status = "feasible"
        else:
            status = "error"
        return MipOutcome(status=status, values=values, objective=obj, bound=bound if np.isfinite(bound) else float("nan"),
                          wall_time_s=time.perf_counter() - t0, message=message,
                          nodes=int(getattr(info, "mip_node_count", 0)))
    except Exception as e:  # noqa: BLE001 - a solver failure is a result, not a crash
        return MipOutcome(status="error", values=None, objective=float("nan"), bound=float("nan"),
                          wall_time_s=time.perf_counter() - t0, message=f"{type(e).__name__}: {e}")
