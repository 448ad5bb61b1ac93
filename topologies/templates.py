"""Named circuit assignments over an OCS plant: baselines for comparison and warm starts for the solver.

* ``tree``: every fibred port whose Clos counterpart exists on its OCS (``port_peer``) is joined to it, so
  the logical graph is the Clos the plant was cut from; planes without a counterpart (thinned upper tier)
  are paired like ``mesh``. Over a plant with both upper shares at 1 this reproduces the Clos exactly.
* ``mesh``: direct lower-switch circuits: on every plane, the ToRs of the pod (agg layer) or the pods
  (core layer) are paired by a round-robin tournament, plane ``q`` taking round ``q mod rounds``, so the
  circuits spread evenly over all pairs (pod-to-pod "spine-free" at the core layer).
* ``isolated_pod``: circuits stay inside pods: the aggregation layer as ``tree``; on the core layer each
  OCS joins aggregation switches of the *same* pod (inter-pod traffic uses the always-on path only).
* On a NIC-level OCS (``mixnet``, ``topoopt``) planes have no Clos counterpart: every template pairs the
  servers of each plane round-robin (``mesh``).

Every result passes :func:`rfabric.circuits.check_assignment`.

>>> from rfabric.config import ClusterConfig
>>> from rfabric.circuits import check_assignment
>>> import topologies
>>> topo = topologies.build("rfabric", {"switch_radix": 16}, ClusterConfig())
>>> a = circuit_template(topo, "mesh")
>>> len(a), check_assignment(topo, a)
(48, [])
"""

from __future__ import annotations

from collections import defaultdict

from rfabric.circuits import Circuit, CircuitAssignment
from rfabric.errors import ConfigError
from rfabric.parsing import suggest
from rfabric.topology import NodeRole, Topology
from topologies._params import TEMPLATES

_LOWER = {"agg": NodeRole.TOR, "core": NodeRole.AGG, "nic": NodeRole.HOST}


def round_robin(n: int, r: int) -> list[tuple[int, int]]:
    """Round ``r`` of a round-robin tournament on ``n`` members (circle method): disjoint pairs.

    >>> round_robin(4, 0), round_robin(4, 1), round_robin(3, 0)
    ([(0, 3), (1, 2)], [(0, 1), (2, 3)], [(1, 2)])
    """
    if n < 2:
        return []
    m = n + (n % 2)
    rest = list(range(1, m))
    s = r % (m - 1)
    arr = [0] + rest[s:] + rest[:s]
    out: list[tuple[int, int]] = []
    for i in range(m // 2):
        a, b = arr[i], arr[m - 1 - i]
        if a < n and b < n:
            out.append((min(a, b), max(a, b)))
    return sorted(out)


def _planes(topology: Topology, ocs: str) -> dict[int, list[int]]:
    """Wired ports of one OCS grouped by plane (port order)."""
    plane = topology.graph.nodes[ocs]["port_plane"]
    out: dict[int, list[int]] = defaultdict(list)
    for port, q in enumerate(plane):
        if q >= 0:
            out[q].append(port)
    return out


def _mesh_plane(topology: Topology, ocs: str, q: int, ports: list[int]) -> list[Circuit]:
    g = topology.graph
    lower_role = _LOWER[topology.ocs_layer(ocs)]
    owner = topology.port_owner(ocs)
    lower = [p for p in ports if g.nodes[owner[p]]["role"] is lower_role]
    return [Circuit(ocs, min(lower[a], lower[b]), max(lower[a], lower[b])) for a, b in round_robin(len(lower), q)]


def _tree(topology: Topology, ocs: str) -> list[Circuit]:
    peer = topology.graph.nodes[ocs]["port_peer"]
    out: list[Circuit] = []
    for q, ports in sorted(_planes(topology, ocs).items()):
        if any(peer[p] >= 0 for p in ports):
            out.extend(Circuit(ocs, p, peer[p]) for p in ports if p < peer[p])
        else:
            out.extend(_mesh_plane(topology, ocs, q, ports))
    return out


def _mesh(topology: Topology, ocs: str) -> list[Circuit]:
    out: list[Circuit] = []
    for q, ports in sorted(_planes(topology, ocs).items()):
        out.extend(_mesh_plane(topology, ocs, q, ports))
    return out


def _isolated(topology: Topology, ocs: str) -> list[Circuit]:
    g = topology.graph
    if topology.ocs_layer(ocs) in ("agg", "nic"):  # a NIC-level OCS serves one region: its circuits never leave it
        return _tree(topology, ocs)
    owner = topology.port_owner(ocs)
    by_pod: dict[int, list[int]] = defaultdict(list)
    for port, sw in enumerate(owner):
        if sw and g.nodes[sw]["role"] is NodeRole.AGG:
            by_pod[g.nodes[sw]["pod"]].append(port)
    out: list[Circuit] = []
    for _, ports in sorted(by_pod.items()):
        ports.sort(key=lambda p: (owner[p], p))
        half = len(ports) // 2
        left, right = ports[:half], ports[half:]
        for a, b in zip(left, right, strict=False):
            if owner[a] != owner[b]:
                out.append(Circuit(ocs, min(a, b), max(a, b)))
    return out


_BUILDERS = {"tree": _tree, "mesh": _mesh, "isolated_pod": _isolated}


def circuit_template(topology: Topology, template: str) -> CircuitAssignment:
    """The named assignment (``tree``, ``mesh`` or ``isolated_pod``) over ``topology``'s OCS plant.

    A topology without OCS gets the empty assignment.
    """
    if template not in _BUILDERS:
        raise ConfigError("circuit_template", f"unknown circuit template; {suggest(template, list(TEMPLATES))}",
                          template)
    fn = _BUILDERS[template]
    circuits: list[Circuit] = []
    for ocs in topology.ocs_nodes:
        circuits.extend(fn(topology, ocs))
    return CircuitAssignment.of(circuits)


__all__ = ["circuit_template", "round_robin", "TEMPLATES"]
