"""simulate(): the RL-step timeline, reconfiguration exposure, repeats, steps and result fields."""

from __future__ import annotations

import numpy as np
import pytest

import traffic
from rfabric.circuits import Circuit, CircuitAssignment, CircuitSchedule, check_assignment
from rfabric.config import ClusterConfig, SimConfig
from rfabric.errors import SimulationError
from rfabric.sim import simulate
from rfabric.workload import FlowSet, PhaseStep, Workload
from tests.sim.conftest import built, line_topology
from topologies.templates import circuit_template

EXACT = SimConfig(link_latency=False, routing="split")
B = 8e9


def approx(x: float) -> object:
    return pytest.approx(x, rel=1e-9)


def _phase(name: str, flows: FlowSet, n: int, **kw: object) -> PhaseStep:
    return PhaseStep(name=name, phase="train", flows=flows, num_gpus=n, **kw)  # type: ignore[arg-type]


def test_phases_in_order_with_compute_and_repeat() -> None:
    topo = line_topology([B])
    a = _phase("a", FlowSet.build([0], [1], [1e9]), 2, compute_before_s=0.5, compute_after_s=0.25)
    b = _phase("b", FlowSet.build([1], [0], [2e9]), 2, repeat=3)
    res = simulate(topo, Workload(name="w", num_gpus=2, phases=(a, b)), None, options=EXACT)
    pa, pb = res.phases
    assert (pa.start_s, pa.comm_start_s, pa.end_s) == (0.0, approx(0.5), approx(1.75))
    assert (pb.start_s, pb.comm_start_s, pb.end_s) == (approx(1.75), approx(1.75), approx(3.75))
    assert res.iteration_time_s == approx(1.75 + 3 * 2.0)
    assert res.phase_times() == {"a": approx(1.75), "b": approx(6.0)}
    assert res.flow_finish_s["a"].tolist() == [approx(1.5)]
    assert res.flow_start_s["b"].tolist() == [approx(1.75)]
    assert res.reconfig_time_s == 0.0 and res.events > 0 and res.solves > 0 and res.wall_time_s > 0
    assert res.bytes_by_medium()["electrical"] == approx(1e9 + 3 * 2e9)
    assert res.link_util is not None and res.link_util_times_s is not None
    assert res.link_util.shape == (res.link_util_times_s.size, len(res.link_names))
    # the tor->tor group holds both directions of the one link; one direction is full
    col = res.link_names.index("tor→tor")
    assert res.link_util[:, col].max() == approx(0.5) and np.all(res.link_util <= 1 + 1e-9)


def _repointed(mesh: CircuitAssignment) -> CircuitAssignment:
    """Every circuit of ``mesh`` re-pointed: on each OCS the second ports are rotated by one."""
    out: list[Circuit] = []
    by_ocs: dict[str, list[Circuit]] = {}
    for c in mesh.circuits:
        by_ocs.setdefault(c.ocs, []).append(c)
    for ocs, cs in by_ocs.items():
        bs = [c.port_b for c in cs]
        bs = bs[1:] + bs[:1]
        out.extend(Circuit(ocs, min(c.port_a, b), max(c.port_a, b)) for c, b in zip(cs, bs, strict=True))
    return CircuitAssignment.of(out)


def test_reconfiguration_hidden_or_exposed() -> None:
    topo = built("rfabric", 32, 2, switch_radix=8, core_ocs_share=1.0, allow_circuit_only=True)
    mesh = circuit_template(topo, "mesh")
    # a second assignment: the same pod pairs joined through other planes (every circuit re-pointed)
    other = _repointed(mesh)
    assert not check_assignment(topo, other) and not set(other.circuits) & set(mesh.circuits)
    fs = FlowSet.build([0], [31], [1e9])
    t_flow = 1e9 / 50e9
    for before, exposed in ((0.02, 0.0), (0.004, 0.006)):
        ph = (_phase("x", fs, 32, compute_before_s=before), _phase("y", fs, 32, compute_before_s=before))
        wl = Workload(name="w", num_gpus=32, phases=ph)
        res = simulate(topo, wl, CircuitSchedule(assignments=(mesh, other)), options=EXACT)
        x, y = res.phases
        changed = len(set(other.circuits) - set(mesh.circuits))
        assert changed > 0 and x.circuits_changed == y.circuits_changed == changed
        assert x.reconfig_s == y.reconfig_s == 0.01
        assert x.reconfig_exposed_s == approx(exposed) if exposed else x.reconfig_exposed_s == 0.0
        # a circuit-only fabric: the flow waits for the circuits when they are not ready in time
        assert x.end_s - x.comm_start_s == approx(t_flow + exposed)
        assert res.reconfig_time_s == approx(0.02)


