"""Routes: which arcs each flow crosses, and in what share, for one state of the circuits.

The simulator's arcs (:class:`Fabric`) are the directed links of the always-on logical graph
(``topology.always_on()``: every non-fibre edge, two arcs each) followed by one arc per direction for
every switch pair that some circuit assignment of the run joins. A circuit bundle keeps its own arcs
even when an electrical link joins the same two switches (``Topology.with_circuits`` would merge them;
capacities add up the same), so circuits can go dark on their own and bytes split by medium. A
:class:`FabricState` is the fabric with one set of live circuits: circuit arcs carry the live circuits'
capacity (``CircuitAssignment.pair_capacity``), dark ones zero.

Routing model (documented choices):

* GPUs are endpoints only, never transit nodes. Two GPUs behind the same NVLink switch talk over
  NVLink (``gpu -> nvs -> gpu``). Otherwise a flow goes ``gpu -> nic -> switch ... switch -> nic -> gpu``;
  the switch part is chosen on the switch-level graph.
* Equal-cost multipath per hop, weighted by capacity: at every switch the next hops are the neighbours
  one hop closer to the destination switch, and traffic is spread over them in proportion to arc
  capacity (an edge of ``k`` parallel links is ``k`` equal-cost ports, so this is ECMP over physical
  ports). ``ecmp="split"`` spreads every flow fluidly; ``ecmp="hash"`` sends each GPU pair down one path,
  picking the next hop at every switch by a seeded hash of (seed, src, dst, switch) with probabilities
  proportional to capacity (flows of one GPU pair share one path, like one connection).
* Circuits and the always-on path (WCMP). When circuits give a pair of switches a *shorter* path than
  the always-on (electrical) graph, a flow is split between two route classes: A, the shortest paths of
  the logical graph (through circuits) and B, the shortest paths of the always-on graph. The share of
  class A is ``C_A / (C_A + C_B)`` where ``C`` is the bottleneck throughput of the class's split routing
  (``min`` over its arcs of capacity / share of the flow crossing it). This is the simulator's reading of
  the solver's hybrid-direct model: traffic that does not fit on the direct circuits spills to the
  electrical path, in proportion to capacity. With ``hash`` the class is drawn by the same seeded hash.
  When the circuit path is not shorter, circuits are just more equal-cost ports (e.g. ``tree``).
* Per flow the route reports its share carried by circuits (bytes by medium), its mean path latency
  (share-weighted sum of arc latencies) and whether it is blocked (no path in this state; it waits for
  the next circuit change).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import shortest_path

from rfabric.circuits import CircuitAssignment
from rfabric.errors import SimulationError
from rfabric.topology import MEDIUM_CODES, SWITCH_ROLES, Medium, NodeRole, Topology

_ROLES = list(NodeRole)
_ROLE_CODE = {r: i for i, r in enumerate(_ROLES)}
_SWITCH_CODES = np.array([_ROLE_CODE[r] for r in SWITCH_ROLES])
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
    _states: dict[tuple, FabricState] = field(default_factory=dict)

    @property
    def num_arcs(self) -> int:
        return int(self.arc_src.size)

    @staticmethod
    def build(topology: Topology, assignments: Iterable[CircuitAssignment | None] = ()) -> Fabric:
        """Compile ``topology`` with arcs for every circuit pair of ``assignments``."""
        base = topology.always_on()
        lt = base.compile()
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

        fab = Fabric(topology=topology, node_names=names, arc_src=arc_src, arc_dst=arc_dst, base_capacity_bps=cap,
                     base_latency_s=lat, arc_circuit=circuit, arc_nvlink=nvlink, circuit_pair=circuit_pair,
                     sw_of_node=sw_of_node, sw_nodes=sw_nodes, up_nic=up_nic, up_sw=up_sw, dn_sw=dn_sw, dn_nic=dn_nic,
                     tor=tor, nvs=nvs, to_nvs=to_nvs, from_nvs=from_nvs, group=group,
                     group_names=tuple(str(x) for x in group_names), dist_b=np.zeros((0, 0), dtype=np.int32))
        fab.dist_b = fab._distances(cap, ~circuit)
        return fab

    def _distances(self, cap: np.ndarray, allowed: np.ndarray) -> np.ndarray:
        s = self.sw_nodes.size
        sw_s, sw_d = self.sw_of_node[self.arc_src], self.sw_of_node[self.arc_dst]
        m = (sw_s >= 0) & (sw_d >= 0) & (cap > 0) & allowed
        g = sp.csr_matrix((np.ones(int(m.sum())), (sw_s[m], sw_d[m])), shape=(s, s))
        d = shortest_path(g, method="D", unweighted=True, directed=True)
        out = np.full(d.shape, _FAR, dtype=np.int32)
        fin = np.isfinite(d)
        out[fin] = d[fin].astype(np.int32)
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
            st = FabricState(fabric=self, capacity_bps=cap, latency_s=lat, dist_a=dist_a, live=live)
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
    _csr: tuple[np.ndarray, ...] | None = None

    def _switch_csr(self) -> tuple[np.ndarray, ...]:
        """Out-arcs of every switch with capacity > 0: (indptr, arc, next switch)."""
        if self._csr is None:
            f = self.fabric
            sw_s, sw_d = f.sw_of_node[f.arc_src], f.sw_of_node[f.arc_dst]
            arcs = np.flatnonzero((sw_s >= 0) & (sw_d >= 0) & (self.capacity_bps > 0))
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

        ``key`` None: split in proportion to capacity; else one next hop per request by hash.
        Returns (req, arc, share) rows and the share of each request that crossed a circuit.
        """
        f = self.fabric
        dist = self.dist_a if cls == "A" else f.dist_b
        allowed = np.ones(f.num_arcs, dtype=bool) if cls == "A" else ~f.arc_circuit
        indptr, out_arc, out_v = self._switch_csr()
        cap = self.capacity_bps
        n_sw = f.sw_nodes.size
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
            if key is None:
                share = wt[row] * c_cap / total[row]
                new_flag = flag[row] | f.arc_circuit[c_arc]
                rec_r.append(req[row])
                rec_a.append(c_arc)
                rec_w.append(share)
                # merge rows that reached the same node with the same circuit flag
                k = (req[row] * n_sw + c_v) * 2 + new_flag
                uk, inv = np.unique(k, return_inverse=True)
                wt = np.bincount(inv, share).astype(np.float64)
                flag = (uk & 1).astype(bool)
                node = ((uk >> 1) % n_sw).astype(np.int64)
                req = ((uk >> 1) // n_sw).astype(np.int64)
            else:
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

    def _class_capacity(self, cls: str, s: np.ndarray, d: np.ndarray) -> np.ndarray:
        """Bottleneck throughput of the split routing of each pair in class ``cls``."""
        r, a, w, _ = self._walk(cls, s, d, np.ones(s.size), None)
        out = np.full(s.size, np.inf)
        np.minimum.at(out, r, self.capacity_bps[a] / w)
        return out

    def route(self, src: np.ndarray, dst: np.ndarray, *, ecmp: str, seed: int) -> Routes:
        """Routes of flows ``src -> dst`` (GPU indices) in this state."""
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
            if div.any():
                ca = self._class_capacity("A", ps[div], pd[div])
                cb = self._class_capacity("B", ps[div], pd[div])
                w_a[div] = ca / (ca + cb)
            blocked[fi] = p_blocked[inv]
            ok = ~p_blocked
            if ecmp == "split":
                # route each distinct switch pair once, then give every flow its pair's rows
                pr: list[np.ndarray] = []
                pa: list[np.ndarray] = []
                pw: list[np.ndarray] = []
                p_opt = np.zeros(up.size)
                use_a = np.flatnonzero(ok)
                r, a, w, o = self._walk("A", ps[use_a], pd[use_a], w_a[use_a], None)
                pr.append(use_a[r])
                pa.append(a)
                pw.append(w)
                p_opt[use_a] += o
                use_b = np.flatnonzero(ok & div)
                r, a, w, o = self._walk("B", ps[use_b], pd[use_b], 1.0 - w_a[use_b], None)
                pr.append(use_b[r])
                pa.append(a)
                pw.append(w)
                p_opt[use_b] += o
                pr_, pa_, pw_ = np.concatenate(pr), np.concatenate(pa), np.concatenate(pw)
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
                for cls, m in (("A", fok & choose_a), ("B", fok & ~choose_a)):
                    sel = np.flatnonzero(m)
                    if sel.size == 0:
                        continue
                    r, a, w, o = self._walk(cls, ts[fi[sel]], td[fi[sel]], np.ones(sel.size), key[sel])
                    rows_f.append(fi[sel][r])
                    rows_a.append(a)
                    rows_w.append(w)
                    optical[fi[sel]] = o
        rf = np.concatenate(rows_f).astype(np.int64)
        ra = np.concatenate(rows_a).astype(np.int64)
        rw = np.concatenate(rows_w)
        inc = sp.csr_matrix((rw, (rf, ra)), shape=(n, f.num_arcs))
        inc.sum_duplicates()
        lat = inc @ self.latency_s
        return Routes(incidence=inc, latency_s=np.asarray(lat), optical=np.minimum(optical, 1.0), nvlink=nvl,
                      blocked=blocked)


__all__ = ["Fabric", "FabricState", "Routes", "pair_keys"]
