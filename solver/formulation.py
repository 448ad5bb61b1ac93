"""The circuit-count problem of one OCS domain, and its MILP written once as sparse arrays.

A **domain** is a set of OCSes whose ports can be joined to each other: the core layer (all pods, one
domain), the aggregation layer of one pod, or the NIC-level OCSes of one region (``mixnet``; ``topoopt``'s
single region), whose nodes are servers (``host{s}``) with the server's ToR links as their always-on path. Its *nodes* are the lower switches the circuits serve, grouped
the way traffic sees them: pods on the core layer (an aggregation switch's core ports belong to its pod,
since every ToR of the pod reaches every aggregation switch) and ToRs on the aggregation layer. Its *upper*
ports belong to the EPS tier the Clos would have used (core EPS / kept aggregation switches): a circuit from
a node to an upper port adds one circuit's rate to the node's electrical path.

Model A (``hybrid``, the MILP below), in units of one circuit's rate ``c``:

* ``x[e]`` integer circuits between the two nodes of pair ``e`` (duplex: ``c`` each way), at most the ports
  the two nodes share on the domain's OCSes (``sum_k min(P[k, a], P[k, b])``), ``z[i]`` integer circuits
  from node ``i`` to upper ports, ``alpha`` the concurrent throughput;
* ``f[k]`` the part of directed demand ``k`` (``i -> j``, rate ``d[k]`` at ``alpha = 1``) on direct circuits,
  the rest ``alpha d[k] - f[k]`` spills to the always-on electrical path of capacity ``E_out[i]``/``E_in[j]``;
* ``ext_out[i]``/``ext_in[i]``: demand of node ``i`` that must ride its electrical path anyway (on the
  aggregation layer: the ToR's inter-pod bytes).

Maximise ``alpha - penalty * sum(dx)`` subject to the row blocks

==============  ================================================================  =========
block           row                                                               per
==============  ================================================================  =========
``circuit``     ``f[k] - x[e(k)] <= 0``                                           demand k
``demand``      ``f[k] - d[k] alpha <= 0``                                        demand k
``spill_out``   ``(out[i] + ext_out[i]) alpha - sum_k:src=i f[k] - z[i] <= E_out[i]``  node i
``spill_in``    ``(in[j] + ext_in[j]) alpha - sum_k:dst=j f[k] - z[j] <= E_in[j]``      node j
``ports``       ``sum_e:i in e x[e] + z[i] <= B[i]``                              node i
``upper``       ``sum_i z[i] <= U``                                               (one)
``change``      ``dx[e] - x[e] >= -x_prev[e]`` and ``dz[i] - z[i] >= -z_prev[i]``  pair / node
``change_cap``  ``sum dx + sum dz <= max_changed``                                (one)
==============  ================================================================  =========

``alpha = 1`` means the domain's traffic moves as fast as its busiest node's hosts can inject it (a
non-blocking fabric at this layer): demands are normalised by ``t0 = max_i bytes_i / host_bps_i``, so a
phase's completion time on this layer is ``t0 / alpha``. Per-OCS port budgets are enforced at the port
level (:mod:`solver.decompose`), which reduces and reports counts it cannot realise.
"""

from __future__ import annotations

import hashlib
import itertools
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import scipy.sparse as sp

from rfabric.errors import InvalidArgumentError
from rfabric.topology import Medium, NodeRole, Topology
from rfabric.traffic_matrix import TrafficMatrix
from solver.ocs_split import as_split, lookup, shared_ocs, sym_split

_LOWER = {"agg": NodeRole.TOR, "core": NodeRole.AGG, "nic": NodeRole.HOST}
_UPPER = {"agg": NodeRole.AGG, "core": NodeRole.CORE, "nic": None}  # NIC-level OCS: no upper tier behind it
_EPS_UP = {"agg": NodeRole.AGG, "core": NodeRole.CORE, "nic": NodeRole.TOR}  # the always-on uplinks of a node
_ELECTRIC = (Medium.OPTICAL, Medium.COPPER)


# ------------------------------------------------------------------------------------------------
# Domains: the fibre plant read from the topology


