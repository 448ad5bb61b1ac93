"""HiGHS backend: the formulation's arrays passed straight to highspy (``passModel``), MIP start, limits.

Status reading: HiGHS's *model status* says why it stopped; whether a solution exists is the separate
``primal_solution_status``. A time/node-limited run with an incumbent is ``feasible`` (with its gap), a
proof of infeasibility is ``infeasible``, anything else without a solution is ``error``. ``bound`` is
HiGHS's ``mip_dual_bound`` (a valid bound even when the run stopped at ``mip_rel_gap``), never the
incumbent.

Console output: HiGHS writes its "Running HiGHS ..." banner to the C-level stdout the first time a
``highspy.Highs`` is constructed in a process, before any option can be set (ERGO-Code/HiGHS#1702,
#1932: "it can't be switched off independently"). :func:`quiet_highs` therefore constructs the first
instance of the process with file descriptor 1 pointed at ``/dev/null`` (HiGHS prints the banner once
per process), then sets ``output_flag`` and ``log_to_console`` off on every instance it returns. PuLP's
``HiGHS`` solver constructs its own instance, so the PuLP backend calls :func:`silence_banner` first.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
import time
from typing import Any

import numpy as np
import scipy.sparse as sp

from solver.backends import MipOutcome
from solver.formulation import Formulation
from solver.options import TIME_LIMIT_S

_banner_lock = threading.Lock()
_banner_done = False


def silence_banner() -> None:
    """Let HiGHS print its once-per-process banner into ``/dev/null`` (idempotent, thread-safe)."""
    global _banner_done
    if _banner_done:
        return
    with _banner_lock:
        if _banner_done:
            return
        import highspy

        try:
            sys.stdout.flush()
            saved = os.dup(1)
        except (OSError, ValueError):  # no usable stdout: nothing can leak into it
            _banner_done = True
            return
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, 1)
            h = highspy.Highs()
            h.setOptionValue("output_flag", False)
            del h
            try:
                ctypes.CDLL(None).fflush(None)  # the banner may sit in the C stdio buffer
            except (OSError, AttributeError):  # pragma: no cover - non-POSIX libc
                pass
        finally:
            os.dup2(saved, 1)
            os.close(saved)
            os.close(null)
        _banner_done = True


def quiet_highs() -> Any:
    """A ``highspy.Highs`` that writes nothing to the console (see the module docstring)."""
    import highspy

    silence_banner()
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("log_to_console", False)
    return h


def available() -> bool:
    try:
        import highspy  # noqa: F401
    except ImportError:  # pragma: no cover - highspy is a hard dependency
        return False
    return True


def gap_bound(objective: float, mip_gap: float, abs_gap: float = 1e-6) -> float:
    """A valid upper bound from a maximisation stopped at relative gap ``mip_gap``.

    HiGHS stops when ``(bound - obj) / |obj| <= mip_rel_gap`` or ``bound - obj <= mip_abs_gap`` (1e-6);
    CBC when ``bound - obj < gap * max(|obj|, |bound|)``; Gurobi when ``(bound - obj) / |obj| <= MIPGap``.
    ``obj + gap / (1 - gap) * |obj| + abs_gap`` covers all three (sources: the HiGHS option reference,
    CbcModel.cpp ``CbcAllowableFractionGap``, the Gurobi ``MIPGap`` parameter page).
    """
    g = min(max(float(mip_gap), 0.0), 0.999999)
    return float(objective + g / (1.0 - g) * abs(objective) + abs_gap)


def solve(form: Formulation, *, start: np.ndarray | None = None, time_limit_s: float = TIME_LIMIT_S, mip_gap: float = 1e-3,
          node_limit: int = 0, seed: int = 0, threads: int = 0) -> MipOutcome:
    """Solve the MILP ``form`` (maximisation) with HiGHS; never raises for solver trouble."""
    return solve_arrays(form.cost, form.A, form.row_lo, form.row_hi, form.col_lo, form.col_hi, form.integer,
                        start=start, time_limit_s=time_limit_s, mip_gap=mip_gap, node_limit=node_limit, seed=seed,
                        threads=threads)


def solve_arrays(cost: np.ndarray, A: sp.spmatrix, row_lo: np.ndarray, row_hi: np.ndarray, col_lo: np.ndarray,
                 col_hi: np.ndarray, integer: np.ndarray, *, start: np.ndarray | None = None,
                 time_limit_s: float = TIME_LIMIT_S, mip_gap: float = 1e-3, node_limit: int = 0, seed: int = 0,
                 threads: int = 0) -> MipOutcome:
    """``max cost @ v`` s.t. ``row_lo <= A v <= row_hi``, ``col_lo <= v <= col_hi``, ``v[integer]`` integral.

    Infinite entries are free sides. Never raises for solver trouble (status ``error``).
    """
    import highspy

    t0 = time.perf_counter()
    integer = np.asarray(integer, dtype=bool)
    try:
        h = quiet_highs()
        h.setOptionValue("time_limit", float(time_limit_s))
        h.setOptionValue("mip_rel_gap", float(mip_gap))
        h.setOptionValue("random_seed", int(seed) % (2**31 - 1))
        if not integer.any():  # concurrent-flow LPs are degenerate: interior point, no crossover
            h.setOptionValue("solver", "ipm")
            h.setOptionValue("run_crossover", "off")
        if node_limit > 0:
            h.setOptionValue("mip_max_nodes", int(node_limit))
        if threads > 0:
            h.setOptionValue("threads", int(threads))
        lp = highspy.HighsLp()
        lp.num_col_ = int(cost.size)
        lp.num_row_ = int(A.shape[0])
        inf = highspy.kHighsInf
        lp.col_cost_ = np.asarray(cost, dtype=np.float64)
        lp.col_lower_ = np.where(np.isfinite(col_lo), col_lo, -inf)
        lp.col_upper_ = np.where(np.isfinite(col_hi), col_hi, inf)
        lp.row_lower_ = np.where(np.isfinite(row_lo), row_lo, -inf)
        lp.row_upper_ = np.where(np.isfinite(row_hi), row_hi, inf)
        lp.sense_ = highspy.ObjSense.kMaximize
        csc = sp.csc_matrix(A)
        csc.sort_indices()
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = csc.indptr.astype(np.int32)
        lp.a_matrix_.index_ = csc.indices.astype(np.int32)
        lp.a_matrix_.value_ = csc.data.astype(np.float64)
        if integer.any():  # an integrality list, even all-continuous, sends HiGHS down the MIP path
            kint, kcont = highspy.HighsVarType.kInteger, highspy.HighsVarType.kContinuous
            lp.integrality_ = [kint if b else kcont for b in integer.tolist()]
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
        bound = float(info.mip_dual_bound) if integer.any() else float("nan")
        message = h.modelStatusToString(ms)
        S = highspy.HighsModelStatus
        if ms == S.kOptimal:
            status = "optimal"
            if not integer.any():  # an LP solved to optimality: its objective is its bound
                bound = obj
        elif ms == S.kInfeasible:
            status = "infeasible"
        elif has_sol:
            status = "feasible"
        elif ms in (S.kTimeLimit, S.kIterationLimit, S.kSolutionLimit, S.kInterrupt):
            status = "limit"
        else:
            status = "error"
        if status == "optimal" and not np.isfinite(bound):  # pragma: no cover - HiGHS always reports it
            bound = gap_bound(obj, mip_gap)
        if values is not None:
            true_obj = float(np.asarray(cost, dtype=np.float64) @ values)
            if abs(true_obj - obj) > 1e-6 * max(1.0, abs(obj)):
                # HiGHS 1.16 can map a MIP start wrongly into the presolved space ("MIP start solution is
                # feasible in the reduced space: objective value is ..." above its true value) and then
                # return the start as "optimal": solve again without the start
                if start is not None:
                    left = float(time_limit_s) - (time.perf_counter() - t0)
                    again = solve_arrays(cost, A, row_lo, row_hi, col_lo, col_hi, integer, start=None,
                                         time_limit_s=max(left, 0.05), mip_gap=mip_gap, node_limit=node_limit,
                                         seed=seed, threads=threads)
                    return MipOutcome(status=again.status, values=again.values, objective=again.objective,
                                      bound=again.bound, wall_time_s=time.perf_counter() - t0,
                                      message=again.message + " (re-solved without the MIP start: HiGHS reported "
                                      f"objective {obj:.6g} for a start worth {true_obj:.6g})", nodes=again.nodes,
                                      timed_out=again.timed_out or ms == S.kTimeLimit)
                message += f" (reported objective {obj:.6g} does not match the solution's {true_obj:.6g})"
                obj = true_obj
                if status == "optimal":
                    status = "feasible"
        return MipOutcome(status=status, values=values, objective=obj, bound=bound if np.isfinite(bound) else float("nan"),
                          wall_time_s=time.perf_counter() - t0, message=message,
                          nodes=int(getattr(info, "mip_node_count", 0)), timed_out=ms == S.kTimeLimit)
    except Exception as e:  # noqa: BLE001 - a solver failure is a result, not a crash
        return MipOutcome(status="error", values=None, objective=float("nan"), bound=float("nan"),
                          wall_time_s=time.perf_counter() - t0, message=f"{type(e).__name__}: {e}")
