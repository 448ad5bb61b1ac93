"""Hand-computed timelines (exact to 1e-9 relative) for simulate_flows."""

from __future__ import annotations

import numpy as np
import pytest

from rfabric.circuits import CircuitAssignment
from rfabric.config import SimConfig
from rfabric.errors import SimulationError
from rfabric.sim import simulate_flows
from rfabric.workload import FlowSet
from tests.sim.conftest import built, line_topology
from topologies.templates import circuit_template

EXACT = SimConfig(link_latency=False, routing="split")
GB = 1e9
B = 8e9  # 8 Gb/s = 1 GB/s


def approx(x: float) -> object:
    return pytest.approx(x, rel=1e-9, abs=0.0)


def test_one_flow_one_link() -> None:
    topo = line_topology([B])
    tr = simulate_flows(topo, FlowSet.build([0], [1], [3 * GB]), options=EXACT)
    assert tr.finish_s[0] == approx(3.0)
    assert tr.start_s[0] == 0.0 and tr.end_s == approx(3.0)
    assert tr.bytes_by_medium["electrical"] == approx(3 * GB)


def test_start_offset_and_delay() -> None:
    topo = line_topology([B])
    tr = simulate_flows(topo, FlowSet.build([0], [1], [1 * GB], delay_s=0.5), options=EXACT, start_s=2.0)
    assert tr.start_s[0] == approx(2.5) and tr.finish_s[0] == approx(3.5)


def test_two_equal_flows_share_a_link() -> None:
    topo = line_topology([B], hosts_per_switch=2)
    tr = simulate_flows(topo, FlowSet.build([0, 1], [2, 3], [1 * GB, 1 * GB]), options=EXACT)
    assert tr.finish_s.tolist() == [approx(2.0), approx(2.0)]


def test_flow_finishes_and_the_other_speeds_up() -> None:
    # 1 GB and 3 GB share 1 GB/s: both at 0.5 until t=2 (1 GB each), then the second alone: 2 GB more
    topo = line_topology([B], hosts_per_switch=2)
    tr = simulate_flows(topo, FlowSet.build([0, 1], [2, 3], [1 * GB, 3 * GB]), options=EXACT)
    assert tr.finish_s[0] == approx(2.0)
    assert tr.finish_s[1] == approx(4.0)
    assert tr.events == 2


def test_classic_three_link_example() -> None:
    # links 1, 2, 3 GB/s; f0 crosses all three, f1/f2/f3 one each. Rates 0.5, 0.5, 1.5, 2.5 GB/s.
    # f3 (1 GB) ends at 0.4 s, f2 (1 GB) at 2/3 s, f1 (0.5 GB) at 1 s; then f0 runs alone at 1 GB/s:
    # it sent 0.5 GB by t=1 and finishes its remaining 0.5 GB at 1.5 s.
    topo = line_topology([1 * B, 2 * B, 3 * B])
    fs = FlowSet.build([0, 0, 1, 2], [3, 1, 2, 3], [1 * GB, 0.5 * GB, 1 * GB, 1 * GB])
    tr = simulate_flows(topo, fs, options=EXACT)
    assert tr.finish_s.tolist() == [approx(1.5), approx(1.0), approx(2 / 3), approx(0.4)]


def test_stages_chain_and_delays() -> None:
    # chain 0: stage 0 (1 GB) then stage 1 (1 GB) after 0.25 s of compute; chain 1 independent
    topo = line_topology([B], hosts_per_switch=2)
    fs = FlowSet.build([0, 0, 1], [2, 2, 3], [GB, GB, GB], chain=[0, 0, 1], stage=[0, 1, 0], delay_s=[0, 0.25, 0])
    tr = simulate_flows(topo, fs, options=EXACT)
    # 0 and 2 share until t=2; stage 1 arrives at 2.25 and runs alone: ends 3.25
    assert tr.finish_s.tolist() == [approx(2.0), approx(3.25), approx(2.0)]
    assert tr.start_s[1] == approx(2.25)


def test_multiplicity_counts_copies() -> None:
    topo = line_topology([B], hosts_per_switch=2)
    fs = FlowSet.build([0, 1], [2, 3], [GB, GB], multiplicity=[3, 1])
    tr = simulate_flows(topo, fs, options=EXACT)
    assert tr.finish_s.tolist() == [approx(4.0), approx(4.0)]
    assert tr.bytes_by_medium["electrical"] == approx(4 * GB)


def test_latency_added_once_per_flow() -> None:
    topo = line_topology([B], latency_s=1e-3)  # nic-tor, tor-tor, tor-nic: 3 ms
    opts = SimConfig(link_latency=True, routing="split")
    fs = FlowSet.build([0, 0], [1, 1], [GB, GB], chain=0, stage=[0, 1])
    tr = simulate_flows(topo, fs, options=opts)
    assert tr.path_latency_s[0] == approx(3e-3)
    assert tr.finish_s.tolist() == [approx(1.003), approx(2.006)]


def test_zero_size_and_empty() -> None:
    topo = line_topology([B])
    tr = simulate_flows(topo, FlowSet.build([0, 0], [1, 1], [0.0, GB], chain=0, stage=[0, 1]), options=EXACT)
    assert tr.finish_s.tolist() == [0.0, approx(1.0)]
    tr = simulate_flows(topo, FlowSet.empty(), options=EXACT, start_s=1.5)
    assert tr.end_s == 1.5 and tr.events == 0


