"""MixNet-style fabric: regional NIC-level OCS beside an electrical fat-tree, re-pointed per phase.

MixNet (Liao et al., SIGCOMM'25, "MixNet: A Runtime Reconfigurable Optical-Electrical Fabric for
Distributed Mixture-of-Experts Training") splits each server's NICs: ``nic_ocs_share`` of them (6 of 8 in
the paper's design) are fibred to the OCS ports of the server's *region* (``region_servers`` consecutive
servers), the rest attach to an ordinary electrical fat-tree that keeps every GPU reachable. Circuits join
servers' NICs inside a region and are re-pointed per phase by the circuit planner (the region's OCSes form
one solver domain whose nodes are the servers; demand is aggregated per server).

Model (conventions of :mod:`topologies`):

* every server is a ``host{s}`` forwarding node (role HOST); each GPU's NIC hangs off it, so a GPU injects
  at most its NIC's rate and the server pools its NIC links (MixNet forwards between a server's GPUs and
  NICs over NVLink);
* ``host{s}`` -- ToR: ``eps_nics = gpus_per_server - ocs_nics`` links (DAC by default); the Clos above is
  sized for those ports (:func:`topologies._clos.plan` with ``server_ports``);
* ``host{s}`` -- ``ocs.nic.{k}``: FIBRE, one link per OCS NIC on that device; plane ``q`` (NIC index ``q``
  of the OCS share) of a region is one port per server of the region, a plane lives wholly on one OCS.

Parts (counted from the graph by :func:`rfabric.bom.bill_of_materials`): N NIC ports (one per GPU); per
OCS NIC one transceiver (the OCS does no O/E conversion), two OCS ports (one with ``bidirectional_ocs``)
and one fibre; per electrical NIC a DAC (or two transceivers with ``host_dac: false``) and one ToR port;
the switches, ports and transceivers of the fat-tree built over the electrical NICs.
"""

from __future__ import annotations

from dataclasses import dataclass

from rfabric.config import ClusterConfig
from rfabric.errors import ConfigError
from rfabric.parsing import bounded, choice, non_negative
from rfabric.topology import Topology
from topologies._clos import _share, assemble, nic_devices, plan
from topologies._params import OcsParams, topology_params
from topologies._registry import REGISTRY


@dataclass(frozen=True, kw_only=True, slots=True)
class MixNetParams(OcsParams):
    """Regional NIC-level OCS plus an electrical fat-tree (:mod:`topologies.mixnet`).

    Attributes
    ----------
    nic_ocs_share : float
        Share of each server's NICs fibred to its region's OCS, in [0, 1) (rounded half up; a share below 1
        always leaves one NIC electrical). Default 0.75: 6 of 8 NICs, MixNet's design point.
    region_servers : int
        Servers per region (consecutive servers; the last region may be partial). Circuits join servers of
        one region only. Default 16 (128 GPUs; 16 x 6 = 96 duplex ports fit one 320-port OCS).
    ocs_radix, ocs_reconfig_s, ocs_wiring, bidirectional_ocs
        As for ``rfabric``: physical ports per OCS, circuit switching time (YAML ``ocs_reconfig_ms``,
        default 10 ms; both declared on :class:`~topologies._params.OcsParams`), plane placement, circulators.
    ocs_count : int
        OCS devices per region; 0 = the fewest that hold the region's planes.
    """

    nic_ocs_share: float = bounded(0.75, ge=0.0, lt=1.0)
    region_servers: int = bounded(16, ge=2)
    ocs_count: int = non_negative(0)
    ocs_wiring: str = choice("striped", choices=("striped", "blocked"))
    bidirectional_ocs: bool = False


@REGISTRY.register("mixnet", MixNetParams)
def mixnet(params: MixNetParams, cluster: ClusterConfig, name: str = "mixnet", *, path: str = "") -> Topology:
    """Regional NIC-level OCS (circuits between servers of a region) beside an electrical fat-tree."""

    def key(k: str) -> str:
        return f"{path}.{k}" if path else k

    gps = cluster.gpus_per_server
    ocs_nics = _share(params.nic_ocs_share, gps)
    eps_nics = gps - ocs_nics
    if eps_nics < 1:  # pragma: no cover - the share is < 1, so _share leaves one NIC electrical
        raise ConfigError(key("nic_ocs_share"), "leaves no electrical NIC per server", params.nic_ocs_share)
    p = plan(cluster, params, attach="tor", path=path, server_ports=eps_nics)
    graph = assemble(p, cluster, params, kind="mixnet", hosts=True)
    ports = params.ocs_radix if params.bidirectional_ocs else params.ocs_radix // 2
    hop_lat = params.link_latency_s + params.switch_latency_s
    R = params.region_servers
    regions = -(-p.servers // R)
    first = 0
    if ocs_nics:
        for r in range(regions):
            hosts = [f"host{s}" for s in range(r * R, min((r + 1) * R, p.servers))]
            if len(hosts) < 2:
                continue  # a lone server in the last region has no one to reach over its region's OCS
            first += nic_devices(graph, [hosts] * ocs_nics, ports=ports, count=params.ocs_count,
                                 wiring=params.ocs_wiring, radix=params.ocs_radix,
                                 bidirectional=params.bidirectional_ocs, region=r, bps=cluster.nic_bps,
                                 fibre_lat=hop_lat / 2, length=params.fibre_length_m, device="ocs",
                                 count_key=key("ocs_count"), radix_key=key("ocs_radix"), first=first)
    graph.graph.update({"ocs_layers": ("nic",) if first else (), "ocs_radix": params.ocs_radix,
                        "bidirectional_ocs": params.bidirectional_ocs, "ocs_ports": ports, "ocs_nics": ocs_nics,
                        "eps_nics": eps_nics, "region_servers": R, "regions": regions, "host_forwarding": True})
    return Topology(name=name, kind="mixnet", graph=graph, params=topology_params(params),
                    ocs_reconfig_s=params.ocs_reconfig_s, reconfigurable=True)
