"""The cross-check scenarios: ordinary run configs, built by the real fabric builders and workloads.

Every scenario is a run config with one fabric and a ``kind: collective`` workload. :func:`build_case`
turns it into what both backends play, through :mod:`rfabric.api` -- the fabric from
``api.build_topology`` (``topologies.build``), the flows from ``api.build_workload`` (``traffic``), the
circuits from ``api.plan_circuits`` (``solver``) -- so ``rfabric validate`` checks exactly the objects a
run simulates. A scenario with ``previous`` (a workload mapping) starts on the circuits planned for that
workload and re-points them to its own plan at time zero, as the simulator's step timeline does between
two phases with different plans: removed circuits go dark at once, the new ones come up after the
fabric's ``ocs_reconfig_s``.

Clusters are small enough for ns-3: one-GPU servers on 10 Gb/s NICs, 4-port switches (a k=4 fat-tree
has 16 GPUs in 4 pods).

>>> sorted(SCENARIOS)[:3]
['fat_tree_all_to_all_hash', 'fat_tree_all_to_all_spray', 'fat_tree_ring_all_reduce_hash']
>>> SCENARIOS["fat_tree_all_to_all_hash"].routing
'hash'
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rfabric import api
from rfabric.circuits import CircuitAssignment
from rfabric.config import RunConfig
from rfabric.topology import Topology
from rfabric.workload import FlowSet

__all__ = ["SCENARIOS", "Case", "Scenario", "build_case", "routing_of"]

#: the cluster of every scenario unless it says otherwise: 16 one-GPU servers on 10 Gb/s NICs
CLUSTER = {"trainer_gpus": 8, "rollout_gpus": 8, "gpus_per_server": 1, "nic_gbps": 10}
#: 4-port switches: the 16 GPUs make a k=4 fat-tree (4 pods of 2 ToRs + 2 aggregation switches, 4 cores)
TOPOLOGY = {"switch_radix": 4}
#: a one-pod-per-two-ToRs RFabric: one of each ToR's two uplinks on the pod's OCS, the aggregation
#: switch's matching port on the same OCS (circuits join ToR--ToR or ToR--aggregation), electrical core
RFABRIC = {"name": "rfabric", "kind": "rfabric", "wiring": "core", "agg_ocs_share": 0.5,
           "agg_ocs_upper_share": 1.0, "core_ocs_share": 0.0, "ocs_radix": 16, "ocs_reconfig_ms": 1.0}


#: ns-3 forwarding of every scenario: the flow model's next hops, each packet to the least-queued one
PACKET = {"ecmp": "pinned", "spray": "least_queued"}


@dataclass(frozen=True, slots=True)
class Scenario:
    """One cross-check case as data: a run config (one fabric) and how ns-3 routes it.

    ``config``: a run config mapping (``cluster``/``topology`` default to :data:`CLUSTER` /
    :data:`TOPOLOGY`). ``previous``: a workload mapping whose planned circuits are lit when the phase
    starts (None: the phase starts on its own plan). ``packet``: :class:`validation.backend.PacketOptions`
    fields of this scenario; by default ns-3 forwards every GPU pair over the flow model's next hops
    (``ecmp: pinned``), each packet to the least-queued one (``spray: least_queued``, adaptive spraying);
    under ``hash`` that is one path per pair. ``scale_quick``: size factor of ``--quick``.
    """

    name: str
    description: str
    config: Mapping[str, Any]
    previous: Mapping[str, Any] | None = None
    packet: Mapping[str, Any] = field(default_factory=lambda: dict(PACKET))
    scale_quick: float = 0.25

    @property
    def routing(self) -> str:
        """The flow model's routing model of this scenario (``sim.routing``)."""
        return str(self.config.get("sim", {}).get("routing", "spray"))


@dataclass(frozen=True, slots=True, eq=False)
class Case:
    """A scenario built: the physical fabric, the phase's flows, the circuits lit at time zero and the
    timed changes, the run config and the flow model's routing mode."""

    scenario: Scenario
    config: RunConfig
    topology: Topology
    flows: FlowSet
    assignment: CircuitAssignment | None
    changes: tuple[tuple[float, CircuitAssignment], ...]

    @property
    def routing(self) -> str:
        return routing_of(self.config)


def routing_of(config: RunConfig) -> str:
    """The flow model's routing model of a run config (``sim.routing``)."""
    return str(config.sim.routing)


def _config(scenario: Scenario, quick: bool) -> dict[str, Any]:
    data = copy.deepcopy(dict(scenario.config))
    data.setdefault("cluster", dict(CLUSTER))
    data.setdefault("topology", dict(TOPOLOGY))
    data["reference"] = data["fabrics"][0]["name"]
    if quick:
        wl = data["workload"]
        wl["size_bytes"] = float(wl.pop("size_mb")) * 1e6 * scenario.scale_quick
    return data