def test_merge_tolerance_bounds_the_error() -> None:
    topo = line_topology([B], hosts_per_switch=4)
    sizes = [1.0 * GB, 1.004 * GB, 2 * GB, 3 * GB]
    fs = FlowSet.build([0, 1, 2, 3], [4, 5, 6, 7], sizes)
    exact = simulate_flows(topo, fs, options=EXACT)
    merged = simulate_flows(topo, fs, options=SimConfig(link_latency=False, routing="split", merge_tolerance=0.01))
    assert merged.events < exact.events
    np.testing.assert_allclose(merged.finish_s, exact.finish_s, rtol=0.011)
    assert merged.bytes_by_medium["electrical"] == approx(sum(sizes))


def test_nvlink_inside_a_server() -> None:
    topo = built("fat_tree", 64, 8, switch_radix=16)
    nv = 3200e9 / 8  # bytes/s
    tr = simulate_flows(topo, FlowSet.build([0], [1], [nv]), options=EXACT)
    assert tr.finish_s[0] == approx(1.0)
    assert tr.nvlink[0] and tr.bytes_by_medium["nvlink"] == approx(nv)


def test_ring_all_reduce_non_blocking_fat_tree() -> None:
    """One GPU per server in a ring: 2(n-1)/n S / B, coalesced or step by step (+ latency per step)."""
    topo = built("fat_tree", 128, 8, switch_radix=16)
    n, s_bytes, b = 16, 4e9, 400e9 / 8
    ranks = np.arange(n) * 8
    nxt = np.roll(ranks, -1)
    coalesced = FlowSet.build(ranks, nxt, 2 * (n - 1) / n * s_bytes)
    tr = simulate_flows(topo, coalesced, options=EXACT)
    assert tr.end_s == approx(2 * (n - 1) / n * s_bytes / b)
    steps = 2 * (n - 1)
    exact = FlowSet.build(np.tile(ranks, steps), np.tile(nxt, steps), s_bytes / n, chain=0,
                          stage=np.repeat(np.arange(steps), n))
    tr = simulate_flows(topo, exact, options=EXACT)
    assert tr.end_s == approx(2 * (n - 1) / n * s_bytes / b)
    tr = simulate_flows(topo, exact, options=SimConfig(routing="split", link_latency=True))
    lat = tr.path_latency_s.max()
    assert lat > 0
    assert tr.end_s == approx(2 * (n - 1) * (s_bytes / n / b + lat))


def _cross_tor_all_to_all(topo_gpus: int, hosts_per_tor: int, size: float) -> FlowSet:
    g = np.arange(topo_gpus)
    src, dst = np.meshgrid(g, g, indexing="ij")
    m = src // hosts_per_tor != dst // hosts_per_tor
    return FlowSet.build(src[m], dst[m], size)


def test_all_to_all_oversubscribed_takes_twice() -> None:
    nb = built("fat_tree", 64, 1, switch_radix=16)
    ov = built("fat_tree", 64, 1, switch_radix=12, oversubscription=2)
    assert nb.graph.graph["hosts_per_tor"] == ov.graph.graph["hosts_per_tor"] == 8
    fs = _cross_tor_all_to_all(64, 8, 1e8)
    t_nb = simulate_flows(nb, fs, options=EXACT).end_s
    t_ov = simulate_flows(ov, fs, options=EXACT).end_s
    assert t_nb == approx(56 * 1e8 / (400e9 / 8))
    assert t_ov == approx(2 * t_nb)


def _circuit_only() -> tuple[object, CircuitAssignment]:
    topo = built("rfabric", 32, 2, switch_radix=8, core_ocs_share=1.0, allow_circuit_only=True)
    return topo, circuit_template(topo, "mesh")


def test_reconfiguration_interrupts_a_transfer_for_exactly_10ms() -> None:
    topo, mesh = _circuit_only()
    assert topo.ocs_reconfig_s == 0.01
    fs = FlowSet.build([0], [31], [1e9])  # pod 0 -> pod 1: only circuits join them
    base = simulate_flows(topo, fs, assignment=mesh, options=EXACT)
    changes = [(0.005, CircuitAssignment()), (0.005, mesh)]  # re-point: dark for 10 ms
    tr = simulate_flows(topo, fs, assignment=mesh, changes=changes, options=EXACT)
    assert base.finish_s[0] == approx(1e9 / 50e9)
    assert tr.finish_s[0] == approx(base.finish_s[0] + 0.01)
    assert tr.bytes_by_medium["optical"] == approx(1e9)


def test_no_path_and_no_change_is_an_error() -> None:
    topo, _ = _circuit_only()
    with pytest.raises(SimulationError, match="never finish"):
        simulate_flows(topo, FlowSet.build([0], [31], [1e9]), options=EXACT)


def test_circuits_spill_to_the_electrical_path_while_dark() -> None:
    topo = built("rfabric", 128, 8, switch_radix=16)  # default: 3/4 of the core on circuits
    mesh = circuit_template(topo, "mesh")
    fs = FlowSet.build([0], [127], [1e9])  # pod 0 -> pod 1
    lit = simulate_flows(topo, fs, assignment=mesh, options=EXACT)
    dark = simulate_flows(topo, fs, assignment=None, options=EXACT)
    assert lit.bytes_by_medium["optical"] > 0 and dark.bytes_by_medium["optical"] == 0
    both = simulate_flows(topo, fs, assignment=mesh, changes=[(0.0, CircuitAssignment()), (0.0, mesh)],
                          options=EXACT)
    assert lit.end_s <= both.end_s <= dark.end_s + 0.01
    assert both.bytes_by_medium["optical"] + both.bytes_by_medium["electrical"] == approx(1e9)
