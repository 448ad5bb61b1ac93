"""Routes: which arcs each flow crosses, and in what share, for one state of the circuits.

The simulator's arcs (:class:`Fabric`) are the directed links of the always-on logical graph
(``logical_topology(topology)``: every non-fibre edge, two arcs each) followed by one arc per direction for
every switch pair that some circuit assignment of the run joins. A circuit bundle keeps its own arcs
even when an electrical link joins the same two switches (:func:`~rfabric.circuits.logical_topology` would merge them;
capacities add up the same), so circuits can go dark on their own and bytes split by medium. A
:class:`FabricState` is the fabric with one set of live circuits: circuit arcs carry the live circuits'
capacity (``CircuitAssignment.pair_capacity``), dark ones zero.

Routing model (documented choices):

* GPUs are endpoints only, never transit nodes. Two GPUs behind the same NVLink switch talk over
  NVLink (``gpu -> nvs -> gpu``). Otherwise a flow goes ``gpu -> nic -> switch ... switch -> nic -> gpu``;
  the switch part is chosen on the switch-level graph. On fabrics whose NICs are ports of a server node
  (``host{s}``, role HOST: ``mixnet``, ``topoopt``) the host is a routing node like a switch: a flow goes
  ``gpu -> nic -> host -> ... -> host -> nic -> gpu``, and a shortest path may cross other hosts (host
  forwarding: a server relays between its NICs over PCIe/NVLink, as TopoOpt's hosts do).
* Equal-cost multipath per hop, weighted by capacity: at every switch the next hops are the neighbours
  one hop closer to the destination switch (an edge of ``k`` parallel links is ``k`` equal-cost ports).
  The routing model (``ecmp`` argument of :meth:`FabricState.route`, ``sim.routing`` in a run config):

  - ``split``: every flow spread fluidly over the next hops in proportion to arc capacity, walking the
    shortest-path DAG arc by arc (exact; its rows grow with the number of equal-cost arcs, so it is
    practical on small fabrics).
  - ``spray``: the same routing (packet spraying over all equal-cost paths, as in production AI fabrics:
    e.g. NVIDIA Spectrum-X adaptive routing, Ultra Ethernet packet spraying) computed on *tier
    aggregates* when the always-on graph is a Clos that allows it: every ToR's uplinks, every ToR's
    downlinks, every pod's aggregation->core uplinks and every pod's core->aggregation downlinks become
    one virtual arc each (capacity = the sum of its members). Under spraying every flow crossing a
    member of such a group crosses all of them in proportion to capacity (checked at build time:
    complete ToR/aggregation bipartite graphs with proportional capacities, aggregation uplinks
    proportional to their downlinks, every core reaching every pod in the same proportion), so the group
    loads exactly like one arc and max-min rates are unchanged (:func:`spray_groups`). A flow then has
    at most 4 switch arcs instead of thousands. Routes over live circuits, and fabrics that fail the
    check, fall back to the exact ``split`` walk. The aggregates exist only in a Fabric built with
    ``routing="spray"`` (their member arcs are then not sampled for utilisation; the aggregate is).
  - ``hash``: each GPU pair on one path, picking the next hop at every switch by a seeded hash of
    (seed, src, dst, switch) with probabilities proportional to capacity (per-flow ECMP: flows of one GPU
    pair share one path, like one connection).
  - ``adaptive``: each GPU pair on one path, the least-loaded one when it is placed: pairs are placed in
    the order given (the engine routes each distinct pair once, in the order of its first flow), and a
    pair takes the shortest path whose most loaded arc (pairs already placed on it, per unit capacity,
    counting this pair) is least loaded, ties broken by the seeded hash. Load counts routed pairs, not
    bytes: the route is fixed when the flow set is routed (per fabric state), a flowlet-free reading of
    "least-loaded path per flow at its start" (CONGA/LetFlow-style load balancers react to load; this
    model places each connection once).
* Circuits and the always-on path (WCMP). When circuits give a pair of switches a *shorter* path than
  the always-on (electrical) graph, a flow is split between two route classes: A, the shortest paths of
  the logical graph (through circuits) and B, the shortest paths of the always-on graph. The share of
  class A is ``C_A / (C_A + C_B)`` where ``C`` is the bottleneck throughput of the class's split routing
  (``min`` over its arcs of capacity / share of the flow crossing it). This is the simulator's reading of
  the solver's hybrid-direct model: traffic that does not fit on the direct circuits spills to the
  electrical path, in proportion to capacity. With ``hash`` and ``adaptive`` the class is drawn by the
  same seeded hash.
  When the circuit path is not shorter, circuits are just more equal-cost ports (e.g. ``tree``).
* Per flow the route reports its share carried by circuits (bytes by medium), its mean path latency
  (share-weighted sum of arc latencies) and whether it is blocked (no path in this state; it waits for
  the next circuit change).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from rfabric.circuits import CircuitAssignment
from rfabric.errors import SimulationError
from rfabric.topology import FORWARDING_ROLES, MEDIUM_CODES, Medium, NodeRole, Topology

try:  # numba is a declared dependency; keep routing importable without it
    from numba import njit as _njit
except ImportError:  # pragma: no cover
    def _njit(*args: Any, **kwargs: Any) -> Callable[..., Any]:  # type: ignore[no-redef]
        def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
            return fn
        return deco

ROUTINGS = ("hash", "split", "spray", "adaptive")
"""The routing models of :meth:`FabricState.route` (module docstring)."""

_ROLES = list(NodeRole)
_ROLE_CODE = {r: i for i, r in enumerate(_ROLES)}
_SWITCH_CODES = np.array([_ROLE_CODE[r] for r in FORWARDING_ROLES])  # routing nodes (hosts included)
_FAR = np.int32(1 << 20)
_U64 = np.uint64


# ------------------------------------------------------------------------------------------------
# seeded hashing (splitmix64), vectorised


def _mix(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = x.astype(_U64) + _U64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> _U64(27))) * _U64(0x94D049BB133111EB)
        return z ^ (z >> _U64(31))


def pair_keys(seed: int, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """A 64-bit hash key per (src, dst) GPU pair, fixed by ``seed``."""
    s = _mix(np.array([seed & 0xFFFFFFFFFFFFFFFF], dtype=_U64))
    with np.errstate(over="ignore"):
        return _mix(s ^ _mix((src.astype(_U64) << _U64(32)) | dst.astype(_U64)))


def _uniform(key: np.ndarray, salt: np.ndarray | int) -> np.ndarray:
    """A uniform number in [0, 1) per key, different for every salt (e.g. a switch id)."""
    with np.errstate(over="ignore"):
        h = _mix(key ^ _mix(np.asarray(salt, dtype=np.int64).astype(_U64) + _U64(0x5851F42D4C957F2D)))
    return (h >> _U64(11)).astype(np.float64) * (2.0**-53)


# ------------------------------------------------------------------------------------------------


# ------------------------------------------------------------------------------------------------
# spray: tier aggregates of a Clos


@dataclass(frozen=True, eq=False)
class SprayGroups:
    """Tier aggregates of an always-on Clos (see :func:`spray_groups`).

    ``members[i]`` are the arcs of aggregate ``i``; ``up``/``down`` give, per switch index, the aggregate
    of that ToR's uplinks / downlinks (-1: none); ``pod_up``/``pod_down`` the aggregate of a pod's
    aggregation->core / core->aggregation arcs (-1: none); ``sw_pod`` the pod of each switch.
    """

    members: tuple[np.ndarray, ...]
    up: np.ndarray
    down: np.ndarray
    pod_up: np.ndarray
    pod_down: np.ndarray
    sw_pod: np.ndarray
    #: per switch index: a host's ToR (-1: not a host) and its host->ToR / ToR->host arcs (real arcs)
    host_tor: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    host_up: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    host_down: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


def _same_rows(m: np.ndarray, rtol: float = 1e-12) -> bool:
    """True if every row of ``m`` (positive entries) is proportional to the first."""
    if m.size == 0:
        return True
    if np.any(m <= 0):
        return False
    r = m / m.sum(axis=1, keepdims=True)
    return bool(np.all(np.abs(r - r[0]) <= rtol * r[0]))


def spray_groups(topology: Topology, node_names: tuple[str, ...], node_role: np.ndarray, arc_src: np.ndarray,
                 arc_dst: np.ndarray, cap: np.ndarray, allowed: np.ndarray, sw_nodes: np.ndarray,
                 sw_of_node: np.ndarray, nic_switch: np.ndarray) -> SprayGroups | None:
    """The tier aggregates that make spraying exact on this always-on graph, or None if it is no such Clos.

    Exactness argument (fluid spraying = capacity-proportional split at every hop): a flow from ToR ``s``
    enters aggregation switch ``a`` of its pod with share ``C[s,a] / C[s,*]``. If the pod's ToR x agg
    capacity matrix ``C`` is complete and of rank one, that share is the same fraction ``r_a`` for every
    ToR, and the arcs ``a -> d`` into a destination ToR carry ``r_a`` = their capacity share of ``d``'s
    downlinks: every ToR's uplinks (and downlinks) load in proportion to capacity. If moreover each
    aggregation switch's core uplinks are the same fraction ``r_a`` of its pod's, a core ``c`` receives
    ``U_p[c] / U_p`` of every flow leaving pod ``p``; if every core reaches every pod and its capacity to
    each pod is the same share of that pod's core capacity (pod x core matrix of rank one, as with the
    Clos's core blocks), the flow leaves core ``c`` into pod ``q`` in proportion to ``c``'s links there and
    reaches aggregation ``b`` with ``r_b`` again. So every member of an aggregate carries the same flows
    with shares proportional to its capacity, and max-min fair rates on the aggregate equal those on the
    members. Checked numerically here (relative 1e-12); any other shape (ToR-ToR links, aggregation
    switches without ToR links, uneven cores) returns None and spraying falls back to the exact walk.

    ``allowed`` marks the always-on switch arcs; ``nic_switch`` is the switch index each GPU's NIC is on.
    Hosts (``mixnet``: a server node between its NICs and its ToR) are accepted when each has exactly one
    always-on link, to a ToR: that link is a single arc each way, so a flow crosses it whole and the
    aggregates above the ToR stay exact (``host_tor`` / ``host_up`` / ``host_down``).
    """
    tor_c, agg_c, core_c = (_ROLE_CODE[r] for r in (NodeRole.TOR, NodeRole.AGG, NodeRole.CORE))
    host_c = _ROLE_CODE[NodeRole.HOST]
    n_sw = sw_nodes.size
    role = node_role[sw_nodes].astype(np.int64)
    g = topology.graph
    sw_pod = np.fromiter((int(g.nodes[node_names[v]].get("pod", -1)) for v in sw_nodes), dtype=np.int64, count=n_sw)
    used_tor = nic_switch[nic_switch >= 0]
    if used_tor.size and np.any((role[used_tor] != tor_c) & (role[used_tor] != host_c)):
        return None
    ss, sd = sw_of_node[arc_src], sw_of_node[arc_dst]
    arcs = np.flatnonzero((ss >= 0) & (sd >= 0) & allowed & (cap > 0))
    host_tor = np.full(n_sw, -1, dtype=np.int64)
    host_up = np.full(n_sw, -1, dtype=np.int64)
    host_dn = np.full(n_sw, -1, dtype=np.int64)
    is_host = role[ss[arcs]] == host_c
    into_host = role[sd[arcs]] == host_c
    if np.any(is_host | into_host):
        ht, th = arcs[is_host], arcs[into_host]
        hosts = np.flatnonzero(role == host_c)
        if (np.any(role[sd[ht]] != tor_c) or np.any(role[ss[th]] != tor_c)
                or np.unique(ss[ht]).size != ht.size or np.unique(sd[th]).size != th.size
                or ht.size != hosts.size or th.size != hosts.size):
            return None  # a host with no ToR, two ToRs, or a host-host link: not a tree below the ToRs
        host_tor[ss[ht]] = sd[ht]
        host_up[ss[ht]] = ht
        host_dn[sd[th]] = th
        arcs = arcs[~(is_host | into_host)]
    rs, rd = role[ss[arcs]], role[sd[arcs]]
    kinds = {"ta": (rs == tor_c) & (rd == agg_c), "at": (rs == agg_c) & (rd == tor_c),
             "ac": (rs == agg_c) & (rd == core_c), "ca": (rs == core_c) & (rd == agg_c)}
    if int(sum(int(m.sum()) for m in kinds.values())) != arcs.size:
        return None
    ta = arcs[kinds["ta"]]
    if np.any(sw_pod[ss[ta]] != sw_pod[sd[ta]]):
        return None
    tors = np.flatnonzero(role == tor_c)
    aggs = np.flatnonzero(role == agg_c)
    cores = np.flatnonzero(role == core_c)
    t_i = np.full(n_sw, -1, dtype=np.int64)
    t_i[tors] = np.arange(tors.size)
    a_i = np.full(n_sw, -1, dtype=np.int64)
    a_i[aggs] = np.arange(aggs.size)
    c_i = np.full(n_sw, -1, dtype=np.int64)
    c_i[cores] = np.arange(cores.size)
    C = np.zeros((tors.size, aggs.size))
    np.add.at(C, (t_i[ss[ta]], a_i[sd[ta]]), cap[ta])
    ac = arcs[kinds["ac"]]
    U = np.zeros((aggs.size, cores.size))
    np.add.at(U, (a_i[ss[ac]], c_i[sd[ac]]), cap[ac])
    pods = np.unique(sw_pod[tors])
    share: dict[int, np.ndarray] = {}
    for p in pods.tolist():
        tp = t_i[tors[sw_pod[tors] == p]]
        ap = a_i[aggs[sw_pod[aggs] == p]]
        if ap.size == 0:
            if tors.size > 1:
                return None  # ToRs without aggregation switches while other ToRs exist
            continue
        block = C[np.ix_(tp, ap)]
        if not _same_rows(block):
            return None
        share[p] = ap
        if cores.size:
            up = U[ap].sum(axis=1)
            r = block[0] / block[0].sum()
            if np.any(up <= 0) or np.any(np.abs(up / up.sum() - r) > 1e-12 * r):
                return None
    if cores.size:
        pod_core = np.stack([U[ap].sum(axis=0) for ap in share.values()]) if share else np.zeros((0, 0))
        if not _same_rows(pod_core):
            return None
    members: list[np.ndarray] = []
    up_v = np.full(n_sw, -1, dtype=np.int64)
    dn_v = np.full(n_sw, -1, dtype=np.int64)
    n_pods = int(pods.max()) + 1 if pods.size else 0
    pu_v = np.full(max(n_pods, 0), -1, dtype=np.int64)
    pd_v = np.full(max(n_pods, 0), -1, dtype=np.int64)

    def add(sel: np.ndarray, key: np.ndarray, out: np.ndarray) -> None:
        if key.size == 0:
            return
        order = np.argsort(key, kind="stable")
        sel, key = sel[order], key[order]
        bounds = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        for b0, b1 in zip(bounds.tolist(), [*bounds[1:].tolist(), key.size], strict=True):
            out[key[b0]] = len(members)
            members.append(sel[b0:b1])

    at = arcs[kinds["at"]]
    add(ta, ss[ta], up_v)
    add(at, sd[at], dn_v)
    ca = arcs[kinds["ca"]]
    if cores.size and ac.size:
        add(ac, sw_pod[ss[ac]], pu_v)
        add(ca, sw_pod[sd[ca]], pd_v)
    return SprayGroups(members=tuple(members), up=up_v, down=dn_v, pod_up=pu_v, pod_down=pd_v, sw_pod=sw_pod,
                       host_tor=host_tor, host_up=host_up, host_down=host_dn)


@_njit(cache=True)
def _bfs_rows(indptr: np.ndarray, nbr: np.ndarray, sources: np.ndarray, n: int, far: int) -> np.ndarray:
    """Hop distances (len(sources) x n, int32; ``far`` if unreachable) by breadth-first search from each source.

    Bit-parallel (multi-source BFS, Then et al., "The More the Merrier: Efficient Multi-Source Graph
    Traversal", PVLDB 8(4), 2014): 64 sources at a time share one sweep over the arcs per level, each
    source a bit of a 64-bit word per node, so the arcs are read ``levels x sources / 64`` times instead of
    ``sources`` times. Distances are those of one BFS per source (exact).
    """
    out = np.full((sources.size, n), far, dtype=np.int32)
    seen = np.zeros(n, dtype=np.uint64)
    front = np.zeros(n, dtype=np.uint64)
    nxt = np.zeros(n, dtype=np.uint64)
    one = np.uint64(1)
    zero = np.uint64(0)
    for b0 in range(0, sources.size, 64):
        nb = min(64, sources.size - b0)
        seen[:] = zero
        front[:] = zero
        for j in range(nb):
            t = sources[b0 + j]
            front[t] |= one << np.uint64(j)
            out[b0 + j, t] = 0
        for v in range(n):
            seen[v] = front[v]
        level = 0
        active = True
        while active:
            level += 1
            nxt[:] = zero
            for u in range(n):
                f = front[u]
                if f != zero:
                    for p in range(indptr[u], indptr[u + 1]):
                        nxt[nbr[p]] |= f
            active = False
            for v in range(n):
                m = nxt[v] & ~seen[v]
                front[v] = m
                if m != zero:
                    active = True
                    seen[v] |= m
                    for j in range(nb):
                        if (m >> np.uint64(j)) & one:
                            out[b0 + j, v] = level
    return out


@_njit(cache=True)
def _split_walk(indptr: np.ndarray, out_arc: np.ndarray, out_v: np.ndarray, allowed: np.ndarray, cap: np.ndarray,
                circuit: np.ndarray, dist: np.ndarray, s: np.ndarray, d: np.ndarray, w: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """The capacity-proportional walk of :meth:`FabricState._walk`, one request at a time (compiled).

    Request ``i`` starts at switch ``s[i]`` with weight ``w[i]``; at every hop each (switch, crossed a
    circuit) front entry splits over its next hops on the shortest-path DAG to ``d[i]`` in proportion to
    capacity, and entries reaching the same (switch, flag) merge. Every sum is taken in the order the
    vectorised walk takes it (next hops in CSR order, front entries sorted by (switch, flag)), so the
    shares are bit-identical to it; rows come request by request instead of hop by hop. Returns (request,
    arc, share) rows, each request's share that crossed a circuit and a status: 0 ok, 1 a front entry has
    no next hop (inconsistent distances), 2 no end within ``n_sw + 1`` hops.
    """
    n_sw = indptr.size - 1
    n = s.size
    m_arcs = indptr[n_sw]
    size = max(16, 4 * n)
    rr = np.empty(size, dtype=np.int64)
    ra = np.empty(size, dtype=np.int64)
    rw = np.empty(size)
    nr = 0
    optical = np.zeros(n)
    fn = np.empty(2 * n_sw, dtype=np.int64)  # front: switch, flag, weight
    ff = np.empty(2 * n_sw, dtype=np.bool_)
    fw = np.empty(2 * n_sw)
    c_key = np.empty(2 * m_arcs + 1, dtype=np.int64)
    c_w = np.empty(2 * m_arcs + 1)
    acc = np.zeros(2 * n_sw)
    seen = np.full(2 * n_sw, -1, dtype=np.int64)
    keys = np.empty(2 * n_sw, dtype=np.int64)
    for i in range(n):
        dst = d[i]
        fn[0] = s[i]
        ff[0] = False
        fw[0] = w[i]
        nf = 1
        done = False
        for step in range(n_sw + 1):
            arrived = 0.0
            m = 0
            for j in range(nf):
                if fn[j] == dst:
                    if ff[j]:
                        arrived += fw[j]
                else:
                    fn[m] = fn[j]
                    ff[m] = ff[j]
                    fw[m] = fw[j]
                    m += 1
            optical[i] += arrived
            nf = m
            if nf == 0:
                done = True
                break
            nc = 0
            for j in range(nf):
                u = fn[j]
                du = dist[u, dst]
                total = 0.0
                c0 = nc
                for k in range(indptr[u], indptr[u + 1]):
                    a = out_arc[k]
                    if allowed[a] and dist[out_v[k], dst] == du - 1:
                        total += cap[a]
                        nc += 1
                if nc == c0 or total <= 0:
                    return rr[:nr], ra[:nr], rw[:nr], optical, 1
                if nr + (nc - c0) > rr.size:
                    grow = max(2 * rr.size, nr + (nc - c0))
                    rr2 = np.empty(grow, dtype=np.int64)
                    ra2 = np.empty(grow, dtype=np.int64)
                    rw2 = np.empty(grow)
                    rr2[:nr] = rr[:nr]
                    ra2[:nr] = ra[:nr]
                    rw2[:nr] = rw[:nr]
                    rr, ra, rw = rr2, ra2, rw2
                c = c0
                for k in range(indptr[u], indptr[u + 1]):
                    a = out_arc[k]
                    v = out_v[k]
                    if allowed[a] and dist[v, dst] == du - 1:
                        share = fw[j] * cap[a] / total
                        rr[nr] = i
                        ra[nr] = a
                        rw[nr] = share
                        nr += 1
                        c_key[c] = v * 2 + (1 if (ff[j] or circuit[a]) else 0)
                        c_w[c] = share
                        c += 1
            # merge entries that reached the same (switch, flag), summing in candidate order
            nk = 0
            stamp = i * (n_sw + 2) + step
            for c in range(nc):
                key = c_key[c]
                if seen[key] != stamp:
                    seen[key] = stamp
                    acc[key] = 0.0
                    keys[nk] = key
                    nk += 1
                acc[key] += c_w[c]
            ks = np.sort(keys[:nk])
            for j in range(nk):
                key = ks[j]
                fn[j] = key >> 1
                ff[j] = (key & 1) == 1
                fw[j] = acc[key]
            nf = nk
        if not done:
            return rr[:nr], ra[:nr], rw[:nr], optical, 2
    return rr[:nr], ra[:nr], rw[:nr], optical, 0


# ------------------------------------------------------------------------------------------------
# adaptive: least-loaded path per pair, compiled


@_njit(cache=True)
def _adaptive_paths(indptr: np.ndarray, out_arc: np.ndarray, out_v: np.ndarray, allowed: np.ndarray,
                    cap: np.ndarray, circuit: np.ndarray, dist: np.ndarray, s: np.ndarray, d: np.ndarray,
                    key: np.ndarray, load: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Place requests ``s[i] -> d[i]`` in order on the least-loaded shortest path (see module docstring).

    ``load`` (pairs per unit capacity, per arc) is updated in place. Returns (request, arc) rows and a
    per-request flag: the path crosses a circuit.
    """
    n_sw = indptr.size - 1
    n = s.size
    rows_r = np.empty(n * (n_sw + 1), dtype=np.int64)
    rows_a = np.empty(n * (n_sw + 1), dtype=np.int64)
    opt = np.zeros(n, dtype=np.bool_)
    stamp = np.full(n_sw, -1, dtype=np.int64)
    best = np.zeros(n_sw)
    order = np.empty(n_sw, dtype=np.int64)
    nr = 0
    for i in range(n):
        src, dst = s[i], d[i]
        # DAG nodes reachable from src, in BFS order (non-increasing distance to dst)
        order[0] = src
        stamp[src] = i
        head, tail = 0, 1
        while head < tail:
            u = order[head]
            head += 1
            du = dist[u, dst]
            for k in range(indptr[u], indptr[u + 1]):
                a = out_arc[k]
                v = out_v[k]
                if allowed[a] and dist[v, dst] == du - 1 and stamp[v] != i:
                    stamp[v] = i
                    order[tail] = v
                    tail += 1
        for j in range(tail - 1, -1, -1):
            u = order[j]
            if u == dst:
                best[u] = 0.0
                continue
            du = dist[u, dst]
            b = np.inf
            for k in range(indptr[u], indptr[u + 1]):
                a = out_arc[k]
                v = out_v[k]
                if allowed[a] and dist[v, dst] == du - 1:
                    c = max((load[a] + 1.0) / cap[a], best[v])
                    if c < b:
                        b = c
            best[u] = b
        u = src
        h = key[i]
        while u != dst:
            du = dist[u, dst]
            b = best[u]
            tied = 0
            for k in range(indptr[u], indptr[u + 1]):
                a = out_arc[k]
                v = out_v[k]
                if allowed[a] and dist[v, dst] == du - 1 and max((load[a] + 1.0) / cap[a], best[v]) <= b * (1 + 1e-12):
                    tied += 1
            h = (h ^ (h >> np.uint64(31))) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(u)
            pick = int((h >> np.uint64(33)) % np.uint64(tied))
            chosen = -1
            nxt = -1
            for k in range(indptr[u], indptr[u + 1]):
                a = out_arc[k]
                v = out_v[k]
                if allowed[a] and dist[v, dst] == du - 1 and max((load[a] + 1.0) / cap[a], best[v]) <= b * (1 + 1e-12):
                    if pick == 0:
                        chosen = a
                        nxt = v
                        break
                    pick -= 1
            load[chosen] += 1.0
            if circuit[chosen]:
                opt[i] = True
            rows_r[nr] = i
            rows_a[nr] = chosen
            nr += 1
            u = nxt
    return rows_r[:nr], rows_a[:nr], opt


@dataclass(frozen=True, eq=False)
class Routes:
    """Routes of a batch of flows in one fabric state.

    ``incidence`` (flows x arcs, CSR): share of the flow crossing each arc (1 on a single path).
    """

    incidence: sp.csr_matrix
    latency_s: np.ndarray  # share-weighted path latency per flow
    optical: np.ndarray  # share of the flow carried by at least one circuit
    nvlink: np.ndarray  # bool: stays inside the server
    blocked: np.ndarray  # bool: no path in this state


@dataclass(eq=False)
class Fabric:
    """A physical topology compiled for the simulator: a fixed arc table for every circuit state."""

    topology: Topology
    node_names: tuple[str, ...]
    arc_src: np.ndarray
    arc_dst: np.ndarray
    base_capacity_bps: np.ndarray  # circuit arcs 0
    base_latency_s: np.ndarray
    arc_circuit: np.ndarray  # bool
    arc_nvlink: np.ndarray  # bool
    circuit_pair: dict[tuple[str, str], int]  # sorted switch pair -> arc id of a->b (b->a is +1)
    sw_of_node: np.ndarray  # switch index or -1
    sw_nodes: np.ndarray  # node id of each switch
    # per GPU
    up_nic: np.ndarray  # arc gpu->nic (-1: none)
    up_sw: np.ndarray  # arc nic->switch
    dn_sw: np.ndarray  # arc switch->nic
    dn_nic: np.ndarray  # arc nic->gpu
    tor: np.ndarray  # switch index of the GPU's NIC switch (-1: none)
    nvs: np.ndarray  # node id of the GPU's NVLink switch (-1: none)
    to_nvs: np.ndarray  # arc gpu->nvs
    from_nvs: np.ndarray  # arc nvs->gpu
    group: np.ndarray  # utilisation group of each arc (-1: not sampled)
    group_names: tuple[str, ...]
    dist_b: np.ndarray  # switch x switch hop distance on the always-on graph
    arc_virtual: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))  # spray aggregates
    spray: SprayGroups | None = None  # tier aggregates (built with routing="spray" on a Clos)
    member_group: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # arc -> aggregate or -1
    member_frac: np.ndarray = field(default_factory=lambda: np.zeros(0))  # member capacity / aggregate capacity
    group_size: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # per arc: members (aggregates)
    group_base: int = 0  # arc id of the first aggregate
    _states: dict[tuple, FabricState] = field(default_factory=dict)

    @property
    def num_arcs(self) -> int:
        return int(self.arc_src.size)

    @staticmethod
    def build(topology: Topology, assignments: Iterable[CircuitAssignment | None] = (), *,
              routing: str = "split") -> Fabric:
        """Compile ``topology`` with arcs for every circuit pair of ``assignments``.

        ``routing="spray"`` also appends the tier aggregates of :func:`spray_groups` (one virtual arc each,
        after the circuit arcs) when the always-on graph allows them; any routing model can be used on any
        Fabric (``spray`` without aggregates walks the DAG exactly, like ``split``).
        """
        if routing not in ROUTINGS:
            raise SimulationError(f"unknown routing model '{routing}' (known: {', '.join(ROUTINGS)})")
        lt = topology.compile(always_on=True)
        names = lt.node_names
        idx = {n: i for i, n in enumerate(names)}
        pairs: set[tuple[str, str]] = set()
        for asg in assignments:
            if asg is not None and len(asg):
                pairs.update(asg.pair_counts(topology))
        pair_list = sorted(pairs)
        for a, b in pair_list:
            if a not in idx or b not in idx:
                raise SimulationError(f"circuit joins '{a}' and '{b}', which are not switches of '{topology.name}'")
        ne = lt.num_arcs
        pa = np.fromiter((idx[a] for a, _ in pair_list), dtype=np.int32, count=len(pair_list))
        pb = np.fromiter((idx[b] for _, b in pair_list), dtype=np.int32, count=len(pair_list))
        c_src = np.empty(2 * len(pair_list), dtype=np.int32)
        c_dst = np.empty_like(c_src)
        c_src[0::2], c_src[1::2] = pa, pb
        c_dst[0::2], c_dst[1::2] = pb, pa
        arc_src = np.concatenate([lt.arc_src, c_src])
        arc_dst = np.concatenate([lt.arc_dst, c_dst])
        nc = c_src.size
        cap = np.concatenate([lt.capacity_bps, np.zeros(nc)])
        lat = np.concatenate([lt.latency_s, np.zeros(nc)])
        circuit = np.zeros(ne + nc, dtype=bool)
        circuit[ne:] = True
        medium = np.concatenate([lt.medium, np.full(nc, MEDIUM_CODES[Medium.CIRCUIT], dtype=np.int8)])
        nvlink = medium == MEDIUM_CODES[Medium.NVLINK]
        circuit_pair = {p: ne + 2 * i for i, p in enumerate(pair_list)}

        role = lt.node_role.astype(np.int64)
        n_nodes = len(names)
        is_sw = np.isin(role, _SWITCH_CODES)
        sw_nodes = np.flatnonzero(is_sw).astype(np.int32)
        sw_of_node = np.full(n_nodes, -1, dtype=np.int32)
        sw_of_node[sw_nodes] = np.arange(sw_nodes.size, dtype=np.int32)

        ng = lt.gpu_node.size
        gpu_of_node = np.full(n_nodes, -1, dtype=np.int64)
        gpu_of_node[lt.gpu_node] = np.arange(ng)
        rs, rd = role[arc_src], role[arc_dst]
        arcs = np.arange(arc_src.size)

        def one(mask: np.ndarray, key_nodes: np.ndarray, what: str) -> np.ndarray:
            out = np.full(ng, -1, dtype=np.int64)
            g = gpu_of_node[key_nodes[mask]]
            if np.unique(g).size != g.size:
                raise SimulationError(f"a GPU has more than one {what}; the simulator supports one")
            out[g] = arcs[mask]
            return out

        gpu_c, nic_c, nvs_c = _ROLE_CODE[NodeRole.GPU], _ROLE_CODE[NodeRole.NIC], _ROLE_CODE[NodeRole.NVSWITCH]
        up_nic = one((rs == gpu_c) & (rd == nic_c), arc_src, "NIC")
        dn_nic = one((rs == nic_c) & (rd == gpu_c), arc_dst, "NIC")
        to_nvs = one((rs == gpu_c) & (rd == nvs_c), arc_src, "NVLink switch")
        from_nvs = one((rs == nvs_c) & (rd == gpu_c), arc_dst, "NVLink switch")
        # NIC -> switch: map NIC node -> GPU through the gpu->nic arcs
        gpu_of_nic = np.full(n_nodes, -1, dtype=np.int64)
        has_nic = up_nic >= 0
        gpu_of_nic[arc_dst[up_nic[has_nic]]] = np.flatnonzero(has_nic)
        m_up = (rs == nic_c) & is_sw[arc_dst]
        m_dn = is_sw[arc_src] & (rd == nic_c)
        up_sw = np.full(ng, -1, dtype=np.int64)
        dn_sw = np.full(ng, -1, dtype=np.int64)
        g_up = gpu_of_nic[arc_src[m_up]]
        g_dn = gpu_of_nic[arc_dst[m_dn]]
        if np.unique(g_up).size != g_up.size:
            raise SimulationError("a NIC is wired to more than one switch; the simulator supports one")
        up_sw[g_up[g_up >= 0]] = arcs[m_up][g_up >= 0]
        dn_sw[g_dn[g_dn >= 0]] = arcs[m_dn][g_dn >= 0]
        tor = np.where(up_sw >= 0, sw_of_node[arc_dst[np.maximum(up_sw, 0)]], -1).astype(np.int64)
        nvs = np.where(to_nvs >= 0, arc_dst[np.maximum(to_nvs, 0)], -1).astype(np.int64)

        # utilisation groups: nvlink, role->role between NICs and switches, circuit
        labels = np.full(arc_src.size, "", dtype=object)
        role_name = np.array([r.value for r in _ROLES], dtype=object)
        net = (is_sw[arc_src] | is_sw[arc_dst]) & ~circuit
        labels[net] = role_name[rs[net]] + "→" + role_name[rd[net]]
        labels[nvlink & (rs == gpu_c)] = "nvlink"
        labels[circuit] = "circuit"
        used = labels != ""
        group_names, inv = np.unique(labels[used].astype(str), return_inverse=True)
        group = np.full(arc_src.size, -1, dtype=np.int64)
        group[used] = inv

        virtual = np.zeros(arc_src.size, dtype=bool)
        spray = None
        if routing == "spray":
            spray = spray_groups(topology, names, lt.node_role, arc_src, arc_dst, cap, ~circuit, sw_nodes,
                                 sw_of_node, tor)
        if spray is not None and spray.members:
            nv = len(spray.members)
            first = np.fromiter((m[0] for m in spray.members), dtype=np.int64, count=nv)
            v_cap = np.fromiter((cap[m].sum() for m in spray.members), dtype=np.float64, count=nv)
            v_lat = np.fromiter((np.dot(cap[m], lat[m]) / cap[m].sum() for m in spray.members), dtype=np.float64,
                                count=nv)
            v_group = group[first].copy()
            for m in spray.members:  # the aggregate is sampled for utilisation, its members are not
                group[m] = -1
            arc_src = np.concatenate([arc_src, arc_src[first]])
            arc_dst = np.concatenate([arc_dst, arc_dst[first]])
            cap = np.concatenate([cap, v_cap])
            lat = np.concatenate([lat, v_lat])
            circuit = np.concatenate([circuit, np.zeros(nv, dtype=bool)])
            nvlink = np.concatenate([nvlink, np.zeros(nv, dtype=bool)])
            group = np.concatenate([group, v_group])
            virtual = np.concatenate([virtual, np.ones(nv, dtype=bool)])
            base_arcs = virtual.size - nv
            spray = SprayGroups(members=spray.members, up=np.where(spray.up >= 0, spray.up + base_arcs, -1),
                                down=np.where(spray.down >= 0, spray.down + base_arcs, -1),
                                pod_up=np.where(spray.pod_up >= 0, spray.pod_up + base_arcs, -1),
                                pod_down=np.where(spray.pod_down >= 0, spray.pod_down + base_arcs, -1),
                                sw_pod=spray.sw_pod, host_tor=spray.host_tor, host_up=spray.host_up,
                                host_down=spray.host_down)
        fab = Fabric(topology=topology, node_names=names, arc_src=arc_src, arc_dst=arc_dst, base_capacity_bps=cap,
                     base_latency_s=lat, arc_circuit=circuit, arc_nvlink=nvlink, circuit_pair=circuit_pair,
                     sw_of_node=sw_of_node, sw_nodes=sw_nodes, up_nic=up_nic, up_sw=up_sw, dn_sw=dn_sw, dn_nic=dn_nic,
                     tor=tor, nvs=nvs, to_nvs=to_nvs, from_nvs=from_nvs, group=group,
                     group_names=tuple(str(x) for x in group_names), dist_b=np.zeros((0, 0), dtype=np.int32),
                     arc_virtual=virtual, spray=spray)
        mg = np.full(arc_src.size, -1, dtype=np.int64)
        frac = np.zeros(arc_src.size)
        size = np.zeros(arc_src.size, dtype=np.int64)
        if spray is not None and spray.members:
            fab.group_base = int(arc_src.size - len(spray.members))
            for i, m in enumerate(spray.members):
                v = fab.group_base + i
                mg[m] = v
                frac[m] = cap[m] / cap[v]
                size[v] = m.size
        fab.member_group, fab.member_frac, fab.group_size = mg, frac, size
        fab.dist_b = fab._distances(cap, ~circuit)
        return fab

    def _distances(self, cap: np.ndarray, allowed: np.ndarray) -> np.ndarray:
        """Hop distance (switch x switch, int32, ``_FAR`` if unreachable) from every switch to every switch a
        NIC is attached to (the only destinations routing asks for; other columns stay ``_FAR``).

        One breadth-first search per destination on the reversed graph (compiled): all pairs cost
        ``switches x arcs`` and grew as GPUs^2 (9 s of a 65,536-GPU step); only NIC switches are searched.
        """
        s = self.sw_nodes.size
        sw_s, sw_d = self.sw_of_node[self.arc_src], self.sw_of_node[self.arc_dst]
        m = (sw_s >= 0) & (sw_d >= 0) & (cap > 0) & allowed & ~self.arc_virtual
        rev = sp.csr_matrix((np.ones(int(m.sum())), (sw_d[m], sw_s[m])), shape=(s, s))  # in-neighbours
        targets = np.unique(self.tor[self.tor >= 0]).astype(np.int64)
        out = np.full((s, s), _FAR, dtype=np.int32)
        if targets.size:
            out[:, targets] = _bfs_rows(rev.indptr.astype(np.int64), rev.indices.astype(np.int64), targets, s,
                                        int(_FAR)).T
        return out

    def state(self, live: CircuitAssignment | None) -> FabricState:
        """The fabric with exactly the circuits of ``live`` up (cached)."""
        key = tuple(live.circuits) if live is not None else ()
        st = self._states.get(key)
        if st is None:
            cap = self.base_capacity_bps.copy()
            lat = self.base_latency_s.copy()
            if live is not None and len(live):
                for (a, b), (_, bps, lt) in live.pair_capacity(self.topology).items():
                    arc = self.circuit_pair[(a, b)]
                    cap[arc:arc + 2] = bps
                    lat[arc:arc + 2] = lt
            has_circuits = bool(np.any(cap[self.arc_circuit] > 0))
            dist_a = self._distances(cap, np.ones(cap.size, dtype=bool)) if has_circuits else self.dist_b
            st = FabricState(fabric=self, capacity_bps=cap, latency_s=lat, dist_a=dist_a, live=live,
                             circuits_live=has_circuits)
            self._states[key] = st
        return st


