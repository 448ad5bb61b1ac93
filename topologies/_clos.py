"""The one Clos builder behind every kind: sizing rules (:func:`plan`) and graph assembly (:func:`assemble`).

``fat_tree`` and ``rail_optimized`` are this Clos with no OCS; ``rfabric`` and ``static_ocs`` fibre a share
of the ToR and aggregation uplinks to OCS planes. Sizing rules (documented once, here):

1. **ToR / leaf.** A ToR of radix ``k`` keeps ``h`` host ports and ``u`` uplinks, ``h`` the largest value
   with ``h + ceil(h * nic_bps / (oversubscription * port_bps)) <= k`` and ``u`` that ceiling. In ``tor``
   attachment ``h`` is rounded down to whole servers (all NICs of a server on one ToR); in ``rail``
   attachment a leaf takes NIC ``i`` of ``h`` servers (a *rail group*), and a group has
   ``gpus_per_server`` leaves. Non-blocking radix 64 at 400 G: 32 down, 32 up.
2. **Pod.** An aggregation switch keeps one port per ToR of its pod (``d`` ports) and
   ``ceil(d / core_oversubscription)`` uplinks, ``d`` the largest value with ``d + ceil(d / o) <= k``
   (whole rail groups in ``rail`` attachment). A pod has ``d`` ToRs and one aggregation switch per ToR
   uplink; every ToR has one link to every aggregation switch of its pod. A single (partial) pod uses as
   few aggregation switches as fit: ToR uplink ``j`` goes to aggregation switch ``j // m`` with ``m`` the
   largest divisor of the uplink count such that ``tors * m`` fits the aggregation down ports.
3. **Partial pods.** Servers fill ToRs in GPU order, ToRs fill pods in order; the last ToR and the last
   pod may be partial (their spare ports are reported, every pod keeps all its aggregation switches).
4. **Tiers present.** One ToR: no aggregation tier. One pod: no core tier (a 2-tier leaf-spine; the
   aggregation uplinks stay unused). More than ``k`` pods: ``ConfigError`` on ``switch_radix``.
5. **Core sized for the pods present.** Each pod has ``L = aggs * links_per_agg`` core links, numbered
   uplink-major (``l = i * aggs + j`` for uplink ``i`` of aggregation switch ``j``). There are
   ``C = ceil(L / (k // pods))`` core switches, core ``c`` taking the contiguous block
   ``l in [c*L//C, (c+1)*L//C)`` from every pod (parallel links merge into one edge with ``links``).
   For a full k-ary tree this is the textbook ``(k/2)^2`` cores with one link per pod each.

OCS planes (``rfabric``): ToR uplink ``j >= tor_uplinks_eps`` of every ToR of a pod is *agg plane*
``j - tor_uplinks_eps`` of that pod; agg uplink ``i >= agg_uplinks_eps`` of aggregation switch ``j`` is
*core plane* ``(i - agg_uplinks_eps) * aggs + j`` (one port per pod). A plane's upper-side ports (the
aggregation switch / core EPS port the Clos would have used) exist for the first ``*_keep`` planes. A
plane lives wholly on one OCS (``striped``: plane ``q`` on OCS ``q mod n``; ``blocked``: consecutive);
``n`` is the fewest OCSes that hold every plane (per pod on the agg layer), or the count given.
Shares round half up, but a share strictly below 1 always leaves one uplink electrical and one strictly
above 0 fibres at least one of two or more (so only a share of exactly 1 removes the always-on path, and
that needs ``allow_circuit_only``). The agg-layer planes of every pod use the OCS count of a full pod.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np

from rfabric.config import ClusterConfig
from rfabric.errors import ConfigError
from rfabric.topology import Medium, NodeRole

_EPS = 1e-9


def _ceil(x: float) -> int:
    return math.ceil(x - _EPS)


def _share(share: float, n: int) -> int:
    """``share * n`` rounded half up; a share strictly below 1 never takes all ``n`` items and one strictly
    above 0 takes at least one when there are two or more (0.75 of 2 uplinks is 1; 0.5 of 1 is 0)."""
    x = int(math.floor(share * n + 0.5))
    if 0.0 < share < 1.0:
        x = min(max(x, 1 if n >= 2 else 0), n - 1)
    return max(x, 0)


def _max_down(k: int, o: float, ratio: float, step: int) -> int:
    """Largest multiple ``d`` of ``step`` with ``d + ceil(d * ratio / o) <= k`` (0 if none)."""
    d = (k // step) * step
    while d > 0 and d + _ceil(d * ratio / o) > k:
        d -= step
    return d


@dataclass(frozen=True, slots=True)
class Plan:
    """Every size of one Clos (all counts are per switch / per pod unless said otherwise)."""

    attach: str  # "tor" or "rail"
    gpus: int
    gpus_per_server: int
    servers: int
    radix: int
    nic_bps: float
    port_bps: float
    hosts_per_tor: int  # NIC ports per ToR/leaf (tor: servers_per_tor * server_ports)
    servers_per_tor: int  # tor: servers on one ToR; rail: servers in one rail group
    tor_uplinks: int
    tor_links_per_agg: int  # parallel links ToR -> each agg (1 unless a single partial pod); uplink j -> agg j // m
    tor_uplinks_ocs: int
    tors: int
    tors_per_pod: int
    pods: int
    aggs_per_pod: int  # agg switches present per pod (eps + kept)
    agg_keep: int  # agg-layer planes whose agg-side ports exist
    agg_uplinks: int
    agg_uplinks_ocs: int
    core_keep: int  # core-layer planes whose core-side ports exist
    cores: int
    server_ports: int = 0  # ToR-facing NIC ports per server (0: gpus_per_server, one NIC per GPU)

    @property
    def tor_uplinks_eps(self) -> int:
        return self.tor_uplinks - self.tor_uplinks_ocs

    @property
    def agg_uplinks_eps(self) -> int:
        return self.agg_uplinks - self.agg_uplinks_ocs

    @property
    def core_links_per_agg(self) -> int:
        """Links from one aggregation switch to core EPS ports (electrical + kept OCS planes)."""
        return self.agg_uplinks_eps + self.core_keep if self.pods > 1 else 0

    @property
    def has_agg(self) -> bool:
        return self.tors > 1 and self.aggs_per_pod > 0

    def tors_in_pod(self, p: int) -> int:
        return min(self.tors_per_pod, self.tors - p * self.tors_per_pod)

    def core_blocks(self) -> np.ndarray:
        """Block bounds: core ``c`` takes per-pod link numbers ``[b[c], b[c+1])``."""
        L = self.aggs_per_pod * self.core_links_per_agg
        return (np.arange(self.cores + 1, dtype=np.int64) * L) // max(self.cores, 1)

    def core_of_link(self, ell: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.core_blocks(), ell, side="right") - 1


def plan(cluster: ClusterConfig, params: Any, *, attach: str, path: str, agg_ocs_share: float = 0.0,
         agg_ocs_upper_share: float = 1.0, core_ocs_share: float = 0.0, core_ocs_upper_share: float = 1.0,
         allow_circuit_only: bool = False, server_ports: int = 0) -> Plan:
    """Size a Clos (rules in the module docstring); bad combinations raise ``ConfigError`` on ``path.<key>``.

    ``server_ports`` > 0 (``tor`` attachment only): each server puts that many NIC ports on its ToR instead
    of one per GPU (MixNet's electrical share); the Clos is sized for those ports.
    """
    k = params.switch_radix
    nic = cluster.nic_bps
    port = params.port_bps or nic
    n = cluster.gpus
    servers = n // cluster.gpus_per_server
    gps = server_ports or cluster.gpus_per_server
    o1, o2 = params.oversubscription, params.core_oversubscription
    key = f"{path}.switch_radix" if path else "switch_radix"
    step = gps if attach == "tor" else 1
    h = _max_down(k, o1, nic / port, step)
    if h == 0:
        need = gps + _ceil(gps * nic / (o1 * port))
        raise ConfigError(key, f"too small: a ToR must hold the {gps} NICs of one server plus its uplinks "
                          f"(needs >= {need} ports at oversubscription {o1:g})", k)
    u_t = _ceil(h * nic / (o1 * port))
    d = _max_down(k, o2, 1.0, gps if attach == "rail" else 1)
    if d == 0:
        raise ConfigError(key, f"too small: a rail-optimised pod needs {gps} leaves (one per rail) under "
                          "each spine", k)
    if attach == "tor":
        spt = h // gps
        tors = _ceil(servers / spt)
    else:
        spt = h
        tors = _ceil(servers / h) * gps
    pods = _ceil(tors / d)
    u_a = _ceil(d / o2) if pods > 1 else 0

    # One pod: as few aggregation switches as fit, each taking m parallel links from every ToR.
    # (Right-sized: with no core tier an aggregation switch is a leaf-spine spine, all k ports down.)
    m = 1
    if pods == 1 and tors > 1:
        m = max(x for x in range(1, u_t + 1) if u_t % x == 0 and tors * x <= k)
    u_to = _share(agg_ocs_share, u_t) if tors > 1 else 0
    keep_a = _share(agg_ocs_upper_share, u_to)
    aggs = _ceil((u_t - u_to + keep_a) / m) if tors > 1 else 0
    u_ao = _share(core_ocs_share, u_a)
    keep_c = _share(core_ocs_upper_share, u_ao)
    u_core = u_a - u_ao + keep_c

    def p_key(name: str) -> str:
        return f"{path}.{name}" if path else name

    if tors > 1 and u_t - u_to == 0 and not allow_circuit_only:
        raise ConfigError(p_key("agg_ocs_share"), "leaves no always-on electrical ToR uplink, so some GPUs "
                          "could reach each other only over circuits (set allow_circuit_only: true to accept)",
                          agg_ocs_share)
    if pods > 1 and aggs == 0:
        raise ConfigError(p_key("agg_ocs_upper_share"), f"{pods} pods need aggregation switches to reach the "
                          "core layer; lower agg_ocs_share or raise agg_ocs_upper_share", agg_ocs_upper_share)
    if pods > 1 and u_a - u_ao == 0 and not allow_circuit_only:
        raise ConfigError(p_key("core_ocs_share"), "leaves no always-on electrical path between pods "
                          "(set allow_circuit_only: true to accept, or keep a thin electrical core)", core_ocs_share)
    cores = 0
    if pods > 1 and u_core > 0:
        if pods > k:
            max_gpus = k * d * h
            raise ConfigError(key, f"too small for {n} GPUs: {pods} pods exceed the core switch radix; a "
                              f"3-tier Clos of radix {k} at these oversubscription ratios holds at most "
                              f"{max_gpus} GPUs", k)
        cores = _ceil(aggs * u_core / (k // pods))
    return Plan(attach=attach, gpus=n, gpus_per_server=cluster.gpus_per_server, servers=servers, radix=k, nic_bps=nic, port_bps=port,
                hosts_per_tor=h if attach == "rail" else spt * gps, servers_per_tor=spt, tor_uplinks=u_t,
                tor_links_per_agg=m,
                tor_uplinks_ocs=u_to, tors=tors, tors_per_pod=d, pods=pods, aggs_per_pod=aggs, agg_keep=keep_a,
                agg_uplinks=u_a, agg_uplinks_ocs=u_ao, core_keep=keep_c, cores=cores, server_ports=gps)


# ----------------------------------------------------------------------------------------------------
# OCS plane placement


def place_planes(sizes: Sequence[int], ports: int, count: int, wiring: str, *, count_key: str,
                 radix_key: str, radix: int) -> tuple[list[int], int]:
    """Assign planes (``sizes[q]`` OCS ports each) to OCS devices of ``ports`` logical ports.

    Returns (OCS index of each plane, number of OCSes). ``count`` > 0 fixes the number of devices.
    """
    if not sizes:
        return [], 0
    big = max(sizes)
    if big > ports:
        raise ConfigError(radix_key, f"too small: one OCS must hold a whole plane of {big} switch ports, but "
                          f"ocs_radix {radix} gives {ports} duplex ports per OCS", radix)
    m = len(sizes)
    arr = np.asarray(sizes, dtype=np.int64)

    def assign(nocs: int) -> np.ndarray:
        q = np.arange(m, dtype=np.int64)
        return q % nocs if wiring == "striped" else (q * nocs) // m

    def fits(nocs: int) -> bool:
        return bool(np.bincount(assign(nocs), weights=arr, minlength=nocs).max() <= ports)

    if count:
        if not fits(count):
            raise ConfigError(count_key, f"too few OCS ports: {int(arr.sum())} fibred switch ports need more than "
                              f"{count} OCS of {ports} duplex ports (with whole planes per OCS)", count)
        nocs = count
    else:
        nocs = _ceil(arr.sum() / ports)
        while not fits(nocs):
            nocs += 1
    return assign(nocs).tolist(), nocs


# ----------------------------------------------------------------------------------------------------
# Graph assembly


@dataclass(frozen=True, slots=True)
class OcsSpec:
    """How the OCS layers are built (ignored when no uplink is fibred)."""

    radix: int
    bidirectional: bool
    agg_count: int
    core_count: int
    wiring: str
    path: str
    agg_span: int = 1  # pods per aggregation-layer plane group (0: as many as one OCS holds)


def _edge(links: int, bps: float, lat: float, medium: Medium, length_m: float = 0.0) -> dict[str, Any]:
    d: dict[str, Any] = {"links": links, "link_bps": bps, "capacity_bps": links * bps, "latency_s": lat,
                         "medium": medium}
    if medium in (Medium.OPTICAL, Medium.FIBRE):
        d["length_m"] = length_m
    return d


def assemble(p: Plan, cluster: ClusterConfig, params: Any, *, kind: str, ocs: OcsSpec | None = None,
             hosts: bool = False) -> nx.Graph:
    """Build the physical graph of plan ``p`` (node/edge conventions: :mod:`topologies`).

    ``hosts``: every server is a ``host{s}`` forwarding node (``tor`` attachment): its GPUs' NICs hang off
    it (PCIe) and it holds ``p.server_ports`` NIC links to its ToR (one edge, ``links`` = that count).
    """
    gps = p.gpus_per_server
    hop_lat = params.link_latency_s + params.switch_latency_s
    length = params.fibre_length_m
    nic, port = p.nic_bps, p.port_bps
    k = p.radix
    g_idx = np.arange(p.gpus, dtype=np.int64)
    server = g_idx // gps
    local = g_idx % gps
    if p.attach == "tor":
        tor = server // p.servers_per_tor
    else:
        tor = (server // p.servers_per_tor) * gps + local
    tor_pod = np.arange(p.tors, dtype=np.int64) // p.tors_per_pod
    pod = tor_pod[tor]
    tor_names = [f"tor{t}" for t in range(p.tors)]
    gl, sl, tl, pl, ll = g_idx.tolist(), server.tolist(), tor.tolist(), pod.tolist(), local.tolist()

    G = nx.Graph()
    gpu_role, nic_role = NodeRole.GPU, NodeRole.NIC
    G.add_nodes_from((f"gpu{g}", {"role": gpu_role, "gpu": g, "server": s, "tor": tor_names[t], "pod": q, "rail": r})
                     for g, s, t, q, r in zip(gl, sl, tl, pl, ll, strict=True))
    G.add_nodes_from((f"nic{g}", {"role": nic_role, "gpu": g, "server": s, "tor": tor_names[t], "pod": q, "rail": r,
                                  "port_bps": nic})
                     for g, s, t, q, r in zip(gl, sl, tl, pl, ll, strict=True))
    if gps > 1:
        first = g_idx[::gps]
        G.add_nodes_from((f"nvs{s}", {"role": NodeRole.NVSWITCH, "server": s, "tor": tor_names[t], "pod": q})
                         for s, t, q in zip(range(p.servers), tor[first].tolist(), pod[first].tolist(), strict=True))
    tor_attrs: dict[str, Any] = {"role": NodeRole.TOR, "radix": k, "port_bps": port}
    G.add_nodes_from((name, {**tor_attrs, "pod": q, "index": t, "local": t % p.tors_per_pod,
                             **({"rail": t % gps} if p.attach == "rail" else {})})
                     for t, (name, q) in enumerate(zip(tor_names, tor_pod.tolist(), strict=True)))
    A = p.aggs_per_pod if p.has_agg else 0
    agg_names = [f"agg{q * A + j}" for q in range(p.pods) for j in range(A)]
    G.add_nodes_from((f"agg{a}", {"role": NodeRole.AGG, "radix": k, "port_bps": port, "pod": a // A, "index": a,
                                  "local": a % A}) for a in range(len(agg_names)))
    G.add_nodes_from((f"core{c}", {"role": NodeRole.CORE, "radix": k, "port_bps": port, "pod": -1, "index": c})
                     for c in range(p.cores))

    # ---- host side ------------------------------------------------------------------------------
    if gps > 1:
        nv = _edge(1, cluster.nvlink_bps, 0.0, Medium.NVLINK)
        G.add_edges_from((f"gpu{g}", f"nvs{s}", nv) for g, s in zip(gl, sl, strict=True))
    pcie = _edge(1, nic, cluster.nic_latency_s, Medium.PCIE)
    G.add_edges_from((f"gpu{g}", f"nic{g}", pcie) for g in gl)
    medium = Medium.COPPER if params.host_dac else Medium.OPTICAL
    if hosts:
        add_hosts(G, p.servers, gps, nic, pod=np.arange(p.servers) // p.servers_per_tor // p.tors_per_pod,
                  tor=[tor_names[t] for t in (np.arange(p.servers) // p.servers_per_tor).tolist()])
        up = _edge(p.server_ports, nic, hop_lat, medium, 0.0 if params.host_dac else length)
        G.add_edges_from((f"host{s}", tor_names[s // p.servers_per_tor], up) for s in range(p.servers))
    else:
        host = _edge(1, nic, hop_lat, medium, 0.0 if params.host_dac else length)
        G.add_edges_from((f"nic{g}", tor_names[t], host) for g, t in zip(gl, tl, strict=True))

    # ---- ToR -> agg (electrical) ------------------------------------------------------------------
    if A and p.tor_uplinks_eps:
        per_agg = np.bincount(np.arange(p.tor_uplinks_eps) // p.tor_links_per_agg).tolist()
        ups = [_edge(n, port, hop_lat, Medium.OPTICAL, length) for n in per_agg]
        G.add_edges_from((tor_names[t], agg_names[q * A + j], ups[j])
                         for t, q in enumerate(tor_pod.tolist()) for j in range(len(per_agg)))
    # ---- agg -> core (electrical) -----------------------------------------------------------------
    if p.cores and p.agg_uplinks_eps:
        i, j = np.divmod(np.arange(A * p.agg_uplinks_eps, dtype=np.int64), A)
        ell = i * A + j
        pairs = Counter(zip(j.tolist(), p.core_of_link(ell).tolist(), strict=True))
        G.add_edges_from((agg_names[q * A + jj], f"core{c}", _edge(cnt, port, hop_lat, Medium.OPTICAL, length))
                         for q in range(p.pods) for (jj, c), cnt in sorted(pairs.items()))

    layers: list[str] = []
    if ocs is not None:
        layers = _add_ocs(G, p, ocs, agg_names, tor_names, tor_pod, hop_lat / 2, length)

    tiers = ["tor"] + (["agg"] if A else []) + (["core"] if p.cores else [])
    G.graph.update({
        "kind": kind, "attach": p.attach, "gpus": p.gpus, "gpus_per_server": gps, "servers": p.servers,
        "nic_bps": nic, "port_bps": port, "switch_radix": k, "num_pods": p.pods, "tors": p.tors,
        "tors_per_pod": p.tors_per_pod, "tor_links_per_agg": p.tor_links_per_agg, "hosts_per_tor": p.hosts_per_tor, "servers_per_tor": p.servers_per_tor,
        "aggs_per_pod": A, "cores": p.cores, "tiers": tuple(tiers),
        "tor_uplinks": p.tor_uplinks if A else 0, "tor_uplinks_eps": p.tor_uplinks_eps if A else 0,
        "tor_uplinks_ocs": p.tor_uplinks_ocs if A else 0, "agg_keep": p.agg_keep,
        "agg_uplinks": p.agg_uplinks if A else 0, "agg_uplinks_eps": p.agg_uplinks_eps if A else 0,
        "agg_uplinks_ocs": p.agg_uplinks_ocs if A else 0, "core_keep": p.core_keep,
        "core_links_per_agg": p.core_links_per_agg if A else 0, "ocs_layers": tuple(layers),
    })
    return G


def add_hosts(G: nx.Graph, servers: int, gpus_per_server: int, nic_bps: float, *, pod: np.ndarray | None = None,
              tor: list[str] | None = None) -> None:
    """``host{s}`` forwarding nodes (role HOST) and the edge ``nic{g} -- host{s}`` of every GPU's NIC.

    The NIC--host edge is PCIE at the NIC speed with no latency (the NIC's own latency sits on gpu--nic):
    a GPU injects at most its NIC's rate, and the host pools the server's NIC links (a server relays
    between its NICs over PCIe/NVLink). Hosts carry ``server``, ``pod``, ``tor`` ("" without ToRs),
    ``index`` and ``radix`` (= NIC ports).
    """
    pods = pod.tolist() if pod is not None else [0] * servers
    tors = tor if tor is not None else [""] * servers
    G.add_nodes_from((f"host{s}", {"role": NodeRole.HOST, "server": s, "pod": int(q), "tor": t, "index": s,
                                   "radix": gpus_per_server, "port_bps": nic_bps})
                     for s, q, t in zip(range(servers), pods, tors, strict=True))
    link = _edge(1, nic_bps, 0.0, Medium.PCIE)
    G.add_edges_from((f"nic{g}", f"host{g // gpus_per_server}", link) for g in range(servers * gpus_per_server))


def nic_devices(G: nx.Graph, planes: Sequence[Sequence[str]], *, ports: int, count: int, wiring: str, radix: int,
                bidirectional: bool, region: int, bps: float, fibre_lat: float, length: float, device: str,
                count_key: str, radix_key: str, first: int = 0) -> int:
    """OCS (or patch-panel) devices of the ``nic`` layer: plane ``q`` = one port per host in ``planes[q]``.

    A plane (one NIC index of the servers of a region) lives wholly on one device (:func:`place_planes`);
    ``host--device`` FIBRE edges carry ``links`` = that host's ports on the device and latency
    ``fibre_lat`` (half a hop each side, so a circuit costs one hop). Devices are named
    ``ocs.nic.{first + k}`` with ``pod`` = ``region``. Returns the number of devices added.
    """
    sizes = [len(pl) for pl in planes]
    where, nocs = place_planes(sizes, ports, count, wiring, count_key=count_key, radix_key=radix_key, radix=radix)
    owners: list[list[str]] = [[] for _ in range(nocs)]
    plane_of: list[list[int]] = [[] for _ in range(nocs)]
    for q, (pl, o) in enumerate(zip(planes, where, strict=True)):
        owners[o].extend(pl)
        plane_of[o].extend([q] * len(pl))
    nodes = []
    edges = []
    for k in range(nocs):
        name = f"ocs.nic.{first + k}"
        pad = ports - len(owners[k])
        nodes.append((name, {"role": NodeRole.OCS, "layer": "nic", "pod": region, "index": first + k, "ports": ports,
                             "radix": radix, "bidirectional": bidirectional, "device": device,
                             "port_owner": tuple(owners[k]) + ("",) * pad,
                             "port_plane": tuple(plane_of[k]) + (-1,) * pad, "port_peer": (-1,) * ports}))
        for h, cnt in Counter(owners[k]).items():
            edges.append((h, name, _edge(cnt, bps, fibre_lat, Medium.FIBRE, length)))
    G.add_nodes_from(nodes)
    G.add_edges_from(edges)
    return nocs


def _add_span_planes(p: Plan, spec: OcsSpec, span: int, ports: int, agg_names: list[str], tor_names: list[str],
                     tor_pod: np.ndarray, fill: Any, key: Any) -> None:
    """Aggregation-layer planes spanning ``span`` pods (OCS attribute ``pod`` = -1).

    With ``G = ceil(pods / span)`` groups, ToR uplink plane ``q`` of the fibred share is cut into ``G``
    plane instances, each on one OCS: even planes group consecutive pods (pod ``i`` in group
    ``i * G // pods``), odd planes stride (group ``i mod G``), so a ToR meets both its neighbouring pods and
    pods half the fabric away on some of its planes. ``G = 1`` (all pods fit one OCS): every plane joins
    every ToR of the fabric.
    """
    A = p.aggs_per_pod
    P = p.pods
    G = _ceil(P / span)
    pod_tors: list[list[int]] = [[] for _ in range(P)]
    for t, q in enumerate(tor_pod.tolist()):
        pod_tors[q].append(t)
    items: list[tuple[list[str], list[str]]] = []
    for pi in range(p.tor_uplinks_ocs):
        a = (p.tor_uplinks_eps + pi) // p.tor_links_per_agg
        for gi in range(G):
            pods = [q for q in range(P) if (q % G if pi % 2 else q * G // P) == gi]
            tors = [t for q in pods for t in pod_tors[q]]
            if not tors:
                continue
            lower = [tor_names[t] for t in tors]
            upper = [agg_names[int(tor_pod[t]) * A + a] for t in tors] if pi < p.agg_keep else []
            items.append((lower, upper))
    sizes = [len(lo) + len(up) for lo, up in items]
    where, nocs = place_planes(sizes, ports, spec.agg_count, spec.wiring, count_key=key("agg_ocs_count"),
                               radix_key=key("ocs_radix"), radix=spec.radix)
    fill("agg", -1, items, where, nocs)


def _add_ocs(G: nx.Graph, p: Plan, spec: OcsSpec, agg_names: list[str], tor_names: list[str], tor_pod: np.ndarray,
             fibre_lat: float, length: float) -> list[str]:
    """Add the OCS devices and switch--OCS fibres of both layers; return the layers present."""
    ports = spec.radix if spec.bidirectional else spec.radix // 2

    def key(name: str) -> str:
        return f"{spec.path}.{name}" if spec.path else name

    A = p.aggs_per_pod if p.has_agg else 0
    layers: list[str] = []
    # Each OCS: list of (owner, plane, peer-offset) built plane by plane.
    devices: list[tuple[str, int, list[str], list[int], list[int]]] = []  # (layer, pod, owner, plane, peer)

    def fill(layer: str, pod: int, planes: list[tuple[list[str], list[str]]], where: list[int], nocs: int) -> None:
        per: list[tuple[list[str], list[int], list[int]]] = [([], [], []) for _ in range(nocs)]
        for q, ((lower, upper), o) in enumerate(zip(planes, where, strict=True)):
            owner, plane, peer = per[o]
            base = len(owner)
            owner.extend(lower)
            owner.extend(upper)
            plane.extend([q] * (len(lower) + len(upper)))
            if upper:
                nl = len(lower)
                peer.extend(base + nl + m for m in range(nl))
                peer.extend(base + m for m in range(nl))
            else:
                peer.extend([-1] * len(lower))
        for owner, plane, peer in per:
            devices.append((layer, pod, owner, plane, peer))

    # ---- aggregation layer: per pod ----------------------------------------------------------------
    span = spec.agg_span
    keep_mult = 2 if p.agg_keep else 1
    if span == 0:
        span = max(ports // max(p.tors_per_pod * keep_mult, 1), 1)
    if A and p.tor_uplinks_ocs and p.pods > 1 and span > 1:
        layers.append("agg")
        _add_span_planes(p, spec, min(span, p.pods), ports, agg_names, tor_names, tor_pod, fill, key)
    elif A and p.tor_uplinks_ocs:
        layers.append("agg")
        full = p.tors_per_pod
        sizes0 = [full * (2 if q < p.agg_keep else 1) for q in range(p.tor_uplinks_ocs)]
        where0, nocs = place_planes(sizes0, ports, spec.agg_count, spec.wiring, count_key=key("agg_ocs_count"),
                                    radix_key=key("ocs_radix"), radix=spec.radix)
        for q in range(p.pods):
            tors = [tor_names[t] for t in range(q * full, q * full + p.tors_in_pod(q))]
            planes = []
            for pi in range(p.tor_uplinks_ocs):
                a = (p.tor_uplinks_eps + pi) // p.tor_links_per_agg
                upper = [agg_names[q * A + a]] * len(tors) if pi < p.agg_keep else []
                planes.append((tors, upper))
            fill("agg", q, planes, where0, nocs)
    # ---- core layer: one set of OCSes for all pods --------------------------------------------------
    if A and p.pods > 1 and p.agg_uplinks_ocs:
        layers.append("core")
        nplanes = p.agg_uplinks_ocs * A
        ip, j = np.divmod(np.arange(nplanes, dtype=np.int64), A)
        keep = ip < p.core_keep
        ell = (p.agg_uplinks_eps + ip) * A + j
        core = np.where(keep, p.core_of_link(ell), -1).tolist()
        sizes = [p.pods * (2 if kp else 1) for kp in keep.tolist()]
        where, nocs = place_planes(sizes, ports, spec.core_count, spec.wiring, count_key=key("core_ocs_count"),
                                   radix_key=key("ocs_radix"), radix=spec.radix)
        planes = []
        for jj, c in zip(j.tolist(), core, strict=True):
            lower = [agg_names[q * A + jj] for q in range(p.pods)]
            planes.append((lower, [f"core{c}"] * p.pods if c >= 0 else []))
        fill("core", -1, planes, where, nocs)

    counters = {"agg": 0, "core": 0}
    nodes = []
    edges = []
    for layer, pod, owner, plane, peer in devices:
        name = f"ocs.{layer}.{counters[layer]}"
        pad = ports - len(owner)
        nodes.append((name, {"role": NodeRole.OCS, "layer": layer, "pod": pod, "index": counters[layer],
                             "ports": ports, "radix": spec.radix, "bidirectional": spec.bidirectional,
                             "port_owner": tuple(owner) + ("",) * pad, "port_plane": tuple(plane) + (-1,) * pad,
                             "port_peer": tuple(peer) + (-1,) * pad}))
        counters[layer] += 1
        for sw, cnt in Counter(owner).items():
            edges.append((sw, name, _edge(cnt, p.port_bps, fibre_lat, Medium.FIBRE, length)))
    G.add_nodes_from(nodes)
    G.add_edges_from(edges)
    return layers
