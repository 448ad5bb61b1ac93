"""Static OCS: the RFabric fibre plant with one circuit assignment for the whole job.

Topology engineering once (TopoOpt/Jupiter style): ``Topology.reconfigurable`` is False, so a planner sets
one assignment before the job. ``circuit_template`` (:attr:`rfabric.topology.Topology.circuit_template`) says which:
``solver`` (chosen from the whole workload's traffic) or a named template of :mod:`topologies.templates`.
"""

from __future__ import annotations

from rfabric.config import ClusterConfig
from rfabric.topology import Topology
from topologies._params import StaticOcsParams
from topologies._registry import REGISTRY
from topologies.rfabric_hybrid import build_plant


@REGISTRY.register("static_ocs", StaticOcsParams)
def static_ocs(params: StaticOcsParams, cluster: ClusterConfig, name: str = "static_ocs", *,
               path: str = "") -> Topology:
    """The RFabric plant with circuits set once for the whole job (not reconfigurable)."""
    return build_plant(params, cluster, name, kind="static_ocs", reconfigurable=False, path=path,
                       circuit_template=params.circuit_template)