@dataclass(frozen=True, eq=False)
class Domain:
    """One set of OCSes solved together (see the module docstring).

    ``lower_ports[k][i]`` lists the ports of OCS ``ocs[k]`` fibred to node ``i`` (ascending);
    ``upper_ports[k]`` those fibred to upper switches. Capacities are per direction, in bit/s.
    """

    name: str  # "core" or "agg.<pod>"
    layer: str
    pod: int
    nodes: tuple[str, ...]  # "pod<p>" (core) or ToR names (agg)
    ocs: tuple[str, ...]
    lower_ports: tuple[tuple[tuple[int, ...], ...], ...]
    upper_ports: tuple[tuple[int, ...], ...]
    circuit_bps: float
    eps_out_bps: np.ndarray
    eps_in_bps: np.ndarray
    host_bps: np.ndarray
    group_ids: tuple[int, ...] = ()  # traffic group index (pod or ToR, in gpu_groups order) of each node
    ring_planes: int = 0  # direct-connect domains: NIC planes the planner gives to ring circuits

    @property
    def n(self) -> int:
        return len(self.nodes)

    @property
    def budget(self) -> np.ndarray:
        """Lower ports per node over all OCSes of the domain (int64, a new array)."""
        return self.port_matrix.sum(axis=0)

    @property
    def upper_budget(self) -> int:
        return int(sum(len(u) for u in self.upper_ports))

    @property
    def direct(self) -> bool:
        """A direct-connect domain (TopoOpt): NIC-level, and no node has an always-on electrical path."""
        return self.layer == "nic" and not bool(np.any(self.eps_out_bps > 0))

    @cached_property
    def port_matrix(self) -> np.ndarray:
        """(OCS, node) count of lower ports (``K x n``, read-only: computed once per domain)."""
        flat = itertools.chain.from_iterable(self.lower_ports)
        out = np.fromiter(map(len, flat), dtype=np.int64, count=len(self.ocs) * self.n).reshape(len(self.ocs), self.n)
        out.setflags(write=False)
        return out

    @cached_property
    def port_nodes(self) -> tuple[dict[int, int], ...]:
        """Per OCS: port -> node index (``-1`` for an upper port); built once per domain."""
        P = self.port_matrix
        out = []
        for k, (per, up) in enumerate(zip(self.lower_ports, self.upper_ports, strict=True)):
            m = {port: i for i in np.flatnonzero(P[k]).tolist() for port in per[i]}
            m.update({port: -1 for port in up})
            out.append(m)
        return tuple(out)

    @cached_property
    def digest(self) -> bytes:
        """A digest of the domain's plant (name, OCSes, ports, circuit rate): the solve cache's key part."""
        h = hashlib.sha256()
        h.update(repr((self.name, self.ocs, self.lower_ports, self.upper_ports, self.circuit_bps)).encode())
        return h.digest()

    @cached_property
    def _port_classes(self) -> tuple[np.ndarray, np.ndarray]:
        """Nodes grouped by their column of :attr:`port_matrix`: ``(class columns C x K, class of each node)``."""
        P = self.port_matrix
        if P.size == 0:
            return np.zeros((0, P.shape[0]), dtype=np.int64), np.zeros(self.n, dtype=np.int64)
        cls, inv = np.unique(P.T, axis=0, return_inverse=True)
        return cls, np.asarray(inv, dtype=np.int64).reshape(-1)

    def pair_capacity(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Circuits node pair ``(a[e], b[e])`` can hold over all OCSes: ``sum_k min(P[k, a], P[k, b])`` (int64).

        A circuit joins two ports of one OCS, so a pair sharing no OCS can hold none, whatever its nodes'
        budgets. Computed per pair of *port classes* (nodes with the same ports on every OCS), so its cost
        is the distinct class pairs times the OCSes, not the node pairs times the OCSes.
        """
        a = np.asarray(a, dtype=np.int64).reshape(-1)
        b = np.asarray(b, dtype=np.int64).reshape(-1)
        if a.size == 0:
            return np.zeros(0, dtype=np.int64)
        cls, inv = self._port_classes
        C = max(cls.shape[0], 1)
        key = inv[a] * C + inv[b]
        uk, back = np.unique(key, return_inverse=True)
        vals = np.empty(uk.size, dtype=np.int64)
        step = max(1, 4_000_000 // max(cls.shape[1], 1))  # bounded temporaries
        for s in range(0, uk.size, step):
            q = uk[s:s + step]
            vals[s:s + step] = np.minimum(cls[q // C], cls[q % C]).sum(axis=1)
        return vals[np.asarray(back).reshape(-1)]


_DOMAINS: dict[int, tuple[Domain, ...]] = {}  # id(topology) -> its domains, dropped with the topology


def domains(topology: Topology) -> list[Domain]:
    """The OCS domains of a topology: the core layer first, then the aggregation layer of each pod.

    Built once per topology object (the planner asks for them once per phase and per evaluation) and
    forgotten when the topology is garbage-collected; topologies are not mutated after they are built.
    """
    key = id(topology)
    got = _DOMAINS.get(key)
    if got is None:
        got = _DOMAINS[key] = tuple(_build_domains(topology))
        weakref.finalize(topology, _DOMAINS.pop, key, None)
    return list(got)


def _build_domains(topology: Topology) -> list[Domain]:
    g = topology.graph
    by_key: dict[tuple[str, int], list[str]] = {}
    for o in topology.ocs_nodes:
        layer = topology.ocs_layer(o)
        pod = -1 if layer == "core" else int(g.nodes[o]["pod"])
        by_key.setdefault((layer, pod), []).append(o)
    order = sorted(by_key, key=lambda k: (k[0] != "core", k[1]))
    return [_domain(topology, layer, pod, by_key[(layer, pod)]) for layer, pod in order]


def _domain(topology: Topology, layer: str, pod: int, ocs_names: list[str]) -> Domain:
    g = topology.graph
    lower_role, upper_role, eps_role = _LOWER[layer], _UPPER[layer], _EPS_UP[layer]
    level = _LEVEL[layer]
    groups = {name: i for i, name in enumerate(topology.group_names(level))}

    gn = g.nodes
    roles: dict[str, Any] = {}  # switch -> role, looked up once per switch (networkx views are slow)

    def role_of(sw: str) -> Any:
        r = roles.get(sw)
        if r is None:
            r = roles[sw] = gn[sw]["role"]
        return r

    def node_of(sw: str) -> str:
        return f"pod{gn[sw]['pod']}" if layer == "core" else sw

    members: dict[str, list[str]] = {}
    for o in ocs_names:
        for sw in topology.port_owner(o):
            if sw and role_of(sw) is lower_role:
                mine = members.setdefault(node_of(sw), [])
                if sw not in mine:
                    mine.append(sw)

    def sort_key(name: str) -> tuple[int, str]:
        sw = members[name][0]
        return (int(g.nodes[sw]["pod"]) if layer == "core" else int(g.nodes[sw].get("index", 0)), name)

    nodes = sorted(members, key=sort_key)
    nidx = {n: i for i, n in enumerate(nodes)}
    lower_ports = []
    upper_ports = []
    rates = []
    none: tuple[int, ...] = ()
    for o in ocs_names:
        owner = topology.port_owner(o)
        got: dict[int, list[int]] = {}
        up: list[int] = []
        for port, sw in enumerate(owner):
            if not sw:
                continue
            role = role_of(sw)
            if role is lower_role:
                got.setdefault(nidx[node_of(sw)], []).append(port)
            elif upper_role is not None and role is upper_role:
                up.append(port)
            rates.append(g.adj[sw][o]["link_bps"])
        per = [none] * len(nodes)  # most nodes have no port on a given OCS: one shared empty tuple
        for i, ports in got.items():
            per[i] = tuple(ports)
        lower_ports.append(tuple(per))
        upper_ports.append(tuple(up))
    eps = np.zeros(len(nodes))
    for name, sws in members.items():
        total = 0.0
        for sw in sws:
            for nb, d in g.adj[sw].items():
                if d.get("medium") in _ELECTRIC and role_of(nb) is eps_role:
                    total += d["capacity_bps"]
        eps[nidx[name]] = total
    nic = topology.nic_bps or 1.0
    gpu_groups = topology.gpu_groups(level)
    counts = np.bincount(gpu_groups, minlength=len(groups)) if gpu_groups.size else np.zeros(len(groups))
    if layer == "core":
        gid = [groups[str(int(n[3:]))] if str(int(n[3:])) in groups else -1 for n in nodes]
    elif layer == "nic":
        gid = [groups.get(str(g.nodes[n]["server"]), -1) for n in nodes]
    else:
        gid = [groups.get(n, -1) for n in nodes]
    host = np.array([counts[i] * nic if i >= 0 else 0.0 for i in gid], dtype=np.float64)
    return Domain(name="core" if layer == "core" else f"{layer}.{pod}", layer=layer, pod=pod, nodes=tuple(nodes),
                  ocs=tuple(ocs_names), lower_ports=tuple(lower_ports), upper_ports=tuple(upper_ports),
                  circuit_bps=float(min(rates)) if rates else 0.0, eps_out_bps=eps, eps_in_bps=eps.copy(),
                  host_bps=host, group_ids=tuple(gid), ring_planes=int(g.graph.get("ring_planes", 0)))


# ------------------------------------------------------------------------------------------------
# The problem of one domain for one traffic matrix


@dataclass(frozen=True, eq=False)
class Problem:
    """Normalised data of one domain and one phase (rates in circuits, ``alpha = 1`` non-blocking).

    ``demand`` is dense ``n x n`` (zero diagonal); ``x_prev``/``z_prev`` the previous circuit counts (or None).
    """

    domain: Domain
    demand: np.ndarray
    ext_out: np.ndarray
    ext_in: np.ndarray
    eps_out: np.ndarray
    eps_in: np.ndarray
    budget: np.ndarray
    upper: int
    t0_s: float  # seconds the domain's bytes take at alpha = 1
    x_prev: np.ndarray | None = None
    z_prev: np.ndarray | None = None
    penalty: float = 0.0
    max_changed: int = -1
    min_alpha: float = 0.0

    @property
    def n(self) -> int:
        return int(self.demand.shape[0])

    @property
    def load_out(self) -> np.ndarray:
        return self.demand.sum(axis=1) + self.ext_out

    @property
    def load_in(self) -> np.ndarray:
        return self.demand.sum(axis=0) + self.ext_in

    @property
    def empty(self) -> bool:
        return not (np.any(self.demand > 0) or np.any(self.ext_out > 0) or np.any(self.ext_in > 0))

    @cached_property
    def nonzeros(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(src, dst, d)`` of the directed demands ``d = demand[src, dst] > 0`` (row-major order)."""
        src, dst = np.nonzero(self.demand > 0)
        src, dst = src.astype(np.int64), dst.astype(np.int64)
        return src, dst, np.ascontiguousarray(self.demand[src, dst], dtype=np.float64)

    @cached_property
    def pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(a, b, s, cap)`` of the node pairs ``a < b`` with demand either way (row-major order):
        ``s = max(demand[a, b], demand[b, a])`` and ``cap`` the circuits the pair can hold (its nodes'
        budgets and the ports they share on the OCSes, :meth:`Domain.pair_capacity`)."""
        src, dst, _ = self.nonzeros
        a, b = np.minimum(src, dst), np.maximum(src, dst)
        key = np.unique(a * max(self.n, 1) + b)
        a, b = key // max(self.n, 1), key % max(self.n, 1)
        s = np.maximum(self.demand[a, b], self.demand[b, a])
        cap = np.minimum(np.minimum(self.budget[a], self.budget[b]), self.domain.pair_capacity(a, b))
        return a, b, s, cap.astype(np.int64)

    def alpha_cap(self) -> float:
        """An upper bound on alpha: every node's whole capacity (ports + electrical) carries its load."""
        cap = np.inf
        for load, eps in ((self.load_out, self.eps_out), (self.load_in, self.eps_in)):
            live = load > 0
            if np.any(live):
                cap = min(cap, float(np.min((eps[live] + self.budget[live]) / load[live])))
        return cap

    def with_previous(self, x_prev: np.ndarray | None, z_prev: np.ndarray | None) -> Problem:
        out = Problem(domain=self.domain, demand=self.demand, ext_out=self.ext_out, ext_in=self.ext_in,
                      eps_out=self.eps_out, eps_in=self.eps_in, budget=self.budget, upper=self.upper,
                      t0_s=self.t0_s, x_prev=x_prev, z_prev=z_prev, penalty=self.penalty,
                      max_changed=self.max_changed, min_alpha=self.min_alpha)
        for name in ("nonzeros", "pairs"):  # views of the demand, which is shared
            if name in self.__dict__:
                out.__dict__[name] = self.__dict__[name]
        return out


_LEVEL = {"core": "pod", "agg": "tor", "nic": "server"}


def domain_level(domain: Domain) -> str:
    """The traffic aggregation level of a domain's nodes: ``pod`` (core layer), ``tor`` (aggregation layer) or
    ``server`` (NIC-level OCS: ``mixnet`` regions, ``topoopt``)."""
    return _LEVEL[domain.layer]


def domain_bytes(topology: Topology, domain: Domain, traffic: TrafficMatrix,
                 aggregated: sp.csr_matrix | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(bytes between the domain's nodes ``n x n``, bytes each node sends elsewhere, receives from elsewhere).

    ``aggregated``: ``traffic.aggregate(topology, domain_level(domain))`` when the caller already has it
    (one aggregation per level serves every domain: planning stays linear in the fabric).
    """
    m = (aggregated if aggregated is not None else traffic.aggregate(topology, domain_level(domain))).tocsr()
    gid = np.asarray(domain.group_ids, dtype=np.int64)
    n = domain.n
    if m.shape[0] == 0 or n == 0:
        z = np.zeros(n)
        return np.zeros((n, n)), z, z.copy()
    valid = gid >= 0
    inner = np.zeros((n, n))
    sel = np.where(valid)[0]
    inner[np.ix_(sel, sel)] = m[gid[sel]][:, gid[sel]].toarray()
    np.fill_diagonal(inner, 0.0)
    rows = np.asarray(m.sum(axis=1)).ravel()
    cols = np.asarray(m.sum(axis=0)).ravel()
    out_all = np.where(valid, rows[np.where(valid, gid, 0)], 0.0)
    in_all = np.where(valid, cols[np.where(valid, gid, 0)], 0.0)
    ext_out = np.maximum(out_all - inner.sum(axis=1), 0.0)
    ext_in = np.maximum(in_all - inner.sum(axis=0), 0.0)
    return inner, ext_out, ext_in


def make_problem(domain: Domain, inner_bytes: np.ndarray, ext_out_bytes: np.ndarray, ext_in_bytes: np.ndarray, *,
                 penalty: float = 0.0, max_changed: int = -1, min_alpha: float = 0.0) -> Problem:
    """Normalise a domain's bytes into a :class:`Problem` (see the module docstring)."""
    n = domain.n
    c = domain.circuit_bps
    bits = 8.0 * np.array(inner_bytes, dtype=np.float64)
    np.fill_diagonal(bits, 0.0)  # bytes inside one node never cross this layer
    eo, ei = 8.0 * np.asarray(ext_out_bytes, dtype=np.float64), 8.0 * np.asarray(ext_in_bytes, dtype=np.float64)
    out, inn = bits.sum(axis=1) + eo, bits.sum(axis=0) + ei
    host = np.where(domain.host_bps > 0, domain.host_bps, max(float(domain.host_bps.max(initial=0.0)), c, 1.0))
    t0 = float(max(np.max(out / host, initial=0.0), np.max(inn / host, initial=0.0)))
    scale = 1.0 / (t0 * c) if t0 > 0 and c > 0 else 0.0
    cc = c if c > 0 else 1.0
    return Problem(domain=domain, demand=bits * scale, ext_out=eo * scale, ext_in=ei * scale,
                   eps_out=domain.eps_out_bps / cc, eps_in=domain.eps_in_bps / cc, budget=domain.budget if n else
                   np.zeros(0, dtype=np.int64), upper=domain.upper_budget, t0_s=t0, penalty=penalty,
                   max_changed=max_changed, min_alpha=min_alpha)


def pair_index(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Upper-triangle pairs (i < j) of ``n`` nodes in row-major order."""
    i, j = np.triu_indices(n, k=1)
    return i.astype(np.int64), j.astype(np.int64)


def sym_to_pairs(x: np.ndarray, pi: np.ndarray, pj: np.ndarray) -> np.ndarray:
    return np.asarray(x[pi, pj], dtype=np.float64)


def pairs_to_sym(v: np.ndarray, pi: np.ndarray, pj: np.ndarray, n: int) -> np.ndarray:
    x = np.zeros((n, n), dtype=np.int64)
    r = np.rint(v).astype(np.int64)
    x[pi, pj] = r
    x[pj, pi] = r
    return x


# ------------------------------------------------------------------------------------------------
# The MILP as arrays


@dataclass(frozen=True, eq=False)
class Formulation:
    """``max cost @ v`` s.t. ``row_lo <= A v <= row_hi``, ``col_lo <= v <= col_hi``, ``v[integer]`` integral.

    ``cols``/``rows`` map block names to slices (see the module docstring); ``pi``/``pj`` the node pair of
    each ``x`` column, ``src``/``dst`` the directed demand of each ``f`` column.
    """

    cost: np.ndarray
    A: sp.csr_matrix
    row_lo: np.ndarray
    row_hi: np.ndarray
    col_lo: np.ndarray
    col_hi: np.ndarray
    integer: np.ndarray
    cols: dict[str, slice]
    rows: dict[str, slice]
    pi: np.ndarray
    pj: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    n: int
    meta: dict[str, float] = field(default_factory=dict)
    prev_x: np.ndarray = field(default_factory=lambda: np.zeros(0))  # previous counts (x pair order)
    prev_z: np.ndarray = field(default_factory=lambda: np.zeros(0))
    #: per-OCS columns of :func:`formulate_ocs`: ``yk``/``ye`` (OCS, x-pair position) of each ``y`` column,
    #: ``uk``/``ui`` (OCS, node) of each ``u`` column; empty for the count-level model
    split_index: dict[str, np.ndarray] = field(default_factory=dict)
    num_ocs: int = 0

    @property
    def num_cols(self) -> int:
        return int(self.cost.size)

    @property
    def num_rows(self) -> int:
        return int(self.A.shape[0])

    @property
    def nonzeros(self) -> int:
        return int(self.A.nnz)

    def col_names(self) -> list[str]:
        out = ["alpha"]
        out += [f"x_{a}_{b}" for a, b in zip(self.pi.tolist(), self.pj.tolist(), strict=True)]
        out += [f"z_{i}" for i in range(self.n)]
        out += [f"f_{a}_{b}" for a, b in zip(self.src.tolist(), self.dst.tolist(), strict=True)]
        if "dx" in self.cols:
            out += [f"dx_{a}_{b}" for a, b in zip(self.pi.tolist(), self.pj.tolist(), strict=True)]
            out += [f"dz_{i}" for i in range(self.n)]
        if "y" in self.cols:
            si = self.split_index
            out += [f"y_{k}_{self.pi[e]}_{self.pj[e]}" for k, e in zip(si["yk"].tolist(), si["ye"].tolist(), strict=True)]
            out += [f"u_{k}_{i}" for k, i in zip(si["uk"].tolist(), si["ui"].tolist(), strict=True)]
        return out

    def row_names(self) -> list[str]:
        out: list[str] = []
        for name, s in self.rows.items():
            out += [f"{name}_{r}" for r in range(s.stop - s.start)]
        return out

    def vector(self, alpha: float, x: np.ndarray, z: np.ndarray, f: np.ndarray | None = None,
               demand: np.ndarray | None = None, split: tuple[Any, np.ndarray] | None = None) -> np.ndarray:
        """A full column vector from (alpha, symmetric x, z); ``f`` defaults to the best direct flow.

        ``split``: the per-OCS counts ``(Y, U)`` (``Y`` sparse or dense ``K x n x n``, see
        :mod:`solver.ocs_split`; ``U`` ``K x n``) for the columns of :func:`formulate_ocs` (required there).
        """
        v = np.zeros(self.num_cols)
        v[self.cols["alpha"]] = alpha
        xv = sym_to_pairs(x, self.pi, self.pj)
        v[self.cols["x"]] = xv
        v[self.cols["z"]] = z
        if f is None:
            if demand is None:
                raise InvalidArgumentError("give f or the demand matrix")
            pos = _pair_pos(self.n, self.pi, self.pj, self.src, self.dst)
            f = np.minimum(alpha * demand[self.src, self.dst], xv[pos] if xv.size else 0.0)
        v[self.cols["f"]] = f
        if "dx" in self.cols:
            v[self.cols["dx"]] = np.maximum(xv - self.prev_x, 0.0)
            v[self.cols["dz"]] = np.maximum(z - self.prev_z, 0.0)
        if "y" in self.cols:
            if split is None:
                raise InvalidArgumentError("the per-OCS model needs the per-OCS split of the counts")
            Y, U = as_split(split[0]), np.asarray(split[1])
            si = self.split_index
            ye = si["ye"]
            v[self.cols["y"]] = lookup(Y, si["yk"], self.pi[ye], self.pj[ye])
            v[self.cols["u"]] = U[si["uk"], si["ui"]]
        return v

    def split_of(self, values: np.ndarray) -> tuple[sp.coo_array, np.ndarray]:
        """Per-OCS counts ``(Y, U)`` from a solution vector of :func:`formulate_ocs` (``Y`` sparse
        ``K x n x n``, :mod:`solver.ocs_split`; ``U`` dense ``K x n``)."""
        si = self.split_index
        K, n = self.num_ocs, self.n
        U = np.zeros((K, n), dtype=np.int64)
        yv = np.rint(values[self.cols["y"]]).astype(np.int64)
        uv = np.rint(values[self.cols["u"]]).astype(np.int64)
        ye = si["ye"]
        np.add.at(U, (si["uk"], si["ui"]), uv)
        return sym_split(K, n, si["yk"], self.pi[ye], self.pj[ye], yv), U


def _pair_pos(n: int, pi: np.ndarray, pj: np.ndarray, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Column offset (within the x block) of the pair of each directed demand."""
    key = np.minimum(src, dst) * n + np.maximum(src, dst)
    pk = pi * n + pj
    order = np.argsort(pk, kind="stable")
    return order[np.searchsorted(pk[order], key)]


def formulate(problem: Problem, alpha_ub: float | None = None) -> Formulation:
    """Build the MILP of ``problem`` as sparse arrays (one pass, no Python loop over pairs).

    ``alpha_ub``: a proven upper bound on alpha (:func:`solver.heuristics.node_bound`). It caps the alpha
    column and adds the ``vub`` block ``f[k] <= alpha_ub d[k] x[e(k)]`` (valid for integer ``x``: no circuit,
    no direct flow) wherever ``alpha_ub d[k] < 1``, which lifts the LP bound on dense traffic from the
    ports-only bound to near the integer optimum.
    """
    p = problem
    n = p.n
    D = p.demand
    src, dst = np.nonzero(D > 0)
    src, dst = src.astype(np.int64), dst.astype(np.int64)
    dk = D[src, dst]
    # x pairs: pairs with demand either way, plus pairs that held circuits before
    has = (D > 0) | (D.T > 0)
    if p.x_prev is not None:
        has |= p.x_prev > 0
    iu, ju = np.nonzero(np.triu(has, k=1))
    pi, pj = iu.astype(np.int64), ju.astype(np.int64)
    m, K = pi.size, src.size
    track = p.x_prev is not None and (p.penalty > 0 or p.max_changed >= 0)
    # column layout
    sizes = {"alpha": 1, "x": m, "z": n, "f": K}
    if track:
        sizes.update({"dx": m, "dz": n})
    cols: dict[str, slice] = {}
    off = 0
    for name, s in sizes.items():
        cols[name] = slice(off, off + s)
        off += s
    ncol = off
    B = p.budget.astype(np.float64)
    cap = p.alpha_cap()
    if alpha_ub is not None and np.isfinite(alpha_ub):
        cap = min(cap, float(alpha_ub))
    col_lo = np.zeros(ncol)
    col_hi = np.full(ncol, np.inf)
    col_lo[0] = p.min_alpha
    col_hi[0] = cap if np.isfinite(cap) else np.inf
    col_hi[cols["x"]] = np.minimum(np.minimum(B[pi], B[pj]), p.domain.pair_capacity(pi, pj))
    col_hi[cols["z"]] = np.minimum(B, float(p.upper)) if p.upper > 0 else 0.0
    integer = np.zeros(ncol, dtype=bool)
    integer[cols["x"]] = True
    integer[cols["z"]] = True
    cost = np.zeros(ncol)
    cost[0] = 1.0
    if track:
        cost[cols["dx"]] = -p.penalty
        cost[cols["dz"]] = -p.penalty
    pos = _pair_pos(n, pi, pj, src, dst) if K else np.zeros(0, dtype=np.int64)
    xo, zo, fo = cols["x"].start, cols["z"].start, cols["f"].start
    kk = np.arange(K, dtype=np.int64)
    nn = np.arange(n, dtype=np.int64)
    blocks: list[tuple[str, sp.coo_matrix, np.ndarray, np.ndarray]] = []

    def block(name: str, r: np.ndarray, c: np.ndarray, v: np.ndarray, nrows: int, lo: np.ndarray | float,
              hi: np.ndarray | float) -> None:
        mat = sp.coo_matrix((v, (r, c)), shape=(nrows, ncol))
        blocks.append((name, mat, np.broadcast_to(np.asarray(lo, dtype=np.float64), (nrows,)),
                       np.broadcast_to(np.asarray(hi, dtype=np.float64), (nrows,))))

    ones_k = np.ones(K)
    block("circuit", np.concatenate([kk, kk]), np.concatenate([fo + kk, xo + pos]),
          np.concatenate([ones_k, -ones_k]), K, -np.inf, 0.0)
    block("demand", np.concatenate([kk, kk]), np.concatenate([fo + kk, np.zeros(K, dtype=np.int64)]),
          np.concatenate([ones_k, -dk]), K, -np.inf, 0.0)
    if np.isfinite(cap) and K:
        M = cap * dk
        tight = np.flatnonzero(M < 1.0)
        t = tight.size
        tt = np.arange(t, dtype=np.int64)
        block("vub", np.concatenate([tt, tt]), np.concatenate([fo + tight, xo + pos[tight]]),
              np.concatenate([np.ones(t), -M[tight]]), t, -np.inf, 0.0)
    for name, ends, load, eps in (("spill_out", src, p.load_out, p.eps_out), ("spill_in", dst, p.load_in, p.eps_in)):
        block(name, np.concatenate([nn, ends, nn]), np.concatenate([np.zeros(n, dtype=np.int64), fo + kk, zo + nn]),
              np.concatenate([load, -ones_k, -np.ones(n)]), n, -np.inf, eps)
    ar = np.arange(m, dtype=np.int64)
    block("ports", np.concatenate([pi, pj, nn]), np.concatenate([xo + ar, xo + ar, zo + nn]),
          np.ones(2 * m + n), n, -np.inf, B)
    if p.upper > 0:
        block("upper", np.zeros(n, dtype=np.int64), zo + nn, np.ones(n), 1, -np.inf, float(p.upper))
    xp = sym_to_pairs(p.x_prev, pi, pj) if p.x_prev is not None else np.zeros(m)
    zp = np.asarray(p.z_prev, dtype=np.float64) if p.z_prev is not None else np.zeros(n)
    if track:
        do, dzo = cols["dx"].start, cols["dz"].start
        block("change", np.concatenate([ar, ar, m + nn, m + nn]),
              np.concatenate([do + ar, xo + ar, dzo + nn, zo + nn]),
              np.concatenate([np.ones(m), -np.ones(m), np.ones(n), -np.ones(n)]), m + n,
              np.concatenate([-xp, -zp]), np.inf)
        if p.max_changed >= 0:
            block("change_cap", np.zeros(m + n, dtype=np.int64), np.concatenate([do + ar, dzo + nn]),
                  np.ones(m + n), 1, -np.inf, float(p.max_changed))
    rows: dict[str, slice] = {}
    r0 = 0
    for name, mat, _, _ in blocks:
        rows[name] = slice(r0, r0 + mat.shape[0])
        r0 += mat.shape[0]
    A = sp.vstack([b[1] for b in blocks], format="csr") if blocks else sp.csr_matrix((0, ncol))
    A.sum_duplicates()
    row_lo = np.concatenate([b[2] for b in blocks]) if blocks else np.zeros(0)
    row_hi = np.concatenate([b[3] for b in blocks]) if blocks else np.zeros(0)
    return Formulation(cost=cost, A=A, row_lo=row_lo, row_hi=row_hi, col_lo=col_lo, col_hi=col_hi, integer=integer,
                       cols=cols, rows=rows, pi=pi, pj=pj, src=src, dst=dst, n=n, meta={"alpha_cap": cap},
                       prev_x=xp, prev_z=zp)


def check_vector(form: Formulation, v: np.ndarray, tol: float = 1e-6) -> list[str]:
    """Violated rows/bounds of a column vector (block names), for tests and warm-start sanity."""
    bad: list[str] = []
    ax = form.A @ v
    scale = 1.0 + np.abs(ax)
    for name, s in form.rows.items():
        lo_bad = ax[s] < form.row_lo[s] - tol * scale[s]
        hi_bad = ax[s] > form.row_hi[s] + tol * scale[s]
        if np.any(lo_bad | hi_bad):
            bad.append(name)
    if np.any(v < form.col_lo - tol) or np.any(v > form.col_hi + tol):
        bad.append("bounds")
    ints = v[form.integer]
    if np.any(np.abs(ints - np.rint(ints)) > tol):
        bad.append("integrality")
    return bad


def iter_blocks(form: Formulation) -> Iterable[tuple[str, slice]]:
    return form.rows.items()


def ocs_columns(problem: Problem) -> int:
    """Integer per-OCS columns (``y`` and ``u``) :func:`formulate_ocs` would build for ``problem``, counted
    without building it (the planner bounds the per-OCS MILP by this number)."""
    D = problem.demand
    has = (D > 0) | (D.T > 0)
    if problem.x_prev is not None:
        has |= problem.x_prev > 0
    pi, pj = np.nonzero(np.triu(has, k=1))
    cap = problem.domain.port_matrix
    ny = shared_ocs(cap, pi, pj)[0].size
    nu = 0
    if problem.upper > 0:
        cap_up = np.array([len(u) for u in problem.domain.upper_ports], dtype=np.int64)
        nu = int(((cap > 0) & (cap_up[:, None] > 0)).sum())
    return int(ny + nu)


def formulate_ocs(problem: Problem, alpha_ub: float | None = None) -> Formulation:
    """The MILP of :func:`formulate` over what can be built: circuits split over the OCSes.

    Adds integer columns ``y[k, e]`` (circuits of pair ``e`` on OCS ``k``, for OCSes where both ends have
    ports) and ``u[k, i]`` (upper circuits of node ``i`` on OCS ``k``) with the rows

    ==============  ============================================  ===========
    ``split``       ``x[e] - sum_k y[k, e] = 0``                  pair e
    ``split_z``     ``z[i] - sum_k u[k, i] = 0``                  node i
    ``ocs_ports``   ``sum_{e ni i} y[k, e] + u[k, i] <= P[k, i]``  OCS k, node i with P[k, i] > 0
    ``ocs_upper``   ``sum_i u[k, i] <= U[k]``                     OCS k
    ==============  ============================================  ===========

    so every solution is realisable port by port (within one OCS a node's ports are interchangeable).
    ``K x pairs`` more columns: used only when the counts of :func:`formulate` cannot be realised.
    """
    base = formulate(problem, alpha_ub)
    dom = problem.domain
    n, K = problem.n, len(dom.ocs)
    cap = dom.port_matrix
    cap_up = np.array([len(u) for u in dom.upper_ports], dtype=np.int64)
    pi, pj = base.pi, base.pj
    m = pi.size
    yk, ye = shared_ocs(cap, pi, pj)
    if problem.upper > 0:
        uk, ui = np.nonzero((cap > 0) & (cap_up[:, None] > 0))
    else:
        uk = ui = np.zeros(0, dtype=np.int64)
    ny, nu = yk.size, uk.size
    n0 = base.num_cols
    cols = dict(base.cols)
    cols["y"] = slice(n0, n0 + ny)
    cols["u"] = slice(n0 + ny, n0 + ny + nu)
    ncol = n0 + ny + nu
    y_hi = np.minimum(cap[yk, pi[ye]], cap[yk, pj[ye]]).astype(np.float64)
    u_hi = np.minimum(cap[uk, ui], cap_up[uk]).astype(np.float64)
    col_lo = np.concatenate([base.col_lo, np.zeros(ny + nu)])
    col_hi = np.concatenate([base.col_hi, y_hi, u_hi])
    integer = np.concatenate([base.integer, np.ones(ny + nu, dtype=bool)])
    cost = np.concatenate([base.cost, np.zeros(ny + nu)])
    xo, zo, yo, uo = base.cols["x"].start, base.cols["z"].start, n0, n0 + ny
    ar_m, ar_n, ar_y, ar_u = (np.arange(v, dtype=np.int64) for v in (m, n, ny, nu))
    live = cap.reshape(-1) > 0  # one ocs_ports row per (OCS, node) with ports there, in (k, i) order
    prow = np.cumsum(live) - 1
    n_live = int(live.sum())
    r_split, r_split_z, r_ports = 0, m, m + n
    r_up = r_ports + n_live
    nrow = r_up + K
    rows = [r_split + ar_m, r_split + ye, r_split_z + ar_n, r_split_z + ui, r_ports + prow[yk * n + pi[ye]],
            r_ports + prow[yk * n + pj[ye]], r_ports + prow[uk * n + ui], r_up + uk]
    cidx = [xo + ar_m, yo + ar_y, zo + ar_n, uo + ar_u, yo + ar_y, yo + ar_y, uo + ar_u, uo + ar_u]
    vals = [np.ones(m), -np.ones(ny), np.ones(n), -np.ones(nu), np.ones(ny), np.ones(ny), np.ones(nu), np.ones(nu)]
    B = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cidx))), shape=(nrow, ncol))
    A = sp.vstack([sp.hstack([base.A, sp.csr_matrix((base.num_rows, ny + nu))]), B], format="csr")
    row_lo = np.concatenate([base.row_lo, np.zeros(m + n), np.full(n_live + K, -np.inf)])
    row_hi = np.concatenate([base.row_hi, np.zeros(m + n), cap.reshape(-1)[live].astype(np.float64),
                             cap_up.astype(np.float64)])
    rows_map = dict(base.rows)
    r0 = base.num_rows
    for name, size in (("split", m), ("split_z", n), ("ocs_ports", n_live), ("ocs_upper", K)):
        rows_map[name] = slice(r0, r0 + size)
        r0 += size
    return Formulation(cost=cost, A=A, row_lo=row_lo, row_hi=row_hi, col_lo=col_lo, col_hi=col_hi, integer=integer,
                       cols=cols, rows=rows_map, pi=pi, pj=pj, src=base.src, dst=base.dst, n=n, meta=dict(base.meta),
                       prev_x=base.prev_x, prev_z=base.prev_z,
                       split_index={"yk": yk.astype(np.int64), "ye": ye.astype(np.int64), "uk": uk.astype(np.int64),
                                    "ui": ui.astype(np.int64)}, num_ocs=K)