@dataclass(eq=False)
class FabricState:
    """Capacities, latencies and switch distances with one set of live circuits."""

    fabric: Fabric
    capacity_bps: np.ndarray
    latency_s: np.ndarray
    dist_a: np.ndarray
    live: CircuitAssignment | None
    circuits_live: bool = False
    _csr: tuple[np.ndarray, ...] | None = None

    def _switch_csr(self) -> tuple[np.ndarray, ...]:
        """Out-arcs of every switch with capacity > 0: (indptr, arc, next switch)."""
        if self._csr is None:
            f = self.fabric
            sw_s, sw_d = f.sw_of_node[f.arc_src], f.sw_of_node[f.arc_dst]
            arcs = np.flatnonzero((sw_s >= 0) & (sw_d >= 0) & (self.capacity_bps > 0) & ~f.arc_virtual)
            order = np.lexsort((arcs, sw_s[arcs]))
            arcs = arcs[order]
            indptr = np.zeros(f.sw_nodes.size + 1, dtype=np.int64)
            np.add.at(indptr, sw_s[arcs] + 1, 1)
            self._csr = (np.cumsum(indptr), arcs, sw_d[arcs].astype(np.int64))
        return self._csr

    # -------------------------------------------------------------------------------------------
    def _walk(self, cls: str, s: np.ndarray, d: np.ndarray, w: np.ndarray, key: np.ndarray | None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Walk requests ``s -> d`` (switch indices) down the class's shortest-path DAG.

        ``key`` None: split in proportion to capacity (compiled, :func:`_split_walk`; rows request by
        request); else one next hop per request by hash (vectorised over the requests, hop by hop).
        Returns (req, arc, share) rows and the share of each request that crossed a circuit.
        """
        f = self.fabric
        dist = self.dist_a if cls == "A" else f.dist_b
        allowed = np.ones(f.num_arcs, dtype=bool) if cls == "A" else ~f.arc_circuit
        indptr, out_arc, out_v = self._switch_csr()
        cap = self.capacity_bps
        n_sw = f.sw_nodes.size
        if key is None:  # one request at a time: no (request x next hop) temporaries
            r, a, sh, optical, status = _split_walk(indptr, out_arc, out_v, allowed, cap, f.arc_circuit, dist,
                                                    s.astype(np.int64), d.astype(np.int64), w.astype(np.float64))
            if status == 1:
                raise SimulationError("routing found no next hop on a shortest path (inconsistent distances)")
            if status == 2:  # pragma: no cover - distances strictly decrease, so the walk ends within n_sw hops
                raise SimulationError("routing did not terminate")
            return r, a, sh, optical
        req = np.arange(s.size, dtype=np.int64)
        node = s.astype(np.int64)
        wt: np.ndarray = w.astype(np.float64)
        flag = np.zeros(s.size, dtype=bool)
        optical = np.zeros(s.size)
        rec_r: list[np.ndarray] = []
        rec_a: list[np.ndarray] = []
        rec_w: list[np.ndarray] = []
        dd = d.astype(np.int64)
        for _ in range(n_sw + 1):
            at_dst = node == dd[req]
            if at_dst.any():
                optical += np.bincount(req[at_dst & flag], wt[at_dst & flag], minlength=s.size)
                keep = ~at_dst
                req, node, wt, flag = req[keep], node[keep], wt[keep], flag[keep]
            if req.size == 0:
                break
            cnt = indptr[node + 1] - indptr[node]
            tot = int(cnt.sum())
            row = np.repeat(np.arange(req.size), cnt)
            pos = np.arange(tot) - np.repeat(np.cumsum(cnt) - cnt, cnt) + np.repeat(indptr[node], cnt)
            c_arc, c_v = out_arc[pos], out_v[pos]
            r_d = dd[req][row]
            ok = allowed[c_arc] & (dist[c_v, r_d] == dist[node[row], r_d] - 1)
            row, c_arc, c_v = row[ok], c_arc[ok], c_v[ok]
            c_cap = cap[c_arc]
            total = np.bincount(row, c_cap, minlength=req.size)
            n_next = np.bincount(row, minlength=req.size)  # row is sorted: candidates per request
            if np.any(n_next == 0) or np.any(total <= 0):
                raise SimulationError("routing found no next hop on a shortest path (inconsistent distances)")
            x = _uniform(key[req], f.sw_nodes[node])[row] * total[row]
            cs = np.cumsum(c_cap)
            first = np.searchsorted(row, np.arange(req.size))
            before = np.where(first > 0, cs[np.maximum(first - 1, 0)], 0.0)
            local = cs - before[row]
            hit = local > x
            # first candidate of each row with cumulative capacity above x (the last one if rounding)
            pick_idx = np.full(req.size, -1, dtype=np.int64)
            cand = np.flatnonzero(hit)
            rows_hit = row[cand]
            lead = np.r_[True, rows_hit[1:] != rows_hit[:-1]]  # rows_hit is sorted
            pick_idx[rows_hit[lead]] = cand[lead]
            last = np.r_[first[1:], row.size] - 1
            pick_idx = np.where(pick_idx < 0, last, pick_idx)
            c_arc, c_v = c_arc[pick_idx], c_v[pick_idx]
            rec_r.append(req)
            rec_a.append(c_arc)
            rec_w.append(wt)
            flag = flag | f.arc_circuit[c_arc]
            node = c_v
        else:  # pragma: no cover - distances strictly decrease, so the walk ends within n_sw hops
            raise SimulationError("routing did not terminate")
        if rec_r:
            return np.concatenate(rec_r), np.concatenate(rec_a), np.concatenate(rec_w), optical
        e = np.zeros(0, dtype=np.int64)
        return e, e, np.zeros(0), optical

    @staticmethod
    def _lift(sg: SprayGroups, ps: np.ndarray, pd: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                          np.ndarray]:
        """(host ToR of ps or -1, of pd or -1, ps lifted to its ToR, pd lifted)."""
        if sg.host_tor.size == 0:
            neg = np.full(ps.size, -1, dtype=np.int64)
            return neg, neg, ps, pd
        hs, hd = sg.host_tor[ps], sg.host_tor[pd]
        return hs, hd, np.where(hs >= 0, hs, ps), np.where(hd >= 0, hd, pd)

    def _spray_ok(self, ps: np.ndarray, pd: np.ndarray) -> np.ndarray:
        """Switch pairs whose always-on spraying the tier aggregates express exactly."""
        sg = self.fabric.spray
        if sg is None:
            return np.zeros(ps.size, dtype=bool)
        hs, hd, ps, pd = self._lift(sg, ps, pd)
        same = ps == pd  # two hosts under one ToR: host -> ToR -> host
        return np.where(same, (hs >= 0) & (hd >= 0), self._spray_ok_tors(sg, ps, pd))

    @staticmethod
    def _spray_ok_tors(sg: SprayGroups, ps: np.ndarray, pd: np.ndarray) -> np.ndarray:
        pp, pq = sg.sw_pod[ps], sg.sw_pod[pd]
        ok = (sg.up[ps] >= 0) & (sg.down[pd] >= 0) & (pp >= 0) & (pq >= 0)
        inter = pp != pq
        n = sg.pod_up.size
        if n == 0:
            return ok & ~inter
        pu = np.where((pp >= 0) & (pp < n), sg.pod_up[np.clip(pp, 0, n - 1)], -1)
        pdn = np.where((pq >= 0) & (pq < n), sg.pod_down[np.clip(pq, 0, n - 1)], -1)
        return ok & (~inter | ((pu >= 0) & (pdn >= 0)))

    def _spray_rows(self, ps: np.ndarray, pd: np.ndarray, w: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(request, aggregate arc, share) rows of sprayed always-on routes (``_spray_ok`` pairs only)."""
        sg = self.fabric.spray
        assert sg is not None
        hs, hd, ts, td = self._lift(sg, ps, pd)
        hu, hn = np.flatnonzero(hs >= 0), np.flatnonzero(hd >= 0)  # host endpoints: their ToR link, whole
        req = np.flatnonzero(ts != td)  # the ToR-level part (two hosts under one ToR have none)
        pp, pq = sg.sw_pod[ts[req]], sg.sw_pod[td[req]]
        inter = pp != pq
        ii = req[inter]
        r = np.concatenate([req, req, ii, ii, hu, hn])
        a = np.concatenate([sg.up[ts[req]], sg.down[td[req]], sg.pod_up[pp[inter]], sg.pod_down[pq[inter]],
                            sg.host_up[ps[hu]], sg.host_down[pd[hn]]])
        return r, a.astype(np.int64), np.concatenate([w[req], w[req], w[ii], w[ii], w[hu], w[hn]])

    def _class_capacity(self, cls: str, s: np.ndarray, d: np.ndarray, spray: bool = False) -> np.ndarray:
        """Bottleneck throughput of the split routing of each pair in class ``cls``."""
        out = np.full(s.size, np.inf)
        agg = self._spray_ok(s, d) if (spray and cls == "B") else np.zeros(s.size, dtype=bool)
        if agg.any():
            i = np.flatnonzero(agg)
            r, a, w = self._spray_rows(s[i], d[i], np.ones(i.size))
            np.minimum.at(out, i[r], self.capacity_bps[a] / w)
        rest = np.flatnonzero(~agg)
        if rest.size:
            r, a, w, _ = self._walk(cls, s[rest], d[rest], np.ones(rest.size), None)
            np.minimum.at(out, rest[r], self.capacity_bps[a] / w)
        return out

    def _fluid(self, cls: str, idx: np.ndarray, ps: np.ndarray, pd: np.ndarray, w: np.ndarray, spray: bool,
               pr: list[np.ndarray], pa: list[np.ndarray], pw: list[np.ndarray], p_opt: np.ndarray) -> None:
        """Fluid routes of switch pairs ``idx`` in class ``cls`` (aggregated where exact), appended to pr/pa/pw."""
        agg = np.zeros(idx.size, dtype=bool)
        if spray and (cls == "B" or not self.circuits_live):
            agg = self._spray_ok(ps[idx], pd[idx])
        if agg.any():
            sel = idx[agg]
            r, a, ww = self._spray_rows(ps[sel], pd[sel], w[sel])
            pr.append(sel[r])
            pa.append(a)
            pw.append(ww)
        sel = idx[~agg]
        if sel.size:
            r, a, ww, o = self._walk(cls, ps[sel], pd[sel], w[sel], None)
            pr.append(sel[r])
            pa.append(a)
            pw.append(ww)
            p_opt[sel] += o

    def _reconcile(self, rf: np.ndarray, ra: np.ndarray, rw: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Make rows on tier aggregates and rows on their member arcs consistent (one arc space per group).

        Exact walks (routes over live circuits, hashed or adaptive paths) may cross member arcs of an
        aggregate that sprayed routes use as a whole; max-min needs each group modelled once. A flow's
        rows on a group's members are *lifted* to the aggregate when they cover every member in proportion
        to capacity (the same load, exactly); if any flow's rows on a group are not proportional, that
        group is *expanded* instead: its aggregate rows become member rows in proportion to capacity
        (exactly what spraying puts there).
        """
        f = self.fabric
        sg = f.spray
        assert sg is not None
        mg, frac, size = f.member_group, f.member_frac, f.group_size
        mem = mg[ra] >= 0
        bad = np.zeros(0, dtype=np.int64)
        if mem.any():
            r_m, a_m, w_m = rf[mem], ra[mem], rw[mem]
            g_m = mg[a_m]
            key = r_m * f.num_arcs + g_m
            uk, inv = np.unique(key, return_inverse=True)
            tot = np.bincount(inv, w_m)
            cnt = np.bincount(inv)
            off = np.abs(w_m - tot[inv] * frac[a_m]) > 1e-12 * tot[inv]
            k_g = uk % f.num_arcs
            valid = (np.bincount(inv, off) == 0) & (cnt == size[k_g])
            bad = np.unique(k_g[~valid])
            lift = ~np.isin(k_g, bad)
            keep = np.ones(rf.size, dtype=bool)
            keep[np.flatnonzero(mem)[lift[inv]]] = False
            rf = np.concatenate([rf[keep], uk[lift] // f.num_arcs])
            ra = np.concatenate([ra[keep], k_g[lift]])
            rw = np.concatenate([rw[keep], tot[lift]])
        if bad.size:
            ex = np.isin(ra, bad)
            if ex.any():
                gi = ra[ex] - f.group_base
                lens = np.fromiter((sg.members[i].size for i in gi), dtype=np.int64, count=gi.size)
                arcs = np.concatenate([sg.members[i] for i in gi])
                rf = np.concatenate([rf[~ex], np.repeat(rf[ex], lens)])
                rw = np.concatenate([rw[~ex], np.repeat(rw[ex], lens) * frac[arcs]])
                ra = np.concatenate([ra[~ex], arcs])
        return rf, ra, rw

    def _adaptive(self, cls: str, s: np.ndarray, d: np.ndarray, key: np.ndarray, load: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Least-loaded shortest path of each request in class ``cls``, in order (``load`` updated)."""
        f = self.fabric
        dist = self.dist_a if cls == "A" else f.dist_b
        allowed = np.ones(f.num_arcs, dtype=bool) if cls == "A" else ~f.arc_circuit
        indptr, out_arc, out_v = self._switch_csr()
        cap = self.capacity_bps
        norm = np.where(cap > 0, cap / max(float(cap.max()), 1.0), 1.0)
        r, a, o = _adaptive_paths(indptr, out_arc, out_v, allowed, norm, f.arc_circuit, dist,
                                  s.astype(np.int64), d.astype(np.int64), key.astype(np.uint64), load)
        return r, a, o.astype(np.float64)

    def route(self, src: np.ndarray, dst: np.ndarray, *, ecmp: str, seed: int) -> Routes:
        """Routes of flows ``src -> dst`` (GPU indices) in this state.

        ``ecmp`` is the routing model, one of :data:`ROUTINGS` (module docstring); ``seed`` fixes the hash
        choices of ``hash`` and ``adaptive``. Raises :class:`SimulationError` for an unknown model or a flow
        that needs the network from a GPU without a NIC.
        """
        if ecmp not in ROUTINGS:
            raise SimulationError(f"unknown routing model '{ecmp}' (known: {', '.join(ROUTINGS)})")
        f = self.fabric
        n = src.size
        src = src.astype(np.int64)
        dst = dst.astype(np.int64)
        nvl = (f.nvs[src] >= 0) & (f.nvs[src] == f.nvs[dst]) & (src != dst)
        net = ~nvl & (src != dst)
        if np.any(net & ((f.tor[src] < 0) | (f.tor[dst] < 0))):
            bad = int(np.flatnonzero(net & ((f.tor[src] < 0) | (f.tor[dst] < 0)))[0])
            raise SimulationError(f"flow {bad} ({src[bad]} -> {dst[bad]}) needs the network but a GPU has no NIC")
        ts, td = f.tor[src], f.tor[dst]
        far = net & (ts != td)
        blocked = np.zeros(n, dtype=bool)
        optical = np.zeros(n)
        lat = np.zeros(n)
        rows_f: list[np.ndarray] = []
        rows_a: list[np.ndarray] = []
        rows_w: list[np.ndarray] = []
        # host arcs
        fi = np.flatnonzero(nvl)
        rows_f += [fi, fi]
        rows_a += [f.to_nvs[src[fi]], f.from_nvs[dst[fi]]]
        fi = np.flatnonzero(net)
        for arcs in (f.up_nic[src[fi]], f.up_sw[src[fi]], f.dn_sw[dst[fi]], f.dn_nic[dst[fi]]):
            rows_f.append(fi)
            rows_a.append(arcs)
        rows_w += [np.ones(x.size) for x in rows_f]
        # switch part
        fi = np.flatnonzero(far)
        if fi.size:
            pair = ts[fi] * f.sw_nodes.size + td[fi]
            up, inv = np.unique(pair, return_inverse=True)
            ps, pd = up // f.sw_nodes.size, up % f.sw_nodes.size
            da, db = self.dist_a[ps, pd], f.dist_b[ps, pd]
            p_blocked = da >= _FAR
            div = (da < db) & (db < _FAR)
            w_a = np.ones(up.size)
            fluid = ecmp in ("split", "spray")
            spray = ecmp == "spray" and f.spray is not None
            if div.any():
                ca = self._class_capacity("A", ps[div], pd[div])
                cb = self._class_capacity("B", ps[div], pd[div], spray=spray)
                w_a[div] = ca / (ca + cb)
            blocked[fi] = p_blocked[inv]
            ok = ~p_blocked
            if fluid:
                # route each distinct switch pair once, then give every flow its pair's rows
                pr: list[np.ndarray] = [np.zeros(0, dtype=np.int64)]
                pa: list[np.ndarray] = [np.zeros(0, dtype=np.int64)]
                pw: list[np.ndarray] = [np.zeros(0)]
                p_opt = np.zeros(up.size)
                self._fluid("A", np.flatnonzero(ok), ps, pd, w_a, spray, pr, pa, pw, p_opt)
                self._fluid("B", np.flatnonzero(ok & div), ps, pd, 1.0 - w_a, spray, pr, pa, pw, p_opt)
                pr_, pa_, pw_ = np.concatenate(pr), np.concatenate(pa), np.concatenate(pw)
                if f.spray is not None and f.spray.members:
                    # per switch pair, not per flow: the flows of a pair share its rows, so a group is
                    # lifted or expanded exactly as it would be per flow (same sums, same row order per
                    # flow), but the exact walks' member rows are not first copied to every flow
                    pr_, pa_, pw_ = self._reconcile(pr_, pa_, pw_)
                order = np.argsort(pr_, kind="stable")
                pr_, pa_, pw_ = pr_[order], pa_[order], pw_[order]
                pptr = np.zeros(up.size + 1, dtype=np.int64)
                np.add.at(pptr, pr_ + 1, 1)
                pptr = np.cumsum(pptr)
                cnt = pptr[inv + 1] - pptr[inv]
                rowf = np.repeat(fi, cnt)
                pos = np.arange(int(cnt.sum())) - np.repeat(np.cumsum(cnt) - cnt, cnt) + np.repeat(pptr[inv], cnt)
                rows_f.append(rowf)
                rows_a.append(pa_[pos])
                rows_w.append(pw_[pos])
                optical[fi] = p_opt[inv]
            else:
                key = pair_keys(seed, src[fi], dst[fi])
                fok = ok[inv]
                choose_a = _uniform(key, -1) < w_a[inv]
                load = np.zeros(f.num_arcs) if ecmp == "adaptive" else None
                for cls, m in (("A", fok & choose_a), ("B", fok & ~choose_a)):
                    sel = np.flatnonzero(m)
                    if sel.size == 0:
                        continue
                    if load is not None:
                        r, a, o = self._adaptive(cls, ts[fi[sel]], td[fi[sel]], key[sel], load)
                        w = np.ones(r.size)
                    else:
                        r, a, w, o = self._walk(cls, ts[fi[sel]], td[fi[sel]], np.ones(sel.size), key[sel])
                    rows_f.append(fi[sel][r])
                    rows_a.append(a)
                    rows_w.append(w)
                    optical[fi[sel]] = o
        rf = np.concatenate(rows_f).astype(np.int64)
        ra = np.concatenate(rows_a).astype(np.int64)
        rw = np.concatenate(rows_w)
        if f.spray is not None and f.spray.members and ecmp not in ("split", "spray"):
            rf, ra, rw = self._reconcile(rf, ra, rw)  # hashed / adaptive paths (the fluid ones are done per pair)
        inc = sp.csr_matrix((rw, (rf, ra)), shape=(n, f.num_arcs))
        inc.sum_duplicates()
        lat = inc @ self.latency_s
        return Routes(incidence=inc, latency_s=np.asarray(lat), optical=np.minimum(optical, 1.0), nvlink=nvl,
                      blocked=blocked)


__all__ = ["Fabric", "FabricState", "ROUTINGS", "Routes", "SprayGroups", "pair_keys", "spray_groups"]
