"""Circuits per epoch of a pipelined step: a hand-built interleaved case where dynamic beats static OCS."""

from __future__ import annotations

from dataclasses import replace

import networkx as nx
import pytest

import solver
from rfabric import api
from rfabric.circuits import Circuit, CircuitAssignment, check_assignment
from rfabric.config import SimConfig
from rfabric.sim import simulate
from rfabric.topology import Medium, NodeRole, Topology
from rfabric.workload import FlowSet, PhaseStep, Schedule, Workload

BIG = 1e15
E = 8e9  # 1 GB/s electrical ToR uplink
C = 32e9  # 4 GB/s per circuit
GB = 1e9


def approx(x: float) -> object:
    return pytest.approx(x, rel=1e-9)


def triangle(reconfig_s: float = 0.1) -> Topology:
    """Three ToRs, each with a trainer GPU (even id) and a rollout GPU (odd id) -- interleaved placement --,
    a 1 GB/s uplink each to one aggregation switch (the always-on path) and ONE port each on one OCS."""
    g = nx.Graph()
    g.add_node("agg0", role=NodeRole.AGG, radix=64, port_bps=E, pod=0, index=0)
    for s in range(3):
        g.add_node(f"tor{s}", role=NodeRole.TOR, radix=64, port_bps=C, pod=0, index=s)
        g.add_edge(f"tor{s}", "agg0", links=1, link_bps=E, capacity_bps=E, latency_s=0.0, medium=Medium.OPTICAL)
        for h in range(2):
            gi = 2 * s + h
            g.add_node(f"gpu{gi}", role=NodeRole.GPU, gpu=gi, server=gi, tor=f"tor{s}", pod=0)
            g.add_node(f"nic{gi}", role=NodeRole.NIC, gpu=gi, server=gi, tor=f"tor{s}", pod=0, port_bps=BIG)
            g.add_edge(f"gpu{gi}", f"nic{gi}", links=1, link_bps=BIG, capacity_bps=BIG, latency_s=0.0,
                       medium=Medium.PCIE)
            g.add_edge(f"nic{gi}", f"tor{s}", links=1, link_bps=BIG, capacity_bps=BIG, latency_s=0.0,
                       medium=Medium.COPPER)
    g.add_node("ocs.agg.0", role=NodeRole.OCS, layer="agg", ports=3, port_owner=("tor0", "tor1", "tor2"), pod=0,
               index=0)
    for s in range(3):
        g.add_edge(f"tor{s}", "ocs.agg.0", links=1, link_bps=C, capacity_bps=C, latency_s=0.0, medium=Medium.FIBRE)
    return Topology(name="triangle", kind="rfabric", graph=g, ocs_reconfig_s=reconfig_s, reconfigurable=True)


def _ph(name: str, tag: str, fs: FlowSet, before: float) -> PhaseStep:
    return PhaseStep(name=name, phase=tag, flows=fs, num_gpus=6, compute_before_s=before)


def test_dynamic_circuits_beat_static_when_the_union_changes() -> None:
    # rollout: 10 GB tor0 -> tor1 (GPU 1 -> 3) at once; training: 4 s of compute, then 5 GB tor1 -> tor2 (GPU 2 -> 4);
    # weight sync: 0.5 s (reload), no network traffic. Both pairs need tor1's single OCS port.
    wl = Workload(name="w", num_gpus=6, schedule=Schedule(mode="one_step_off"), phases=(
        _ph("rollout", "rollout", FlowSet.build([1], [3], [10 * GB]), 0.0),
        _ph("train", "train", FlowSet.build([2], [4], [5 * GB]), 4.0),
        _ph("weight_sync", "weight_sync", FlowSet.empty(), 0.5)))
    topo = triangle()
    opts = solver.parse_options({}, "solver")
    sim = SimConfig(link_latency=False, routing="split", steps=2)
    a01 = CircuitAssignment.of([Circuit("ocs.agg.0", 0, 1)])
    a12 = CircuitAssignment.of([Circuit("ocs.agg.0", 1, 2)])

    # static: one assignment for the union (10 GB on 0-1 beats 5 GB on 1-2: concurrent throughput 0.2 vs 0.1):
    # rollout 10 GB at 4 + 1 GB/s = [0, 2]; training's 5 GB from 4 s on the electrical 1 GB/s = [0, 9];
    # sync [9, 9.5]: period 9.5 s
    static_sched = solver.plan_schedule(topo, wl, replace(opts, reconfig="never"), seed=0)
    static = simulate(topo, wl, static_sched, options=sim)
    assert static_sched.assignments[0] == a01
    assert static.iteration_time_s == approx(9.5)

    # dynamic: the epochs predicted from the phases' compute and NIC time alone (rollout ~0 s, training 4 s,
    # sync 0.5 s) give the planner the same sequence with a 4 s idle window before training's traffic.
    # Simulated: epochs {rollout, train} [0, 2] -> 0-1; {train} [2, 5] -> 1-2 (dark 2.0-2.1, hidden by the 4 s of
    # compute: the flow starts at 4 on the circuit, 5 GB at 5 GB/s = 1 s); {weight_sync} [5, 5.5] -> 0-1 again,
    # pre-positioned for the next rollout (up at 5.1, before it starts at 5.5): period 5 + 0.5 = 5.5 s
    sched = api.plan_epochs(topo, wl, opts, seed=0, nic_bps=BIG, gpus_per_server=1)
    dyn = simulate(topo, wl, sched, options=sim)
    assert [d.phase for d in sched.decisions] == ["rollout+train", "train", "weight_sync"]
    assert list(sched.assignments) == [a01, a12, a01]
    for a in sched.assignments:
        assert check_assignment(topo, a) == []
    assert dyn.iteration_time_s == approx(5.5)
    p = {ph.name: ph for ph in dyn.phases}
    assert (p["train"].end_s - p["train"].start_s) == approx(5.0)
    eps = [(e["phases"], e["circuits_changed"]) for e in dyn.extra["epochs"][:3]]
    assert eps == [(["rollout", "train"], 0), (["train"], 1), (["weight_sync"], 1)]
    assert dyn.reconfig_time_s == approx(2 * 0.1)  # two reconfigurations per step, both hidden
    assert all(ph.reconfig_exposed_s == 0.0 for ph in dyn.phases)


