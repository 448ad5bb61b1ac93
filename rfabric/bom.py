"""Counting a built fabric: bill of materials, bisection bandwidth, oversubscription.

Everything here is read off the graph a builder produced (never a closed-form formula); the tests check
the counts against the formulas. Counting rules of :func:`bill_of_materials`:

* ``switch``: one line per (tier, radix, port speed); ``switch_port`` = ports with a link or fibre (the sum
  of ``links`` over the switch's edges), ``switch_port_spare`` = radix minus that.
* ``nic_port``: one per NIC node, at the NIC speed.
* ``transceiver``: both ends of every OPTICAL link (a NIC end is tier ``host``); one at the switch end of
  every FIBRE to an OCS (the OCS does no optical-electrical conversion). COPPER (host DAC) links count as
  ``dac`` (tier ``host``) and need no transceiver.
* ``ocs``: devices per layer (``ocs.agg`` / ``ocs.core`` / ``ocs.nic``) with their physical radix; ``ocs_port``
  = wired duplex ports x 2 (Tx and Rx fibres), x 1 for a ``bidirectional`` (circulator) OCS. A device with
  ``device: patch_panel`` (TopoOpt's manual patch panel) counts as ``patch_panel`` / ``patch_panel_port``
  by the same rule.
* A ``host`` node (a server whose NICs are its ports: ``mixnet``, ``topoopt``) is not a switch: its links
  to a ToR count as DAC or transceivers like a NIC--ToR link (tier ``host``), and its fibres to NIC-level
  OCS ports one transceiver each at the NIC end (tier ``host``).
* ``fibre``: one per OPTICAL link and per switch--OCS link (a duplex run), grouped by layer and
  ``length_m``: ``host`` (NIC--ToR), ``agg`` (ToR--agg), ``core`` (agg--core), ``ocs.agg``, ``ocs.core``.
* ``gpu`` and ``server`` lines (tier ``host``) for whole-cluster figures.
Logical CIRCUIT edges (a graph from :func:`rfabric.circuits.logical_topology`) are not parts and are skipped.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import maximum_flow

from rfabric.circuits import CircuitAssignment, logical_topology
from rfabric.topology import SWITCH_ROLES, Medium, NodeRole, Topology


@dataclass(frozen=True, slots=True, order=True)
class BomLine:
    """``count`` parts of one kind.

    ``part`` is one of: ``switch`` (a box, ``radix`` ports at ``rate_bps``), ``switch_port`` (used ports),
    ``switch_port_spare``, ``nic_port``, ``transceiver``, ``dac``, ``ocs`` (a device of ``radix`` ports),
    ``ocs_port`` (ports fibred), ``fibre`` (with ``length_m`` per fibre), ``gpu``, ``server``.
    ``tier`` says where: ``host``, ``tor``, ``agg``, ``core``, ``ocs.agg``, ``ocs.core``, ...
    """

    part: str
    tier: str
    rate_bps: float = 0.0
    radix: int = 0
    count: int = 0
    length_m: float = 0.0


@dataclass(frozen=True, slots=True)
class BillOfMaterials:
    """Every part of one built fabric, counted from its graph (never from a formula)."""

    topology: str
    lines: tuple[BomLine, ...]
    num_gpus: int = 0

    def count(self, part: str, tier: str | None = None, rate_bps: float | None = None) -> int:
        return sum(ln.count for ln in self.lines if ln.part == part and (tier is None or ln.tier == tier)
                   and (rate_bps is None or math.isclose(ln.rate_bps, rate_bps)))

    def as_rows(self) -> list[dict[str, Any]]:
        return [{"part": ln.part, "tier": ln.tier, "rate_gbps": ln.rate_bps / 1e9, "radix": ln.radix,
                 "count": ln.count, "length_m": ln.length_m} for ln in self.lines]


_TIER = {NodeRole.NIC: "host", NodeRole.TOR: "tor", NodeRole.AGG: "agg", NodeRole.CORE: "core",
         NodeRole.GPU: "host", NodeRole.NVSWITCH: "host", NodeRole.HOST: "host"}
_RANK = {"host": 0, "tor": 1, "agg": 2, "core": 3}
_LAYER_OF_LINK = {"host": "host", "tor": "host", "agg": "agg", "core": "core"}
TIER_ORDER = ("host", "tor", "agg", "core", "ocs.nic", "ocs.agg", "ocs.core")
PART_ORDER = ("gpu", "server", "nic_port", "dac", "switch", "switch_port", "switch_port_spare", "transceiver",
              "ocs", "ocs_port", "patch_panel", "patch_panel_port", "fibre")


def _tier(g: Any, n: str) -> str:
    d = g.nodes[n]
    if d["role"] is NodeRole.OCS:
        return f"ocs.{d['layer']}"
    return _TIER[d["role"]]


def bill_of_materials(topology: Topology) -> BillOfMaterials:
    """Count every part of ``topology``'s physical graph (rules in the module docstring)."""
    g = topology.graph
    role = dict(g.nodes(data="role"))
    used: Counter[str] = Counter()
    xcvr: Counter[tuple[str, float]] = Counter()
    dac: Counter[tuple[str, float]] = Counter()
    fibre: Counter[tuple[str, float]] = Counter()
    for u, v, d in g.edges(data=True):
        med = d["medium"]
        if med in (Medium.NVLINK, Medium.PCIE, Medium.CIRCUIT):
            continue
        n = int(d.get("links", 1))
        for x in (u, v):
            if role[x] in SWITCH_ROLES:
                used[x] += n
        rate = float(d["link_bps"])
        tu, tv = _tier(g, u), _tier(g, v)
        if med is Medium.OPTICAL:
            xcvr[(tu, rate)] += n
            xcvr[(tv, rate)] += n
            top = tu if _RANK.get(tu, 9) >= _RANK.get(tv, 9) else tv
            fibre[(_LAYER_OF_LINK[top], float(d.get("length_m", 0.0)))] += n
        elif med is Medium.FIBRE:
            sw, layer = (tu, tv) if role[v] is NodeRole.OCS else (tv, tu)
            xcvr[(sw, rate)] += n
            fibre[(layer, float(d.get("length_m", 0.0)))] += n
        elif med is Medium.COPPER:
            dac[("host", rate)] += n
    lines: list[BomLine] = []
    gpus = [d for _, d in g.nodes(data=True) if d["role"] is NodeRole.GPU]
    lines.append(BomLine(part="gpu", tier="host", count=len(gpus)))
    lines.append(BomLine(part="server", tier="host", count=len({d["server"] for d in gpus})))
    nics: Counter[float] = Counter(float(d.get("port_bps", 0.0)) for _, d in g.nodes(data=True)
                                   if d["role"] is NodeRole.NIC)
    lines += [BomLine(part="nic_port", tier="host", rate_bps=r, count=c) for r, c in nics.items()]
    lines += [BomLine(part="dac", tier=t, rate_bps=r, count=c) for (t, r), c in dac.items()]
    boxes: Counter[tuple[str, int, float]] = Counter()
    ports_used: Counter[tuple[str, float]] = Counter()
    ports_spare: Counter[tuple[str, float]] = Counter()
    ocs_dev: Counter[tuple[str, str, int]] = Counter()
    ocs_ports: Counter[tuple[str, str]] = Counter()
    for n, d in g.nodes(data=True):
        r = d["role"]
        if r in SWITCH_ROLES:
            t, rate, radix = _TIER[r], float(d["port_bps"]), int(d["radix"])
            boxes[(t, radix, rate)] += 1
            ports_used[(t, rate)] += used[n]
            ports_spare[(t, rate)] += max(radix - used[n], 0)
        elif r is NodeRole.OCS:
            t = f"ocs.{d['layer']}"
            dev = "patch_panel" if d.get("device") == "patch_panel" else "ocs"
            ocs_dev[(dev, t, int(d.get("radix", d["ports"])))] += 1
            wired = sum(1 for o in d["port_owner"] if o)
            ocs_ports[(dev, t)] += wired * (1 if d.get("bidirectional", False) else 2)
    lines += [BomLine(part="switch", tier=t, rate_bps=rate, radix=k, count=c) for (t, k, rate), c in boxes.items()]
    lines += [BomLine(part="switch_port", tier=t, rate_bps=rate, count=c) for (t, rate), c in ports_used.items()]
    lines += [BomLine(part="switch_port_spare", tier=t, rate_bps=rate, count=c)
              for (t, rate), c in ports_spare.items() if c]
    lines += [BomLine(part="transceiver", tier=t, rate_bps=rate, count=c) for (t, rate), c in xcvr.items()]
    lines += [BomLine(part=dev, tier=t, radix=k, count=c) for (dev, t, k), c in ocs_dev.items()]
    lines += [BomLine(part=f"{dev}_port", tier=t, count=c) for (dev, t), c in ocs_ports.items()]
    lines += [BomLine(part="fibre", tier=t, count=c, length_m=length) for (t, length), c in fibre.items()]
    order = {p: i for i, p in enumerate(PART_ORDER)}
    torder = {t: i for i, t in enumerate(TIER_ORDER)}
    lines.sort(key=lambda ln: (order.get(ln.part, 99), torder.get(ln.tier, 99), ln.rate_bps, ln.radix, ln.length_m))
    return BillOfMaterials(topology=topology.name, lines=tuple(ln for ln in lines if ln.count), num_gpus=len(gpus))


