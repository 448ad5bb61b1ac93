"""Fabrics whose NICs are ports of a server node (mixnet, topoopt): circuits between hosts, host relaying."""

from __future__ import annotations

import numpy as np
import pytest

from rfabric.circuits import Circuit, CircuitAssignment, check_assignment
from rfabric.config import SimConfig
from rfabric.sim import simulate_flows
from rfabric.workload import FlowSet
from tests.sim.conftest import built

GB = 1e9


@pytest.mark.parametrize("routing", ["split", "spray", "hash", "adaptive"])
def test_mixnet_circuits_between_servers_and_the_electrical_share(routing: str) -> None:
    # 4 servers of 4 GPUs, one region: 3 NICs per server on the OCS, 1 on the (single) ToR.
    topo = built("mixnet", 16, 4, switch_radix=8, region_servers=4)
    owner = topo.graph.nodes["ocs.nic.0"]["port_owner"]
    assert owner[:8] == ("host0", "host1", "host2", "host3") * 2
    two = CircuitAssignment.of([Circuit("ocs.nic.0", 0, 1), Circuit("ocs.nic.0", 4, 5)])  # 2 x host0-host1
    check_assignment(topo, two)
    fs = FlowSet.build(np.arange(4), np.arange(4, 8), np.full(4, GB))  # server 0 -> server 1, GPU to GPU
    tr = simulate_flows(topo, fs, assignment=two, options=SimConfig(routing=routing, link_latency=False))
    if routing in ("split", "spray"):
        # circuits (1 hop, 800 G) are shorter than host-ToR-host (400 G): 2/3 of each flow on circuits;
        # 4 flows load the circuits 4 r 2/3 <= 800 G and the electrical NIC 4 r / 3 <= 400 G: r = 300 G
        assert tr.finish_s == pytest.approx(np.full(4, 8 * GB / 300e9), rel=1e-9)
        assert tr.optical_share == pytest.approx(np.full(4, 2 / 3))
    else:  # one path per pair: the circuit bundle or the electrical NIC
        assert set(np.round(tr.optical_share, 9)) <= {0.0, 1.0}
        assert tr.end_s >= 8 * 4 * GB / 1.2e12 - 1e-12
    none = simulate_flows(topo, fs, options=SimConfig(routing=routing, link_latency=False))
    assert none.finish_s == pytest.approx(np.full(4, 4 * 8 * GB / 400e9), rel=1e-9)  # one electrical NIC
    assert none.bytes_by_medium["optical"] == 0.0


def test_topoopt_relays_through_a_host() -> None:
    # 4 servers of 2 GPUs (server 3 idle), circuits host0-host1 (plane 0) and host1-host2 (plane 1) only.
    topo = built("topoopt", 8, 2)
    chain = CircuitAssignment.of([Circuit("ocs.nic.0", 0, 1), Circuit("ocs.nic.1", 1, 2)])
    check_assignment(topo, chain)
    fs = FlowSet.build(np.array([0, 2]), np.array([4, 5]), np.full(2, GB))  # server 0 -> 2 (relayed), 1 -> 2
    tr = simulate_flows(topo, fs, assignment=chain, options=SimConfig(routing="split", link_latency=False))
    # both cross the host1-host2 circuit (400 G): 200 G each
    assert tr.finish_s == pytest.approx([8 * GB / 200e9] * 2, rel=1e-9)
    assert tr.optical_share == pytest.approx([1.0, 1.0]) and tr.bytes_by_medium["electrical"] == 0.0
    alone = simulate_flows(topo, FlowSet.build(np.array([0]), np.array([4]), np.array([GB])), assignment=chain,
                           options=SimConfig(routing="split", link_latency=True))
    # 2 circuit hops of (0.5 + 0.5) us each, plus the NIC latency at both ends (1 us each)
    assert alone.finish_s[0] == pytest.approx(8 * GB / 400e9 + 2e-6 + 2e-6, rel=1e-9)


def test_topoopt_without_a_circuit_path_blocks_until_one_appears() -> None:
    topo = built("topoopt", 8, 2)
    fs = FlowSet.build(np.array([0]), np.array([4]), np.array([GB]))
    later = CircuitAssignment.of([Circuit("ocs.nic.0", 0, 2)])
    tr = simulate_flows(topo, fs, assignment=CircuitAssignment(), changes=[(0.5, later)],
                        options=SimConfig(routing="split", link_latency=False))
    assert tr.finish_s[0] == pytest.approx(0.5 + 8 * GB / 400e9, rel=1e-9)  # a static kind: no switching time