def test_split_auto_picks_the_fastest_estimated_split() -> None:
    from rfabric.errors import ConfigError

    cfg = api.load_config(overrides={"cluster.split": "auto", "fabrics": ["fat_tree"]})
    chosen, tried = api.choose_split(cfg)
    total = cfg.cluster.trainer_gpus + cfg.cluster.rollout_gpus
    assert chosen.cluster.trainer_gpus + chosen.cluster.rollout_gpus == total
    assert chosen.cluster.trainer_gpus % 8 == 0 and chosen.cluster.trainer_gpus > 0
    ok = [r for r in tried if "period_per_sequence_s" in r]
    best = min(ok, key=lambda r: r["period_per_sequence_s"])
    assert chosen.cluster.trainer_gpus == best["trainer_gpus"]
    assert len({r["trainer_gpus"] for r in tried}) == len(tried) >= 8
    # the explicit split is left alone
    assert api.choose_split(api.load_config())[1] == []
    one_server = replace(cfg, cluster=replace(cfg.cluster, trainer_gpus=8, rollout_gpus=0))
    with pytest.raises(ConfigError, match="cluster.split"):
        api.choose_split(one_server)


def test_estimate_period_matches_the_simulated_compute_only_pipeline() -> None:
    from rfabric.sim.pipeline import estimate_period

    phases = (_ph("rollout", "rollout", FlowSet.empty(), 10.0), _ph("train", "train", FlowSet.empty(), 6.0),
              _ph("weight_sync", "weight_sync", FlowSet.empty(), 1.0))
    for mode, want in (("sync", 17.0), ("one_step_off", 11.0)):
        wl = Workload(name="w", num_gpus=6, schedule=Schedule(mode=mode), phases=phases)
        assert estimate_period(wl, [10.0, 6.0, 1.0]) == approx(want)
    wl = Workload(name="w", num_gpus=6, schedule=Schedule(mode="one_step_off", sync="streamed"), phases=phases)
    assert estimate_period(wl, [10.0, 6.0, 1.0]) == approx(10.0)


def test_a_per_phase_schedule_cannot_drive_a_pipelined_step() -> None:
    from rfabric.circuits import CircuitSchedule
    from rfabric.errors import SimulationError

    wl = Workload(name="w", num_gpus=6, schedule=Schedule(mode="one_step_off"), phases=(
        _ph("rollout", "rollout", FlowSet.build([1], [3], [10 * GB]), 0.0),
        _ph("train", "train", FlowSet.build([2], [4], [5 * GB]), 4.0),
        _ph("weight_sync", "weight_sync", FlowSet.empty(), 0.5)))
    a01 = CircuitAssignment.of([Circuit("ocs.agg.0", 0, 1)])
    a12 = CircuitAssignment.of([Circuit("ocs.agg.0", 1, 2)])
    with pytest.raises(SimulationError, match="per epoch"):
        simulate(triangle(), wl, CircuitSchedule(assignments=(a01, a12, a01)), options=SimConfig(routing="split"))
    # one assignment throughout is a static plan: accepted
    res = simulate(triangle(), wl, CircuitSchedule(assignments=(a01, a01, a01)),
                   options=SimConfig(routing="split", link_latency=False))
    assert res.iteration_time_s == approx(9.5)


def test_plan_circuits_plans_epochs_for_a_pipelined_step() -> None:
    cfg = api.load_config(overrides={"fabrics": ["rfabric"], "reference": "rfabric"})
    topo = api.build_topology(cfg, "rfabric")
    wl = api.build_workload(cfg)
    sched = api.plan_circuits(cfg, topo, wl)
    epochs = sched.meta["epochs"]
    assert len(epochs) == len(sched.assignments) >= 2
    assert [d.phase for d in sched.decisions] == ["+".join(k) for k in epochs]
    assert all(check_assignment(topo, a) == [] for a in sched.assignments)
    res = api.simulate(cfg, topo, wl, sched)  # the stage functions compose like plan_and_simulate
    assert res.iteration_time_s == approx(api.plan_and_simulate(cfg, topo, wl)[1].iteration_time_s)
