"""The physical fabric: a networkx graph with typed node roles and unit-suffixed edge attributes.

Conventions every builder follows (``topologies/``) and every consumer relies on:

* Node names are strings: ``gpu{g}`` (global GPU index ``g``), ``nic{g}``, ``nvs{s}`` (the NVLink
  switch of server ``s``), ``tor{t}``, ``agg{a}``, ``core{c}``, ``ocs.{layer}.{k}``, and on fabrics whose
  NICs are ports of a forwarding server (``mixnet``, ``topoopt``) ``host{s}`` (role HOST: the NIC of GPU
  ``g`` hangs off ``host{s}``, whose edges are the server's NIC links to a ToR or to OCS ports).
* Node attribute ``role`` (:class:`NodeRole`); GPUs/NICs carry ``gpu``, ``server``, ``tor`` (name of their
  ToR/leaf) and ``pod`` (int); switches carry ``radix`` (ports), ``port_bps``, ``pod`` (int, -1 for
  core-level switches) and ``index``.
* An edge is one or more parallel physical links between two nodes, full duplex: ``links`` (int),
  ``link_bps`` (per link, per direction), ``capacity_bps`` = ``links * link_bps`` (per direction),
  ``latency_s`` and ``medium`` (:class:`Medium`).
* OCS nodes carry ``layer`` (``"agg"``, ``"core"`` or ``"nic"`` for OCS ports fibred to servers' NICs), ``ports`` (int) and ``port_owner``: a tuple of
  length ``ports`` giving the switch node each OCS port is fibred to (``""`` for an unwired port). The
  edge switch--OCS has ``links`` = the number of that switch's ports on that OCS and medium FIBRE.
  An OCS switches light: it has no capacity of its own; a circuit joins two switch ports.

The physical graph is the fibre plant (the *description*); :func:`rfabric.circuits.logical_topology`
realises a circuit assignment on it as the *logical* graph a simulator runs on (a
:class:`~rfabric.circuits.LogicalTopology`), with OCS nodes removed and each circuit a CIRCUIT link
between the two switches. Builders' attributes that consumers read have typed accessors here
(:meth:`Topology.port_owner`, :meth:`Topology.ocs_layer`, :attr:`Topology.circuit_template`,
:attr:`Topology.nic_bps`).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import networkx as nx
import numpy as np

from rfabric.errors import ConfigError


class NodeRole(enum.Enum):
    GPU = "gpu"
    NIC = "nic"
    NVSWITCH = "nvswitch"
    TOR = "tor"
    AGG = "agg"
    CORE = "core"
    OCS = "ocs"
    HOST = "host"  # a server as a forwarding node: its NICs' ports, relayed over PCIe/NVLink (mixnet, topoopt)


SWITCH_ROLES = (NodeRole.TOR, NodeRole.AGG, NodeRole.CORE)
FORWARDING_ROLES = (*SWITCH_ROLES, NodeRole.HOST)
"""Nodes the simulator routes through: EPS switches, and hosts of fabrics whose NICs sit on a server node."""


class Medium(enum.Enum):
    NVLINK = "nvlink"  # inside a server
    PCIE = "pcie"  # GPU to its NIC
    COPPER = "copper"  # DAC, e.g. NIC to ToR when ``host_dac`` is set
    OPTICAL = "optical"  # electrical packet link over optics (transceiver at both ends)
    FIBRE = "fibre"  # switch port fibred to an OCS port (physical plant only)
    CIRCUIT = "circuit"  # logical link made by an OCS circuit (logical graph only)


MEDIUM_CODES = {m: i for i, m in enumerate(Medium)}


@dataclass(frozen=True, slots=True)
class LinkTable:
    """A topology compiled for the simulator: integer node ids and directed arcs as numpy arrays.

    Every undirected edge ``e`` becomes arcs ``2e`` (u->v) and ``2e+1`` (v->u), each with the edge's
    per-direction capacity.
    """

    node_names: tuple[str, ...]
    node_role: np.ndarray  # int8, index into list(NodeRole)
    arc_src: np.ndarray  # int32
    arc_dst: np.ndarray  # int32
    capacity_bps: np.ndarray  # float64 per arc
    latency_s: np.ndarray  # float64 per arc
    medium: np.ndarray  # int8 per arc, MEDIUM_CODES
    gpu_node: np.ndarray  # int32: node id of GPU g

    @property
    def num_nodes(self) -> int:
        return len(self.node_names)

    @property
    def num_arcs(self) -> int:
        return int(self.arc_src.shape[0])

    def index(self) -> dict[str, int]:
        return {n: i for i, n in enumerate(self.node_names)}


@dataclass(frozen=True)
class Topology:
    """A fabric: its graph, what built it and its parameters (SI units).

    ``graph`` is owned by the Topology: treat it as read-only (derive a new Topology instead).
    """

    name: str
    kind: str
    graph: nx.Graph
    params: Mapping[str, Any] = field(default_factory=dict)
    ocs_reconfig_s: float = 0.0
    reconfigurable: bool = False  # False: OCS circuits are set once for the whole job (static OCS)

    # ---- nodes -------------------------------------------------------------------------------
    def nodes(self, role: NodeRole) -> list[str]:
        """Nodes of one role, in graph insertion order (deterministic)."""
        return [n for n, r in self.graph.nodes(data="role") if r is role]

    @cached_property
    def gpus(self) -> tuple[str, ...]:
        """GPU node names ordered by global GPU index."""
        g = self.graph
        names = self.nodes(NodeRole.GPU)
        return tuple(sorted(names, key=lambda n: g.nodes[n]["gpu"]))

    @property
    def num_gpus(self) -> int:
        return len(self.gpus)

    @property
    def ocs_nodes(self) -> list[str]:
        return self.nodes(NodeRole.OCS)

    @cached_property
    def has_ocs(self) -> bool:
        """Whether the fabric has an OCS node (computed once: the graph is not mutated after build)."""
        return any(r is NodeRole.OCS for _, r in self.graph.nodes(data="role"))

    @cached_property
    def _levels(self) -> dict[str, tuple[np.ndarray, tuple[str, ...]]]:
        """Memo of :meth:`gpu_groups` / :meth:`group_names` per level (the graph is not mutated after build)."""
        return {}

    def _level(self, level: str) -> tuple[np.ndarray, tuple[str, ...]]:
        """(group index of every GPU, group names) at ``level``, computed once per topology."""
        memo = self._levels.get(level)
        if memo is not None:
            return memo
        if level == "gpu":
            groups = np.arange(self.num_gpus, dtype=np.int64)
            names: tuple[str, ...] = self.gpus
        elif level in ("server", "tor", "pod"):
            nodes = self.graph.nodes
            keys = [str(nodes[n][level]) for n in self.gpus]
            index: dict[str, int] = {}
            groups = np.fromiter((index.setdefault(k, len(index)) for k in keys), dtype=np.int64, count=len(keys))
            names = tuple(index)
        else:
            raise ConfigError("level", "must be one of gpu, server, tor, pod", level)
        groups.setflags(write=False)
        self._levels[level] = (groups, names)
        return groups, names

    def gpu_groups(self, level: str) -> np.ndarray:
        """Map GPU index -> group index at ``level`` in {"gpu", "server", "tor", "pod"} (read-only, shape (G,)).

        Groups are numbered 0..G-1 in order of first appearance by GPU index. Computed once per topology
        (linear in the GPUs) and shared: callers must not modify it.
        """
        return self._level(level)[0]

    def group_names(self, level: str) -> list[str]:
        """Display names of the groups returned by :meth:`gpu_groups` (same order)."""
        return list(self._level(level)[1])

    # ---- typed views of the builders' attributes ---------------------------------------------
    def port_owner(self, ocs: str) -> tuple[str, ...]:
        """The switch fibred to each duplex port of OCS node ``ocs`` (``""`` for an unwired port).

        Raises ``KeyError`` if ``ocs`` is not a node of the graph.
        """
        return self.graph.nodes[ocs]["port_owner"]  # type: ignore[no-any-return]

    def ocs_layer(self, ocs: str) -> str:
        """The layer of OCS node ``ocs``: ``"agg"``, ``"core"`` or ``"nic"`` (``KeyError`` for another node)."""
        return str(self.graph.nodes[ocs]["layer"])

    @property
    def circuit_template(self) -> str:
        """How a fabric whose circuits are set once chooses them: ``"solver"`` (from the job's traffic, the
        default) or a named template of :mod:`topologies.templates` (``tree``, ``mesh``, ``isolated_pod``)."""
        return str(self.graph.graph.get("circuit_template", "solver"))

    @property
    def nic_bps(self) -> float:
        """NIC speed per GPU, bits/s per direction (0.0 when the builder did not record one)."""
        return float(self.graph.graph.get("nic_bps", 0.0))

    # ---- compilation -------------------------------------------------------------------------
    def compile(self, always_on: bool = False) -> LinkTable:
        """Integer-indexed numpy arrays for the simulator (physical FIBRE edges are skipped).

        ``always_on``: the table of the always-on part, ``rfabric.circuits.logical_topology(self)`` (OCS
        nodes left out too, same node and arc order), without building that graph (a networkx copy of the
        whole fabric). Raises ``ConfigError`` if a non-FIBRE edge reaches an OCS.
        """
        g = self.graph
        fibre = Medium.FIBRE
        if always_on:
            names = tuple(n for n, r in g.nodes(data="role") if r is not NodeRole.OCS)
        else:
            names = tuple(g.nodes)
        idx = {n: i for i, n in enumerate(names)}
        roles = list(NodeRole)
        role_code = {r: i for i, r in enumerate(roles)}
        node_role = np.fromiter((role_code[r] for r in (g.nodes[n]["role"] for n in names)), dtype=np.int8,
                                count=len(names))
        # one pass over the adjacency in networkx's edges() order (an edge at its first endpoint)
        u_l: list[int] = []
        v_l: list[int] = []
        cap_l: list[float] = []
        lat_l: list[float] = []
        med_l: list[int] = []
        seen: set[object] = set()
        for u, nbrs in g.adjacency():
            iu = idx.get(u)
            for v, d in nbrs.items():
                if v in seen:
                    continue
                med = d.get("medium")
                if med is fibre:
                    continue
                iv = idx.get(v)
                if iu is None or iv is None:  # an OCS reached by a non-FIBRE edge: not a plant of this model
                    raise ConfigError("topology", f"edge {u}--{v} joins an OCS but its medium is {med}, not "
                                      "fibre: an OCS switches light between fibres only", self.name)
                u_l.append(iu)
                v_l.append(iv)
                cap_l.append(d["capacity_bps"])
                lat_l.append(d.get("latency_s", 0.0))
                med_l.append(MEDIUM_CODES[med])
            seen.add(u)
        m = len(u_l)
        u_id = np.array(u_l, dtype=np.int32)
        v_id = np.array(v_l, dtype=np.int32)
        cap = np.array(cap_l, dtype=np.float64)
        lat = np.array(lat_l, dtype=np.float64)
        med = np.array(med_l, dtype=np.int8)
        arc_src = np.empty(2 * m, dtype=np.int32)
        arc_dst = np.empty(2 * m, dtype=np.int32)
        arc_src[0::2], arc_src[1::2] = u_id, v_id
        arc_dst[0::2], arc_dst[1::2] = v_id, u_id
        gpu_node = np.fromiter((idx[n] for n in self.gpus), dtype=np.int32, count=self.num_gpus)
        return LinkTable(node_names=names, node_role=node_role, arc_src=arc_src, arc_dst=arc_dst,
                         capacity_bps=np.repeat(cap, 2), latency_s=np.repeat(lat, 2),
                         medium=np.repeat(med, 2), gpu_node=gpu_node)

    # ---- summaries ---------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        counts = {r.value: 0 for r in NodeRole}
        for _, r in self.graph.nodes(data="role"):
            counts[r.value] += 1
        return {"name": self.name, "kind": self.kind, "nodes": counts, "edges": self.graph.number_of_edges()}


def iter_edges_by_medium(topology: Topology, media: Iterable[Medium]) -> Iterable[tuple[str, str, dict]]:
    wanted = set(media)
    for u, v, d in topology.graph.edges(data=True):
        if d.get("medium") in wanted:
            yield u, v, d