# ----------------------------------------------------------------------------------------------------
# Bandwidth


def _logical(topology: Topology, assignment: CircuitAssignment | None) -> Topology:
    if assignment is None and not topology.has_ocs:
        return topology
    return logical_topology(topology, assignment)


def cut_bandwidth_bps(topology: Topology, side_a: np.ndarray, side_b: np.ndarray,
                      assignment: CircuitAssignment | None = None) -> float:
    """Max-flow / min-cut capacity (per direction) from GPU set ``side_a`` to GPU set ``side_b``.

    Solved with :func:`scipy.sparse.csgraph.maximum_flow` on the logical graph (circuits of ``assignment``
    included, OCS fibres excluded). Capacities are integers in a unit chosen so the flow fits in int32
    (1 Mb/s up to a few thousand GPUs, coarser beyond); the answer is exact to that unit per link.
    """
    lt = _logical(topology, assignment).compile()
    n = lt.num_nodes
    src, dst = n, n + 1
    a_nodes = lt.gpu_node[np.asarray(side_a, dtype=np.int64)]
    b_nodes = lt.gpu_node[np.asarray(side_b, dtype=np.int64)]
    if a_nodes.size == 0 or b_nodes.size == 0:
        return 0.0
    # An upper bound of the cut: everything leaving side_a's GPUs.
    out_cap = np.bincount(lt.arc_src, weights=lt.capacity_bps, minlength=n)
    bound = float(out_cap[a_nodes].sum())
    unit = 1e6
    while bound / unit > 2**30:
        unit *= 10
    cap = np.maximum(np.rint(lt.capacity_bps / unit), (lt.capacity_bps > 0).astype(np.float64)).astype(np.int64)
    big = np.int64(2**30)
    rows = np.concatenate([lt.arc_src, np.full(a_nodes.size, src), b_nodes]).astype(np.int32)
    cols = np.concatenate([lt.arc_dst, a_nodes, np.full(b_nodes.size, dst)]).astype(np.int32)
    data = np.concatenate([cap, np.full(a_nodes.size, big), np.full(b_nodes.size, big)])
    mat = sp.coo_matrix((data, (rows, cols)), shape=(n + 2, n + 2)).tocsr()
    mat.sum_duplicates()
    mat.data = np.minimum(mat.data, big).astype(np.int32)
    res = maximum_flow(mat, src, dst, method="dinic")
    return float(res.flow_value) * unit


