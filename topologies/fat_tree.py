"""Fat-tree: a 3-tier folded Clos at GPU granularity, non-blocking by default.

Servers of ``gpus_per_server`` GPUs joined by NVLink, one NIC per GPU on a ToR; ToR, aggregation and core
EPS of radix ``switch_radix``; ``oversubscription`` (ToR->agg) and ``core_oversubscription`` (agg->core)
thin the uplinks. Sizing and partial-pod rules: :mod:`topologies._clos`.

>>> from rfabric.config import ClusterConfig
>>> topo = fat_tree(FatTreeParams(switch_radix=4), ClusterConfig(trainer_gpus=8, rollout_gpus=8,
...                 gpus_per_server=2), "ft")
>>> topo.graph.graph["num_pods"], topo.graph.graph["tiers"]
(4, ('tor', 'agg', 'core'))
"""

from __future__ import annotations

from rfabric.config import ClusterConfig
from rfabric.topology import Topology
from topologies._clos import assemble, plan
from topologies._params import FatTreeParams, topology_params
from topologies._registry import REGISTRY


@REGISTRY.register("fat_tree", FatTreeParams)
def fat_tree(params: FatTreeParams, cluster: ClusterConfig, name: str = "fat_tree", *, path: str = "") -> Topology:
    """A 3-tier fat-tree (ToR, aggregation, core EPS) for ``cluster``; 1:1 unless oversubscribed."""
    p = plan(cluster, params, attach="tor", path=path)
    graph = assemble(p, cluster, params, kind="fat_tree")
    return Topology(name=name, kind="fat_tree", graph=graph, params=topology_params(params), reconfigurable=False)
