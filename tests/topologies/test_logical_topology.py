"""The logical topology a circuit assignment realises (rfabric.circuits.logical_topology) and the typed
accessors of the builders' attributes (issue #12: description apart from realisation)."""

from __future__ import annotations

import networkx as nx
import pytest

import topologies
from rfabric.circuits import LogicalTopology, logical_topology
from rfabric.config import ClusterConfig
from rfabric.topology import Medium, NodeRole
from topologies.templates import circuit_template

CLUSTER = ClusterConfig(trainer_gpus=64, rollout_gpus=64)


def test_realising_circuits_leaves_the_physical_fabric_alone() -> None:
    rf = topologies.build("rfabric", {"switch_radix": 16, "wiring": "core"}, CLUSTER)
    before = nx.to_dict_of_dicts(rf.graph)
    tree = circuit_template(rf, "tree")
    lt = logical_topology(rf, tree)
    assert isinstance(lt, LogicalTopology) and lt.physical is rf and lt.assignment is tree
    assert not lt.has_ocs and rf.has_ocs
    assert not any(d["medium"] is Medium.FIBRE for _, _, d in lt.graph.edges(data=True))
    circuits = sum(d.get("circuits", 0) for _, _, d in lt.graph.edges(data=True))
    assert circuits == len(tree)  # every circuit is on exactly one logical edge
    assert nx.to_dict_of_dicts(rf.graph) == before
    base = logical_topology(rf)
    assert base.assignment is None and sum(d.get("circuits", 0) for _, _, d in base.graph.edges(data=True)) == 0
    assert lt.ocs_reconfig_s == rf.ocs_reconfig_s and lt.num_gpus == rf.num_gpus


def test_typed_accessors_read_what_the_builders_wrote() -> None:
    so = topologies.build("static_ocs", {"switch_radix": 16, "wiring": "core", "circuit_template": "mesh"}, CLUSTER)
    assert so.circuit_template == "mesh"
    assert topologies.build("rfabric", {"switch_radix": 16}, CLUSTER).circuit_template == "solver"
    assert so.nic_bps == CLUSTER.nic_bps
    ocs = so.ocs_nodes[0]
    assert so.ocs_layer(ocs) in ("agg", "core")
    owner = so.port_owner(ocs)
    assert len(owner) == so.graph.nodes[ocs]["ports"]
    assert all(so.graph.nodes[sw]["role"] in (NodeRole.TOR, NodeRole.AGG, NodeRole.CORE) for sw in owner if sw)
    with pytest.raises(KeyError):
        so.port_owner("no-such-ocs")
