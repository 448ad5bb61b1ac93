"""Jupiter-style fabric: aggregation blocks (2-tier Clos pods) joined only through a core OCS layer.

Google's Jupiter (SIGCOMM'22, "Jupiter Evolving") removed the spine: every aggregation block's uplinks
land on OCS ports, and circuits join blocks directly; the block-level topology is engineered for the
traffic and changed rarely (topology engineering), not per phase. Here a *block* is one pod of the Clos
(ToRs and aggregation switches, fully electrical, non-blocking by default) and every aggregation uplink is
fibred to the core-layer OCS planes of :mod:`topologies._clos` (plane = (uplink index, aggregation index),
one port per pod). There is no core EPS, so traffic between pods rides circuits only
(``allow_circuit_only``), and the plant is not reconfigurable: one assignment for the job, chosen by the
circuit planner from the job's traffic (``circuit_template: solver``, Jupiter's traffic-aware topology
engineering) or a named template (``mesh``: uniform direct connect, Jupiter's traffic-agnostic default).

Parts (counted from the graph by :func:`rfabric.bom.bill_of_materials`): the ToR and aggregation EPS of
every block, one transceiver per aggregation uplink (the OCS does no O/E conversion), two OCS ports per
uplink (one with ``bidirectional_ocs``), no core switch, no core-side transceiver.
"""

from __future__ import annotations

from dataclasses import dataclass

from rfabric.config import ClusterConfig
from rfabric.parsing import choice, non_negative
from rfabric.topology import Topology
from topologies._params import TEMPLATES, OcsParams, RFabricParams, topology_params
from topologies._registry import REGISTRY
from topologies.rfabric_hybrid import build_plant


@dataclass(frozen=True, kw_only=True, slots=True)
class JupiterParams(OcsParams):
    """Aggregation blocks joined by a spine-free core OCS layer (:mod:`topologies.jupiter`).

    ``ocs_radix``, ``ocs_reconfig_s``, ``core_ocs_count``, ``ocs_wiring`` and ``bidirectional_ocs`` mean what
    they mean for ``rfabric``; ``circuit_template`` is ``solver`` (one assignment engineered from the job's
    traffic) or a named template (``mesh``, ``tree``, ``isolated_pod``).
    """

    core_ocs_count: int = non_negative(0)
    ocs_wiring: str = choice("striped", choices=("striped", "blocked"))
    bidirectional_ocs: bool = False
    circuit_template: str = choice("solver", choices=("solver", *TEMPLATES))


@REGISTRY.register("jupiter", JupiterParams)
def jupiter(params: JupiterParams, cluster: ClusterConfig, name: str = "jupiter", *, path: str = "") -> Topology:
    """Electrical blocks (ToR + aggregation), every aggregation uplink on the core OCS; circuits set once."""
    plant = RFabricParams(
        switch_radix=params.switch_radix, port_bps=params.port_bps, oversubscription=params.oversubscription,
        core_oversubscription=params.core_oversubscription, host_dac=params.host_dac,
        switch_latency_s=params.switch_latency_s, link_latency_s=params.link_latency_s,
        fibre_length_m=params.fibre_length_m, ocs_radix=params.ocs_radix, ocs_reconfig_s=params.ocs_reconfig_s,
        wiring="core", agg_ocs_share=0.0, agg_ocs_upper_share=0.0, agg_ocs_span=1, core_ocs_share=1.0,
        core_ocs_upper_share=0.0, core_ocs_count=params.core_ocs_count, ocs_wiring=params.ocs_wiring,
        bidirectional_ocs=params.bidirectional_ocs, allow_circuit_only=True)
    topo = build_plant(plant, cluster, name, kind="jupiter", reconfigurable=False, path=path,
                       circuit_template=params.circuit_template)
    return Topology(name=name, kind="jupiter", graph=topo.graph, params=topology_params(params),
                    ocs_reconfig_s=params.ocs_reconfig_s, reconfigurable=False)