def bisection_bandwidth_bps(topology: Topology, assignment: CircuitAssignment | None = None) -> float:
    """Capacity (per direction) of the min cut between GPUs ``[0, N/2)`` and ``[N/2, N)``.

    The builders place GPUs in index order (servers fill ToRs fill pods), so this split is pod-aligned --
    the worst balanced cut of a Clos -- and, for an RL cluster with as many trainer as rollout GPUs, the
    trainer/rollout split. With ``assignment`` the circuits count; without, an OCS fabric is measured on
    its always-on electrical path. A non-blocking fabric gives ``N/2 * nic_bps``.
    """
    n = topology.num_gpus
    half = n // 2
    return cut_bandwidth_bps(topology, np.arange(half), np.arange(half, n), assignment)


def oversubscription(topology: Topology) -> dict[str, float]:
    """Down/up capacity ratio per tier (worst switch of the tier), read off the physical graph.

    ``tor`` and ``agg`` count every uplink, fibres to an OCS included (what circuits can offer);
    on OCS plants ``tor.always_on`` / ``agg.always_on`` count only the electrical uplinks (``inf`` if none).
    Tiers without uplinks (the top tier) are left out.
    """
    g = topology.graph
    down: dict[str, float] = defaultdict(float)
    up: dict[str, float] = defaultdict(float)
    up_e: dict[str, float] = defaultdict(float)
    upper_of = {NodeRole.TOR: NodeRole.AGG, NodeRole.AGG: NodeRole.CORE}
    ocs_up_layer = {NodeRole.TOR: "agg", NodeRole.AGG: "core"}
    for u, v, d in g.edges(data=True):
        if d["medium"] in (Medium.NVLINK, Medium.PCIE, Medium.CIRCUIT):
            continue
        cap = float(d["capacity_bps"])
        for a, b in ((u, v), (v, u)):
            ra, rb = g.nodes[a]["role"], g.nodes[b]["role"]
            if ra not in upper_of:
                continue
            if rb is upper_of[ra]:
                up[a] += cap
                up_e[a] += cap
            elif rb is NodeRole.OCS:
                if topology.ocs_layer(b) == ocs_up_layer[ra]:
                    up[a] += cap
                else:
                    down[a] += cap
            elif rb is not NodeRole.OCS:
                down[a] += cap
    out: dict[str, float] = {}
    has_ocs = topology.has_ocs
    for role, tier in ((NodeRole.TOR, "tor"), (NodeRole.AGG, "agg")):
        nodes = [n for n in topology.nodes(role) if up.get(n, 0.0) > 0 and down.get(n, 0.0) > 0]
        if not nodes:
            continue
        out[tier] = max(down[n] / up[n] for n in nodes)
        if has_ocs:
            out[f"{tier}.always_on"] = max(down[n] / up_e[n] if up_e.get(n, 0.0) > 0 else float("inf")
                                           for n in nodes)
    return out


