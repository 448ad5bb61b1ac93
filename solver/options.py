"""Solver options: one frozen dataclass parsed from the run config's ``solver:`` section.

>>> parse_options({"backend": "greedy", "time_limit_ms": 500}).time_limit_s
0.5
>>> parse_options({"backend": "hihgs"})
Traceback (most recent call last):
...
rfabric.errors.ConfigError: solver.backend = 'hihgs': must be one of highs, pulp, greedy; did you mean 'highs'?
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rfabric.config import bounded, choice, non_negative, parse_dataclass, positive, suggest
from rfabric.errors import ConfigError

BACKENDS = ("highs", "pulp", "greedy")

#: The default wall-clock safety net of a solve (``solver.time_limit_s``), in seconds. The planner's results
#: are decided by deterministic work limits (:data:`NODE_LIMIT`, :data:`OCS_MAX_COLUMNS`); this net only stops
#: a solve those limits failed to bound, and the result then says so (:data:`SAFETY_NET_NOTE`), since it may
#: differ with the machine's speed and load. The backend functions (:func:`solver.backends.highs.solve`,
#: :func:`solver.backends.pulp.solve`, :func:`solver.decompose.realise`, :mod:`solver.transit`) default to it
#: too, so a call outside a run uses the same limit as a run.
TIME_LIMIT_S = 60.0

#: The default branch-and-bound node limit of every MILP the planner starts (``solver.node_limit``): the
#: deterministic work limit that HiGHS's maintainers point to (ERGO-Code/HiGHS#3133: "a deterministic
#: measure that is decently well correlated with time"). The planner's MILPs close at the root or within a
#: few nodes on the fabrics and tests of this project (at most 9 nodes over the solver and rfabric test
#: suites; 1 node on the 16,384-GPU RFabric step); hard edge-colouring programs (duplex circuits on
#: single-port OCSes) take ~0.2 s per node, so 20 nodes bound them to a few seconds.
NODE_LIMIT = 20

#: The default largest per-OCS integer program the planner attempts (``solver.ocs_max_columns``): integer
#: columns, one per (OCS, node pair) where both ends have ports (plus upper circuits). Bigger ones -- the
#: exact realisation step and the per-OCS MILP of the 65,536-GPU ToR-level domain have 24k -- are not
#: started, a deterministic fallback: the fast path's split stands (reported, not proven). The 16,384-GPU
#: RFabric step's programs have 6k and close at the root in about a second.
OCS_MAX_COLUMNS = 10_000

#: Said in a result's message when the wall-clock safety net stopped a solve.
SAFETY_NET_NOTE = "wall-clock safety net"

#: PuLP solver names accepted by ``pulp_solver`` (short aliases first; any ``pulp.listSolvers()`` name works).
PULP_ALIASES = {
    "CBC": "PULP_CBC_CMD",
    "HIGHS": "HiGHS",
    "HIGHS_CMD": "HiGHS_CMD",
    "GUROBI": "GUROBI",
    "GUROBI_CMD": "GUROBI_CMD",
    "CPLEX": "CPLEX_PY",
    "CPLEX_CMD": "CPLEX_CMD",
    "GLPK": "GLPK_CMD",
    "SCIP": "SCIP_CMD",
    "XPRESS": "XPRESS",
    "COPT": "COPT",
    "MOSEK": "MOSEK",
}


@dataclass(frozen=True, kw_only=True, slots=True)
class SolverOptions:
    """How circuits are chosen (YAML section ``solver:``; human units allowed: ``time_limit_ms``).

    Attributes
    ----------
    backend : str
        ``highs`` (default: numpy heuristic, then the MILP passed straight to highspy, warm-started with
        it), ``pulp`` (the same arrays as a PuLP ``LpProblem``, solved by ``pulp_solver``) or ``greedy``
        (the heuristic alone).
    pulp_solver : str
        Solver PuLP runs for ``backend: pulp``: ``CBC`` (bundled, default), ``HiGHS``, ``GUROBI``,
        ``CPLEX`` ... (any name of ``pulp.listSolvers()``; one not installed is reported with the list of
        installed ones).
    time_limit_s : float
        Wall-clock SAFETY NET of every solve the planner starts: the MILP of one OCS domain of one phase,
        the exact per-OCS realisation step, the per-OCS MILP and each routing LP of the ``transit`` model.
        What the planner returns is decided by the deterministic work limits ``node_limit`` and
        ``ocs_max_columns`` (the same circuits on every machine, whatever its load); this limit only stops
        a solve they did not bound, and the phase's message then says "wall-clock safety net" (the
        schedule's ``meta["safety_net_fired"]`` counts them): such a result may differ between runs.
        Default :data:`TIME_LIMIT_S` (60 s).
    mip_gap : float
        Relative gap at which the MILP stops (0.001 = 0.1 %).
    node_limit : int
        Branch-and-bound node limit of every MILP (HiGHS ``mip_max_nodes``, CBC ``maxNodes``): the
        deterministic work limit (default :data:`NODE_LIMIT`; 0: none, then only the wall clock bounds a
        solve and results may depend on the machine's load).
    ocs_max_columns : int
        Largest per-OCS integer program (integer columns: OCS x node pair) the planner starts, for the
        exact realisation step and the per-OCS MILP (default :data:`OCS_MAX_COLUMNS`; 0: none). Bigger
        programs are skipped -- deterministically -- and the fast path's split stands, reported as not
        proven.
    model : str
        ``hybrid`` (default): traffic goes on direct circuits or spills to the always-on electrical path.
        ``transit``: also relayed through one intermediate node over two circuits (for phases or plants
        without an electrical fallback); candidates (the hybrid optimum, circulant backbones of diameter
        two, mixes) are scored by an exact routing LP.
    layers : str
        ``sequential`` (the only one): the core layer (pod <-> pod, agg <-> core EPS) and the aggregation
        layer of each pod (ToR <-> ToR, ToR <-> agg) are solved one domain at a time. The layers share no
        OCS and no port, and each ToR's inter-pod bytes enter its pod's problem as a fixed demand on its
        uplinks, so they decouple; what is lost is the choice of *which* aggregation switch of a pod a
        core circuit lands on when some aggregation switches are reachable only over agg-layer circuits.
    reconfig : str
        ``auto`` (default): re-point circuits before a phase only when the idle window before it (compute
        after the previous phase + before this one) covers ``topology.ocs_reconfig_s``, or when the
        solver's gain in completion time exceeds the exposed switching delay; otherwise keep the current
        circuits. ``always``: re-point before every phase. ``never``: one assignment for the whole step
        (solved on the step's traffic, like a static OCS).
    reconfig_penalty : float
        Objective term: alpha given up per circuit changed against the previous phase (0: none).
    max_changed : int
        Cap on circuits changed per domain and phase (-1: no cap).
    min_alpha : float
        Required concurrent throughput (alpha lower bound; 0 = any). A phase that cannot reach it is an
        INFEASIBLE result, not an error.
    cache : bool
        Reuse the solution of a phase whose (quantised) traffic signature was solved before.
    quantise : float
        Relative step used to quantise traffic for the cache signature (0.01 = 1 %).
    seed : int
        Extra seed mixed into the run seed (HiGHS ``random_seed``, candidate generation): the solver
        draws with :meth:`mixed_seed` of the run's seed.
    threads : int
        Solver threads (0: the solver's default).
    """

    backend: str = choice("highs", choices=BACKENDS)
    pulp_solver: str = "CBC"
    time_limit_s: float = positive(TIME_LIMIT_S)
    mip_gap: float = bounded(1e-3, ge=0.0, lt=1.0)
    node_limit: int = non_negative(NODE_LIMIT)
    ocs_max_columns: int = non_negative(OCS_MAX_COLUMNS)
    model: str = choice("hybrid", choices=("hybrid", "transit"))
    layers: str = choice("sequential", choices=("sequential",))
    reconfig: str = choice("auto", choices=("auto", "always", "never"))
    reconfig_penalty: float = non_negative(0.0)
    max_changed: int = bounded(-1, ge=-1)
    min_alpha: float = non_negative(0.0)
    cache: bool = True
    quantise: float = bounded(0.01, ge=0.0, lt=1.0)
    seed: int = non_negative(0)
    threads: int = non_negative(0)

    def __post_init__(self) -> None:
        name = self.pulp_solver.upper()
        if name not in PULP_ALIASES and self.pulp_solver not in _pulp_names():
            known = sorted(set(PULP_ALIASES) | set(_pulp_names()))
            raise ConfigError("pulp_solver", f"unknown PuLP solver; {suggest(self.pulp_solver, known)}",
                              self.pulp_solver)

    def mixed_seed(self, run_seed: int) -> int:
        """The seed the solver draws with: the run's seed plus :attr:`seed` (the only place they mix).

        >>> SolverOptions(seed=5).mixed_seed(7)
        12
        """
        return int(run_seed) + self.seed


def _pulp_names() -> tuple[str, ...]:
    """Every solver class name PuLP knows (installed or not); static, so cheap after the first import."""
    return tuple(set(PULP_ALIASES.values()) | {
        "PULP_CBC_CMD", "COIN_CMD", "HiGHS", "HiGHS_CMD", "GUROBI", "GUROBI_CMD", "CPLEX_PY", "CPLEX_CMD",
        "GLPK_CMD", "SCIP_CMD", "FSCIP_CMD", "SCIP_PY", "XPRESS", "XPRESS_PY", "COPT", "COPT_CMD", "COPT_DLL",
        "MOSEK", "CHOCO_CMD", "MIPCL_CMD", "PYGLPK", "YAPOSIB", "CUOPT", "SAS94", "SASCAS",
    })


def pulp_solver_name(options: SolverOptions) -> str:
    """The PuLP class name of ``options.pulp_solver`` (``CBC`` -> ``PULP_CBC_CMD``)."""
    return PULP_ALIASES.get(options.pulp_solver.upper(), options.pulp_solver)


def parse_options(raw: Mapping[str, Any] | SolverOptions | None, path: str = "solver") -> SolverOptions:
    """Validate the ``solver:`` section; every mistake is a ``ConfigError`` naming ``path.<key>``."""
    return parse_dataclass(SolverOptions, raw, path)
