"""Rail-optimised Clos: NIC ``i`` of every server in a rail group attaches to rail leaf ``i``; spines above.

A rail group is the ``h`` servers whose NICs share a set of ``gpus_per_server`` leaves (``h`` = host ports
per leaf). Leaves are ToR-role nodes (``tor{t}``, attribute ``rail``), spines are AGG-role nodes and, when
more than one pod (whole rail groups under one set of spines) is needed, a core tier joins the pods. Sizing
rules are those of :mod:`topologies._clos` with ``rail`` attachment.
"""

from __future__ import annotations

from rfabric.config import ClusterConfig
from rfabric.topology import Topology
from topologies._clos import assemble, plan
from topologies._params import RailOptimizedParams, topology_params
from topologies._registry import REGISTRY


@REGISTRY.register("rail_optimized", RailOptimizedParams)
def rail_optimized(params: RailOptimizedParams, cluster: ClusterConfig, name: str = "rail_optimized", *,
                   path: str = "") -> Topology:
    """A rail-optimised leaf/spine(/core) fabric: one leaf per rail per rail group."""
    p = plan(cluster, params, attach="rail", path=path)
    graph = assemble(p, cluster, params, kind="rail_optimized")
    return Topology(name=name, kind="rail_optimized", graph=graph, params=topology_params(params), reconfigurable=False)
