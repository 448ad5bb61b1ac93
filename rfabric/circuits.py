"""OCS circuit assignments, their independent checker, and their realisation as a logical topology.

A circuit joins two ports of one OCS; each OCS port is fibred to one switch port (the topology's
``port_owner``), so a circuit is a logical link between two switches. Circuits are duplex: one OCS port
per switch uplink (the bill of materials doubles OCS ports unless the plant is bidirectional).

The physical :class:`~rfabric.topology.Topology` describes the plant; :func:`logical_topology` realises an
assignment on it (Mininet's split of a topology's description from its realisation).
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from operator import attrgetter

import networkx as nx
import numpy as np

from rfabric.errors import InvalidArgumentError, RfabricError
from rfabric.topology import Medium, NodeRole, Topology


class Action(enum.StrEnum):
    """What the circuit planner did before a phase (:attr:`PhaseDecision.action`).

    Members are strings of their lower-case values, so JSON and CSV output are the values themselves.

    >>> Action.KEPT == "kept", f"{Action.RECONFIGURED}"
    (True, 'reconfigured')
    """

    KEPT = "kept"  #: the circuits in place stay
    RECONFIGURED = "reconfigured"  #: circuits re-pointed before the phase
    STATIC = "static"  #: one assignment for the whole job (static OCS, ``reconfig: never``, a fixed template)
    NONE = "none"  #: the fabric has no OCS


class Termination(enum.StrEnum):
    """Why a solve's answer is what it is, kept apart from whether an assignment exists (Pyomo's
    ``TerminationCondition``); declared from best to worst (see :mod:`solver.result` for each meaning).

    >>> max([Termination.FEASIBLE, Termination.OPTIMAL], key=list(Termination).index)
    <Termination.FEASIBLE: 'feasible'>
    """

    OPTIMAL = "optimal"
    HEURISTIC = "heuristic"
    FEASIBLE = "feasible"
    INFEASIBLE = "infeasible"
    ERROR = "error"


@dataclass(frozen=True, slots=True, order=True)
class Circuit:
    """One circuit: OCS node ``ocs`` joins its ports ``port_a`` and ``port_b`` (``port_a < port_b``)."""

    ocs: str
    port_a: int
    port_b: int

    def __post_init__(self) -> None:
        if self.port_a >= self.port_b:
            raise InvalidArgumentError(f"circuit ports must be ordered and distinct: {self.port_a}, {self.port_b}")


_CIRCUIT_ORDER = attrgetter("ocs", "port_a", "port_b")


@dataclass(frozen=True, slots=True)
class CircuitAssignment:
    """The set of circuits every OCS holds during one phase (a port-level assignment)."""

    circuits: tuple[Circuit, ...] = ()

    @staticmethod
    def of(circuits: Iterable[Circuit]) -> CircuitAssignment:
        """The assignment of ``circuits`` in their (ocs, port_a, port_b) order (a canonical form)."""
        # the order Circuit's own comparisons give, taken on plain tuples (no Python-level __lt__ per compare)
        return CircuitAssignment(circuits=tuple(sorted(circuits, key=_CIRCUIT_ORDER)))

    def __len__(self) -> int:
        return len(self.circuits)

    def endpoints(self, topology: Topology) -> list[tuple[str, str]]:
        """The switch pair (sorted) of each circuit."""
        out = []
        for c in self.circuits:
            owner = topology.port_owner(c.ocs)
            a, b = owner[c.port_a], owner[c.port_b]
            out.append((a, b) if a <= b else (b, a))
        return out

    def pair_counts(self, topology: Topology) -> Counter[tuple[str, str]]:
        """Number of circuits between each (sorted) switch pair."""
        return Counter(self.endpoints(topology))

    def pair_capacity(self, topology: Topology) -> dict[tuple[str, str], tuple[int, float, float]]:
        """(count, capacity_bps per direction, latency_s) of the circuits joining each switch pair.

        A circuit's rate is the slower of its two switch ports' fibre links; its latency the sum of the
        two fibre latencies.
        """
        g = topology.graph
        out: dict[tuple[str, str], tuple[int, float, float]] = {}
        for c in self.circuits:
            owner = topology.port_owner(c.ocs)
            a, b = owner[c.port_a], owner[c.port_b]
            ea, eb = g.edges[a, c.ocs], g.edges[b, c.ocs]
            bps = min(ea["link_bps"], eb["link_bps"])
            lat = ea.get("latency_s", 0.0) + eb.get("latency_s", 0.0)
            key = (a, b) if a <= b else (b, a)
            n, cap, lt = out.get(key, (0, 0.0, lat))
            out[key] = (n + 1, cap + bps, max(lt, lat))
        return out

    def changed(self, other: CircuitAssignment) -> tuple[set[Circuit], set[Circuit]]:
        """(circuits removed, circuits added) going from ``self`` to ``other``."""
        a, b = set(self.circuits), set(other.circuits)
        return a - b, b - a

    def pair_matrix(self, topology: Topology, nodes: list[str]) -> np.ndarray:
        """Symmetric matrix of circuit counts between the given switches."""
        idx = {n: i for i, n in enumerate(nodes)}
        m = np.zeros((len(nodes), len(nodes)), dtype=np.int64)
        for (a, b), n in self.pair_counts(topology).items():
            if a in idx and b in idx:
                m[idx[a], idx[b]] += n
                m[idx[b], idx[a]] += n
        return m


@dataclass(frozen=True)
class LogicalTopology(Topology):
    """The logical topology one circuit assignment realises on a physical fabric (from :func:`logical_topology`).

    A :class:`~rfabric.topology.Topology` (compile it, count its GPUs, cut it) whose graph has no OCS
    nodes and no FIBRE edges: each circuit is a CIRCUIT link between its two switches. ``physical`` is the
    fabric it was realised on and ``assignment`` the circuits lit (None: only the always-on part).
    """

    physical: Topology | None = None
    assignment: CircuitAssignment | None = None


def logical_topology(topology: Topology, assignment: CircuitAssignment | None = None) -> LogicalTopology:
    """Realise ``assignment`` on the physical ``topology``: OCS nodes removed, each circuit a CIRCUIT link.

    Circuits between the same pair of switches add up into one edge (``links`` counts them); a circuit
    parallel to an existing electrical link adds its capacity to that edge and is recorded in
    ``circuit_bps``/``circuits`` so results can split bytes by medium. A circuit's rate and latency are
    those of :meth:`CircuitAssignment.pair_capacity`. ``assignment`` None gives the always-on part: what
    stays up while every OCS reconfigures. The physical graph is not modified.
    """
    g = nx.Graph()
    g.graph.update(topology.graph.graph)
    g.add_nodes_from((n, d) for n, d in topology.graph.nodes(data=True) if d.get("role") is not NodeRole.OCS)
    g.add_edges_from((u, v, dict(d)) for u, v, d in topology.graph.edges(data=True)
                     if d.get("medium") is not Medium.FIBRE)
    if assignment is not None:
        for (a, b), (count, bps, lat) in sorted(assignment.pair_capacity(topology).items()):
            if g.has_edge(a, b):
                d = g.edges[a, b]
                d["capacity_bps"] += bps
                d["circuit_bps"] = d.get("circuit_bps", 0.0) + bps
                d["circuits"] = d.get("circuits", 0) + count
            else:
                g.add_edge(a, b, links=count, link_bps=bps / count, capacity_bps=bps, latency_s=lat,
                           medium=Medium.CIRCUIT, circuit_bps=bps, circuits=count)
    return LogicalTopology(name=topology.name, kind=topology.kind, graph=g, params=topology.params,
                           ocs_reconfig_s=topology.ocs_reconfig_s, reconfigurable=topology.reconfigurable,
                           physical=topology, assignment=assignment)


class AssignmentError(RfabricError):
    """An assignment that breaks a physical rule (raised by ``check_assignment(..., strict=True)``)."""


def check_assignment(topology: Topology, assignment: CircuitAssignment, *, strict: bool = True) -> list[str]:
    """Independently verify an assignment against the fibre plant; return the violations found.

    Rules: every circuit names an existing OCS of the topology and two wired ports within its radix;
    no OCS port is used by two circuits; a circuit never joins a switch to itself. With ``strict`` (the
    default) any violation raises :class:`AssignmentError` listing the first few.
    """
    g = topology.graph
    problems: list[str] = []
    used: dict[tuple[str, int], Circuit] = {}
    for c in assignment.circuits:
        if c.ocs not in g or g.nodes[c.ocs].get("role") is not NodeRole.OCS:
            problems.append(f"{c}: '{c.ocs}' is not an OCS of topology '{topology.name}'")
            continue
        owner = topology.port_owner(c.ocs)
        ok = True
        for p in (c.port_a, c.port_b):
            if not 0 <= p < len(owner):
                problems.append(f"{c}: port {p} outside 0..{len(owner) - 1}")
                ok = False
            elif not owner[p]:
                problems.append(f"{c}: port {p} is not fibred to any switch")
                ok = False
            key = (c.ocs, p)
            if key in used:
                problems.append(f"{c}: port {p} already used by {used[key]}")
                ok = False
            used[key] = c
        if ok and owner[c.port_a] == owner[c.port_b]:
            problems.append(f"{c}: joins switch '{owner[c.port_a]}' to itself")
    if strict and problems:
        more = f" (+{len(problems) - 5} more)" if len(problems) > 5 else ""
        raise AssignmentError("; ".join(problems[:5]) + more)
    return problems


@dataclass(frozen=True, slots=True)
class PhaseDecision:
    """What the planner did before one phase, and why.

    ``action`` is an :class:`Action` and ``termination`` a :class:`Termination` (``""`` when nothing was
    solved); plain strings of their values are accepted and converted.
    """

    phase: str
    action: Action | str  # an Action after construction
    circuits: int
    changed: int  # circuits added (= removed ports re-pointed)
    reason: str
    alpha: float = float("nan")  # concurrent throughput factor of the chosen assignment (solver's view)
    bound: float = float("nan")
    gap: float = float("nan")
    solve_time_s: float = 0.0
    backend: str = ""
    termination: Termination | str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "action", Action(self.action))
        if self.termination:
            object.__setattr__(self, "termination", Termination(self.termination))


@dataclass(frozen=True, slots=True)
class CircuitSchedule:
    """One assignment per phase step of a workload (aligned with ``Workload.phases``)."""

    assignments: tuple[CircuitAssignment, ...]
    decisions: tuple[PhaseDecision, ...] = ()
    meta: Mapping[str, object] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.assignments)
