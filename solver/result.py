"""Results of one phase's solve: per domain and combined, with an honest statement of quality.

``termination`` (why the answer is what it is) is kept apart from whether an assignment exists (there
always is one: the empty assignment is feasible for the throughput model). Every label speaks of the
*realised* circuits (what the OCS ports hold), never of counts that could not be built:

* ``optimal`` -- proven optimal within ``mip_gap`` for the realised assignment (MILP, per-OCS MILP, or a
  heuristic that met the proven bound);
* ``feasible`` -- no such proof: a limit stopped the MILP, or the MILP's counts could not be realised and a
  fallback (heuristic counts, per-OCS MILP stopped by a limit) stands; ``gap`` says how far from the bound;
* ``heuristic`` -- the greedy alone (``backend: greedy``, or transit candidates), gap against the bound;
* ``infeasible`` -- no assignment reaches ``min_alpha`` (or the traffic cannot be carried at all);
* ``error`` -- the solver failed; the heuristic's assignment is returned and ``message`` says why.

``bound`` is always a valid upper bound on the physically achievable objective: the node bound,
tightened only by a solver's proven dual bound (never replaced by an incumbent).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rfabric.circuits import CircuitAssignment, Termination

#: order of badness used when combining the domains of one phase
TERMINATIONS = tuple(Termination)


class Stage(enum.StrEnum):
    """Which step of the solver produced a domain's (or a phase's) circuits; str-valued like
    :class:`~rfabric.circuits.Termination`, so summaries and JSON carry the lower-case value."""

    HEURISTIC = "heuristic"  #: the numpy greedy
    MILP = "milp"  #: the count MILP (:func:`solver.formulation.formulate`)
    MILP_OCS = "milp_ocs"  #: the per-OCS MILP, when the counts could not be realised port by port
    TRANSIT = "transit"  #: the one-relay candidates of :mod:`solver.transit`
    DIRECT = "direct"  #: direct-connect planning (:mod:`solver.direct`)
    PREVIOUS = "previous"  #: circuits kept from the previous phase (or evaluated as given)
    LOOKAHEAD = "lookahead"  #: an idle layer pre-positioned for a later phase
    NONE = "none"  #: nothing to solve


def _num(v: float) -> float | None:
    return float(v) if v is not None and math.isfinite(v) else None


def rel_gap(alpha: float, bound: float) -> float:
    """``(bound - alpha) / bound`` (0 when both are 0 or the bound is not finite/known)."""
    if not (math.isfinite(alpha) and math.isfinite(bound)):
        return float("nan")
    if bound <= 0:
        return 0.0
    return max(0.0, (bound - alpha) / bound)


@dataclass(frozen=True, slots=True, eq=False)
class DomainResult:
    """One OCS domain (core layer, or one pod's aggregation layer) of one phase."""

    domain: str
    nodes: tuple[str, ...]
    termination: Termination | str  # a Termination after construction (plain value strings are converted)
    stage: Stage | str  # a Stage after construction
    alpha: float  # of the realised circuits (evaluated independently of the solver)
    alpha_model: float  # of the counts the solver returned, before port-level realisation
    bound: float  # proven upper bound on the optimised objective (alpha minus penalties)
    t0_s: float  # seconds this domain's bytes take at alpha = 1
    x: np.ndarray  # realised circuit counts between nodes
    z: np.ndarray  # realised circuits to the upper tier per node
    circuits: int
    changed: int
    kept: int
    dropped: int
    rows: int = 0
    cols: int = 0
    nonzeros: int = 0
    wall_time_s: float = 0.0
    heuristic_alpha: float = float("nan")
    cached: bool = False
    message: str = ""
    realisation: str = ""  # how the counts became ports: "fast" | "exact" | "split" (see solver.decompose)

    def __post_init__(self) -> None:  # plain strings of the values are accepted
        object.__setattr__(self, "termination", Termination(self.termination))
        object.__setattr__(self, "stage", Stage(self.stage))

    @property
    def gap(self) -> float:
        return rel_gap(self.alpha, self.bound)

    @property
    def time_s(self) -> float:
        """Completion time of this domain's traffic in the solver's fluid view (``t0 / alpha``)."""
        if self.t0_s <= 0:
            return 0.0
        return self.t0_s / self.alpha if self.alpha > 0 else float("inf")

    def summary(self) -> dict[str, Any]:
        pairs = {}
        iu, ju = np.nonzero(np.triu(self.x, k=1))
        for i, j in zip(iu.tolist(), ju.tolist(), strict=True):
            pairs[f"{self.nodes[i]}-{self.nodes[j]}"] = int(self.x[i, j])
        up = {self.nodes[i]: int(v) for i, v in enumerate(self.z.tolist()) if v}
        return {"domain": self.domain, "termination": self.termination, "stage": self.stage,
                "alpha": _num(self.alpha), "alpha_model": _num(self.alpha_model), "bound": _num(self.bound),
                "gap": _num(self.gap), "heuristic_alpha": _num(self.heuristic_alpha), "time_s": _num(self.time_s),
                "circuits": self.circuits, "changed": self.changed, "kept": self.kept, "dropped": self.dropped,
                "rows": self.rows, "cols": self.cols, "nonzeros": self.nonzeros,
                "wall_time_s": round(self.wall_time_s, 6), "cached": self.cached, "message": self.message,
                "realisation": self.realisation, "circuits_per_pair": pairs, "circuits_to_upper": up}


@dataclass(frozen=True, slots=True, eq=False)
class SolveResult:
    """One phase: the assignment over every OCS and the quality of each domain's part.

    ``objective`` is the phase's alpha: ``max_d t0_d / max_d (t0_d / alpha_d)`` (1 = the traffic moves as
    fast as if every OCS layer were non-blocking); ``bound`` the same over the domains' proven bounds.
    ``x`` is the realised circuit-count matrix over ``nodes`` (block diagonal: the core layer's pods, then
    each pod's ToRs).
    """

    assignment: CircuitAssignment
    termination: Termination | str  # a Termination after construction (plain value strings are converted)
    objective: float
    bound: float
    wall_time_s: float
    backend: str
    stage: Stage | str  # a Stage after construction
    domains: tuple[DomainResult, ...] = ()
    message: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:  # plain strings of the values are accepted
        object.__setattr__(self, "termination", Termination(self.termination))
        object.__setattr__(self, "stage", Stage(self.stage))

    @property
    def alpha(self) -> float:
        return self.objective

    @property
    def gap(self) -> float:
        return rel_gap(self.objective, self.bound)

    @property
    def rows(self) -> int:
        return sum(d.rows for d in self.domains)

    @property
    def cols(self) -> int:
        return sum(d.cols for d in self.domains)

    @property
    def nonzeros(self) -> int:
        return sum(d.nonzeros for d in self.domains)

    @property
    def nodes(self) -> tuple[str, ...]:
        return tuple(n for d in self.domains for n in d.nodes)

    @property
    def x(self) -> np.ndarray:
        size = sum(len(d.nodes) for d in self.domains)
        out = np.zeros((size, size), dtype=np.int64)
        o = 0
        for d in self.domains:
            k = len(d.nodes)
            out[o:o + k, o:o + k] = d.x
            o += k
        return out

    @property
    def cached(self) -> bool:
        return bool(self.domains) and all(d.cached for d in self.domains)

    def summary(self) -> dict[str, Any]:
        """JSON-able: alpha, bound, gap, time, backend, circuits per node pair, per-domain details."""
        pairs: dict[str, int] = {}
        for d in self.domains:
            pairs.update(d.summary()["circuits_per_pair"])
        return {"termination": self.termination, "alpha": _num(self.objective), "bound": _num(self.bound),
                "gap": _num(self.gap), "wall_time_s": round(self.wall_time_s, 6), "backend": self.backend,
                "stage": self.stage, "circuits": len(self.assignment), "rows": self.rows, "cols": self.cols,
                "nonzeros": self.nonzeros, "message": self.message, "circuits_per_pair": pairs,
                "domains": [d.summary() for d in self.domains]}


def combine_alpha(t0: list[float], alpha: list[float]) -> float:
    """Phase alpha from domain alphas (see :class:`SolveResult`); nan without any demand."""
    live = [(t, a) for t, a in zip(t0, alpha, strict=True) if t > 0]
    if not live:
        return float("nan")
    if any(math.isnan(a) for _, a in live):  # a domain whose alpha is not modelled (direct-connect)
        return float("nan")
    tmax = max(t for t, _ in live)
    worst = max((t / a if a > 0 else math.inf) for t, a in live)
    if math.isnan(worst):
        return float("nan")
    return tmax / worst if worst > 0 else float("inf")


def worst_termination(terms: list[str]) -> Termination:
    """The worst of ``terms`` in the order of :class:`~rfabric.circuits.Termination` (optimal if none)."""
    if not terms:
        return Termination.OPTIMAL
    return Termination(max(terms, key=TERMINATIONS.index))