def fabric_report(topology: Topology) -> dict[str, Any]:
    """A plain summary of one fabric for the CLI: sizes, tiers, bisection, oversubscription, bill."""
    g = topology.graph
    bom = bill_of_materials(topology)
    gg = g.graph
    nic = topology.nic_bps
    bis = bisection_bandwidth_bps(topology)
    full = topology.num_gpus // 2 * nic
    return {
        "name": topology.name,
        "kind": topology.kind,
        "gpus": topology.num_gpus,
        "servers": bom.count("server"),
        "pods": gg.get("num_pods"),
        "tiers": list(gg.get("tiers", ())),
        "switches": {t: bom.count("switch", t) for t in ("tor", "agg", "core") if bom.count("switch", t)},
        "ocs": {t: bom.count("ocs", t) for t in ("ocs.nic", "ocs.agg", "ocs.core") if bom.count("ocs", t)},
        "ocs_ports": bom.count("ocs_port"),
        "transceivers": bom.count("transceiver"),
        "reconfigurable": topology.reconfigurable,
        "ocs_reconfig_s": topology.ocs_reconfig_s,
        "bisection_bps": bis,
        "full_bisection_bps": full,
        "bisection_ratio": bis / full if full else float("nan"),
        "oversubscription": oversubscription(topology),
        "bom": bom.as_rows(),
    }


__all__ = ["bill_of_materials", "bisection_bandwidth_bps", "cut_bandwidth_bps", "oversubscription", "fabric_report"]