def test_exposed_reconfiguration_only_slows_the_first_repeat() -> None:
    topo = built("rfabric", 32, 2, switch_radix=8, core_ocs_share=1.0, allow_circuit_only=True)
    mesh = circuit_template(topo, "mesh")
    other = _repointed(mesh)
    fs = FlowSet.build([0], [31], [1e9])
    ph = (_phase("x", fs, 32, repeat=4), _phase("y", fs, 32))
    res = simulate(topo, Workload(name="w", num_gpus=32, phases=ph), CircuitSchedule(assignments=(mesh, other)),
                   options=EXACT)
    t = 1e9 / 50e9
    assert res.phases[0].duration_s == approx((t + 0.01) + 3 * t)
    assert res.iteration_time_s == approx(4 * t + 0.01 + t + 0.01)


def test_steps_and_schedule_checks() -> None:
    topo = line_topology([B])
    wl = Workload(name="w", num_gpus=2, phases=(_phase("a", FlowSet.build([0], [1], [1e9]), 2),))
    res = simulate(topo, wl, None, options=SimConfig(link_latency=False, steps=3))
    assert res.iteration_time_s == approx(1.0) and res.extra["step_times_s"] == [approx(1.0)] * 3
    with pytest.raises(SimulationError, match="assignments"):
        simulate(topo, wl, CircuitSchedule(assignments=(CircuitAssignment(), CircuitAssignment())))
    static = built("static_ocs", 32, 2, switch_radix=8)
    wl2 = Workload(name="w", num_gpus=32, phases=(_phase("a", FlowSet.build([0], [31], [1e9]), 32),
                                                   _phase("b", FlowSet.build([0], [31], [1e9]), 32)))
    mesh = circuit_template(static, "mesh")
    sched = CircuitSchedule(assignments=(mesh, _repointed(mesh)))
    with pytest.raises(SimulationError, match="not reconfigurable"):
        simulate(static, wl2, sched)


def test_real_rl_step_on_fat_tree_and_rfabric() -> None:
    cl = ClusterConfig(trainer_gpus=64, rollout_gpus=64)
    wl = traffic.build_workload({"kind": "rl_step", "model": "qwen3-30b-a3b", "schedule": {"mode": "sync"}}, cl,
                                seed=0)
    ft = built("fat_tree", 128, 8, switch_radix=16)
    rf = built("rfabric", 128, 8, switch_radix=16)  # two pods joined by core circuits
    mesh = circuit_template(rf, "mesh")
    assert len(mesh)
    sched = CircuitSchedule(assignments=tuple(_repointed(mesh) if p.phase == "train" else mesh for p in wl.phases))
    for topo, schedule in ((ft, None), (rf, sched)):
        res = simulate(topo, wl, schedule, options=SimConfig(merge_tolerance=0.01))
        assert [p.name for p in res.phases] == [p.name for p in wl.phases]
        assert res.iteration_time_s == approx(sum(p.duration_s for p in res.phases))
        total = sum(p.flows.total_bytes * p.repeat for p in wl.phases)
        assert sum(res.bytes_by_medium().values()) == approx(total)
        for p in wl.phases:
            assert np.all(np.isfinite(res.flow_finish_s[p.name]))
    assert res.reconfig_time_s > 0 and res.bytes_by_medium()["optical"] > 0
