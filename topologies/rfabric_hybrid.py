"""RFabric: ToR/leaf EPS kept, OCS at the aggregation and core layers, a thin always-on electrical path.

Wiring (numbering of planes and ports: :mod:`topologies._clos`):

* **Aggregation layer** (one set of ``agg_ocs_count`` OCSes per pod, OCS attribute ``pod`` = that pod).
  ``agg_ocs_share`` of each ToR's uplinks are fibred to the pod's OCSes; each such uplink index is a
  *plane* with one port per ToR of the pod. For the first ``agg_ocs_upper_share`` of the planes the
  aggregation switch the Clos would have used is kept, with one port per ToR fibred to the same OCS, so a
  circuit can join a ToR to an aggregation switch (``tree``) or directly to another ToR (``mesh``).
* **Core layer** (``core_ocs_count`` OCSes shared by all pods, ``pod`` = -1). ``core_ocs_share`` of each
  aggregation switch's uplinks are fibred; each (uplink index, aggregation index) is a plane with one port
  per pod, so a circuit joins two pods directly (spine-free). For the first ``core_ocs_upper_share`` of
  the uplink indices the core EPS port the Clos would have used is kept and fibred to the same OCS, so a
  circuit can also join an aggregation switch to a core EPS (``tree`` rebuilds the Clos).
* The other uplinks are ordinary electrical links: the **always-on** path, which must reach every GPU
  unless ``allow_circuit_only`` is set.

Defaults: ``agg_ocs_share=0`` (ToR->agg fully electrical, intra-pod non-blocking), ``core_ocs_share=0.75``
with ``core_ocs_upper_share=0`` (a quarter of the agg uplinks form a 4:1 always-on electrical core, the
rest are pod-to-pod circuits: three quarters of the core EPS ports and their transceivers become OCS
ports). With both upper shares at 1 (no thinning) the ``tree`` template reproduces the Clos exactly.
Circuits are duplex (one circuit = one OCS port pair); an OCS of ``ocs_radix`` physical ports offers
``ocs_radix // 2`` duplex ports, or ``ocs_radix`` with ``bidirectional_ocs`` (circulators).
"""

from __future__ import annotations

from rfabric.config import ClusterConfig
from rfabric.topology import Topology
from topologies._clos import OcsSpec, assemble, plan
from topologies._params import RFabricParams, topology_params
from topologies._registry import REGISTRY


def build_plant(params: RFabricParams, cluster: ClusterConfig, name: str, *, kind: str, reconfigurable: bool,
                path: str = "", circuit_template: str | None = None) -> Topology:
    """The OCS plant shared by ``rfabric``, ``static_ocs`` and ``jupiter``.

    ``circuit_template`` (fabrics whose circuits are set once) is recorded in the graph attributes as the
    graph is built (:attr:`rfabric.topology.Topology.circuit_template`); the graph is not changed after.
    """
    p = plan(cluster, params, attach="tor", path=path, agg_ocs_share=float(params.agg_ocs_share or 0.0),
             agg_ocs_upper_share=float(params.agg_ocs_upper_share or 0.0),
             core_ocs_share=float(params.core_ocs_share or 0.0),
             core_ocs_upper_share=float(params.core_ocs_upper_share or 0.0),
             allow_circuit_only=params.allow_circuit_only)
    spec = OcsSpec(radix=params.ocs_radix, bidirectional=params.bidirectional_ocs, agg_count=params.agg_ocs_count,
                   core_count=params.core_ocs_count, wiring=params.ocs_wiring, path=path,
                   agg_span=int(params.agg_ocs_span or 0))
    graph = assemble(p, cluster, params, kind=kind, ocs=spec)
    graph.graph.update({"ocs_radix": params.ocs_radix, "bidirectional_ocs": params.bidirectional_ocs,
                        "ocs_ports": params.ocs_radix if params.bidirectional_ocs else params.ocs_radix // 2})
    if circuit_template is not None:
        graph.graph["circuit_template"] = circuit_template
    return Topology(name=name, kind=kind, graph=graph, params=topology_params(params), ocs_reconfig_s=params.ocs_reconfig_s,
                    reconfigurable=reconfigurable)


@REGISTRY.register("rfabric", RFabricParams)
def rfabric(params: RFabricParams, cluster: ClusterConfig, name: str = "rfabric", *, path: str = "") -> Topology:
    """RFabric: EPS ToRs, OCS at the aggregation and core layers, re-pointed per phase."""
    return build_plant(params, cluster, name, kind="rfabric", reconfigurable=True, path=path)