def build_case(scenario: Scenario, *, quick: bool = False) -> Case:
    """Build ``scenario`` with the real builders (through :mod:`rfabric.api`).

    ``quick``: transfer sizes times ``scenario.scale_quick``. Raises ``ConfigError`` for a bad config
    and ``RfabricError`` if the workload has more than one phase step.
    """
    from rfabric.errors import RfabricError

    data = _config(scenario, quick)
    cfg = api.load_config(data)
    topo = api.build_topology(cfg)
    wl = api.build_workload(cfg)
    if len(wl.phases) != 1:
        raise RfabricError(f"scenario '{scenario.name}': a validation workload has one phase step, "
                           f"not {len(wl.phases)}")
    flows = wl.phases[0].flows
    assignment: CircuitAssignment | None = None
    changes: tuple[tuple[float, CircuitAssignment], ...] = ()
    if topo.has_ocs:
        assignment = api.plan_circuits(cfg, topo, wl).assignments[0]
        if scenario.previous is not None:
            prev_cfg = api.load_config({**data, "workload": dict(scenario.previous)})
            before = api.plan_circuits(prev_cfg, topo, api.build_workload(prev_cfg)).assignments[0]
            if before.circuits != assignment.circuits:
                assignment, changes = before, ((0.0, assignment),)
    return Case(scenario=scenario, config=cfg, topology=topo, flows=flows, assignment=assignment, changes=changes)


def _fat_tree(routing: str, workload: Mapping[str, Any], **params: Any) -> dict[str, Any]:
    return {"fabrics": [{"name": "fat_tree", "kind": "fat_tree", **params}], "workload": dict(workload),
            "sim": {"routing": routing}}


_RING = {"kind": "collective", "collective": "all_reduce", "algorithm": "ring", "collective_stages": "exact",
         "size_mb": 64}
_A2A = {"kind": "collective", "collective": "all_to_all", "size_mb": 64}
_A2A_POD = {"kind": "collective", "collective": "all_to_all", "group_size": 4, "size_mb": 16}
_A2A_CROSS = {"kind": "collective", "collective": "all_to_all", "group_size": 4, "group_layout": "strided",
              "size_mb": 16}


def _scenarios() -> dict[str, Scenario]:
    spray, hash_ = "spray", "hash"
    out = [
        Scenario("single_flow", "two GPUs on one ToR, 8 MB each way (NIC-bound)",
                 {"cluster": {**CLUSTER, "trainer_gpus": 1, "rollout_gpus": 1},
                  **_fat_tree(spray, {"kind": "collective", "collective": "p2p", "size_mb": 8})}),
        Scenario("shared_bottleneck", "2:1 fat-tree, both GPUs of every ToR send 4 MB to another pod "
                 "(two flows per ToR uplink)",
                 _fat_tree(spray, {"kind": "collective", "collective": "p2p", "group_size": 2,
                                   "group_layout": "strided", "size_mb": 4}, oversubscription=2)),
        Scenario("fat_tree_ring_all_reduce_spray", "ring all-reduce (30 steps) of 64 MB over the 16 GPUs of a "
                 "k=4 fat-tree, packets sprayed", _fat_tree(spray, _RING)),
        Scenario("fat_tree_ring_all_reduce_hash", "the same ring, one hashed path per GPU pair",
                 _fat_tree(hash_, _RING)),
        Scenario("fat_tree_all_to_all_spray", "all-to-all of 64 MB per GPU over a k=4 fat-tree, packets sprayed",
                 _fat_tree(spray, _A2A)),
        Scenario("fat_tree_all_to_all_hash", "the same all-to-all, one hashed path per GPU pair",
                 _fat_tree(hash_, _A2A)),
        Scenario("rfabric_all_to_all_direct", "all-to-all of 16 MB inside each pod of a 16-GPU RFabric on its "
                 "planned ToR-ToR circuits (split with the electrical path by capacity)",
                 {"fabrics": [RFABRIC], "workload": _A2A_POD, "sim": {"routing": spray}}),
        Scenario("rfabric_all_to_all_reconfig", "all-to-all of 64 MB per GPU over a 16-GPU RFabric; the circuits "
                 "planned for a pod-local all-to-all are re-pointed to ToR-aggregation circuits at the start "
                 "(1 ms dark)", {"fabrics": [RFABRIC], "workload": _A2A, "sim": {"routing": spray}}, previous=_A2A_POD),
        Scenario("rfabric_all_to_all_cross_pod", "all-to-all of 16 MB among one GPU per pod (4 groups) on the "
                 "RFabric: NICs and every tier at 100 % load; circuits re-pointed at the start (1 ms dark)",
                 {"fabrics": [RFABRIC], "workload": _A2A_CROSS, "sim": {"routing": spray}}, previous=_A2A_POD),
        Scenario("rfabric_ring_all_reduce_reconfig", "ring all-reduce (30 steps) of 64 MB over a 16-GPU RFabric; "
                 "circuits re-pointed from the pod-local all-to-all plan at the start (1 ms dark)",
                 {"fabrics": [RFABRIC], "workload": _RING, "sim": {"routing": spray}}, previous=_A2A_POD),
    ]
    return {s.name: s for s in out}


#: the scenario set of ``rfabric validate``, by name
SCENARIOS: dict[str, Scenario] = _scenarios()
