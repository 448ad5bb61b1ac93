"""TopoOpt-style direct-connect fabric: servers' NICs through OCSes / patch panels, one topology per job.

TopoOpt (Wang et al., NSDI'23, "TopoOpt: Co-optimizing Network Topology and Parallelization Strategy for
Distributed Training Jobs") has no packet switches: each of a server's ``d`` NICs (here one per GPU, so
``d = gpus_per_server``) is fibred to a port of an optical device (a patch panel for a topology set once
per job, or an OCS), NIC ``q`` of every server on the ``q``-th device. The topology (which servers each
device joins) is chosen once per job from its traffic -- TotientPerms rings for the all-reduce plus
demand-driven circuits -- and traffic between servers without a direct circuit is relayed through
intermediate servers (host forwarding).

Model (conventions of :mod:`topologies`):

* every server is a ``host{s}`` forwarding node (role HOST) and each GPU's NIC hangs off it (PCIe), so a
  GPU injects at most its NIC's rate and a host relays between its NICs; there is no ToR and no always-on
  electrical path: GPUs of different servers talk only over circuits (the routing's shortest paths
  through hosts);
* plane ``q`` = NIC ``q`` of every server (one port per server) lives wholly on one device
  (:func:`topologies._clos.place_planes`); with ``ocs_radix: 0`` each device is sized to one plane (TopoOpt's
  ``d`` devices of ``n`` ports);
* ``Topology.reconfigurable`` is False: the planner sets one assignment for the job (the solver's
  direct-connect planner, :mod:`solver.direct`), with ``ring_planes`` NIC planes held by ring circuits. The
  kind takes no ``ocs_reconfig_ms`` (never paid; ``Topology.ocs_reconfig_s`` is 0), so a run whose only
  fabrics are ``topoopt`` and EPS kinds must not set it in the shared ``topology:`` section.

Parts (counted from the graph by :func:`rfabric.bom.bill_of_materials`): N NIC ports; per NIC one
transceiver (NIC end; the device does no O/E conversion), two device ports (one with
``bidirectional_ocs``) and one fibre; no switch.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from rfabric.config import ClusterConfig
from rfabric.errors import ConfigError
from rfabric.parsing import choice, non_negative
from rfabric.topology import Medium, NodeRole, Topology
from topologies._clos import _edge, add_hosts, nic_devices
from topologies._params import topology_params
from topologies._registry import REGISTRY


@dataclass(frozen=True, kw_only=True, slots=True)
class TopoOptParams:
    """Direct-connect servers through optical devices, one topology per job (:mod:`topologies.topoopt`).

    Attributes
    ----------
    device : str
        ``patch_panel`` (default: a topology set once per job needs no fast switch; priced per port as
        ``patch_panel_port_usd``) or ``ocs`` (priced as ``ocs_port_usd``).
    ocs_radix : int
        Physical ports per device; 0 (default) = sized to hold one NIC plane (two ports per server, one
        with ``bidirectional_ocs``). A radix too small for one plane is a ``ConfigError``.
    ring_planes : int
        NIC planes the planner gives to ring circuits (TotientPerms: a ring takes two planes), so every
        server reaches every other over host forwarding; the other planes carry demand-driven circuits.
        Default 2 (one ring). Must be <= ``gpus_per_server``.
    bidirectional_ocs : bool
        Circulators: one fibre and one device port per NIC.
    switch_latency_s, link_latency_s : float
        Per-hop forwarding latency at a host and per-link propagation latency.
    fibre_length_m : float
        Length of every fibre run (500 m, the MixNet/TopoOpt costing convention).
    """

    device: str = choice("patch_panel", choices=("patch_panel", "ocs"))
    ocs_radix: int = non_negative(0)
    ring_planes: int = non_negative(2)
    bidirectional_ocs: bool = False
    switch_latency_s: float = non_negative(500e-9)
    link_latency_s: float = non_negative(500e-9)
    fibre_length_m: float = non_negative(500.0)
    circuit_template: str = choice("solver", choices=("solver",))
    """Only ``solver``: the planner engineers the job's one topology from its traffic."""


@REGISTRY.register("topoopt", TopoOptParams)
def topoopt(params: TopoOptParams, cluster: ClusterConfig, name: str = "topoopt", *, path: str = "") -> Topology:
    """Servers' NICs through per-plane optical devices; circuits set once per job, host forwarding."""

    def key(k: str) -> str:
        return f"{path}.{k}" if path else k

    gps = cluster.gpus_per_server
    servers = cluster.gpus // gps
    if params.ring_planes > gps:
        raise ConfigError(key("ring_planes"), f"exceeds the {gps} NICs (planes) of a server", params.ring_planes)
    per_port = 1 if params.bidirectional_ocs else 2
    radix = params.ocs_radix or per_port * servers
    ports = radix if params.bidirectional_ocs else radix // 2
    nic = cluster.nic_bps
    G = nx.Graph()
    g_idx = range(servers * gps)
    G.add_nodes_from((f"gpu{g}", {"role": NodeRole.GPU, "gpu": g, "server": g // gps, "tor": "", "pod": 0,
                                  "rail": g % gps}) for g in g_idx)
    G.add_nodes_from((f"nic{g}", {"role": NodeRole.NIC, "gpu": g, "server": g // gps, "tor": "", "pod": 0,
                                  "rail": g % gps, "port_bps": nic}) for g in g_idx)
    if gps > 1:
        G.add_nodes_from((f"nvs{s}", {"role": NodeRole.NVSWITCH, "server": s, "tor": "", "pod": 0})
                         for s in range(servers))
        nv = _edge(1, cluster.nvlink_bps, 0.0, Medium.NVLINK)
        G.add_edges_from((f"gpu{g}", f"nvs{g // gps}", nv) for g in g_idx)
    pcie = _edge(1, nic, cluster.nic_latency_s, Medium.PCIE)
    G.add_edges_from((f"gpu{g}", f"nic{g}", pcie) for g in g_idx)
    add_hosts(G, servers, gps, nic)
    hop_lat = params.link_latency_s + params.switch_latency_s
    hosts = [f"host{s}" for s in range(servers)]
    n_dev = 0
    if servers > 1:
        n_dev = nic_devices(G, [hosts] * gps, ports=ports, count=0, wiring="striped", radix=radix,
                            bidirectional=params.bidirectional_ocs, region=0, bps=nic, fibre_lat=hop_lat / 2,
                            length=params.fibre_length_m, device=params.device, count_key=key("ocs_radix"),
                            radix_key=key("ocs_radix"))
    G.graph.update({
        "kind": "topoopt", "attach": "host", "gpus": servers * gps, "gpus_per_server": gps, "servers": servers,
        "nic_bps": nic, "port_bps": nic, "switch_radix": 0, "num_pods": 1, "tors": 0, "tors_per_pod": 0,
        "hosts_per_tor": 0, "servers_per_tor": 0, "aggs_per_pod": 0, "cores": 0, "tiers": (),
        "ocs_layers": ("nic",) if n_dev else (), "ocs_radix": radix, "ocs_ports": ports,
        "bidirectional_ocs": params.bidirectional_ocs, "device": params.device, "ring_planes": params.ring_planes,
        "circuit_template": params.circuit_template, "host_forwarding": True,
    })
    return Topology(name=name, kind="topoopt", graph=G, params=topology_params(params), reconfigurable=False)
