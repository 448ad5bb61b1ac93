"""Pipelined RL steps (rfabric.sim.pipeline): hand-computed periods, shared links, properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rfabric.config import SimConfig
from rfabric.errors import ConfigError, SimulationError
from rfabric.sim import simulate
from rfabric.sim.pipeline import build_pipeline, simulate_pipeline, step_structure
from rfabric.workload import FlowSet, PhaseStep, Schedule, Workload
from tests.sim.conftest import line_topology

EXACT = SimConfig(link_latency=False, routing="split")
B = 8e9  # 1 GB/s
GB = 1e9


def approx(x: float) -> object:
    return pytest.approx(x, rel=1e-9, abs=1e-12)


def _ph(name: str, phase: str, n: int, flows: FlowSet | None = None, before: float = 0.0,
        after: float = 0.0) -> PhaseStep:
    return PhaseStep(name=name, phase=phase, flows=flows if flows is not None else FlowSet.empty(), num_gpus=n,
                     compute_before_s=before, compute_after_s=after)


def _wl(phases: list[PhaseStep], n: int, **sched: object) -> Workload:
    return Workload(name="w", num_gpus=n, phases=tuple(phases), schedule=Schedule(**sched))  # type: ignore[arg-type]


def _compute_only(r: float, t: float, s: float, **sched: object) -> Workload:
    """Rollout r s, training t s of compute; weight sync: one 's GB' flow at 1 GB/s (so s seconds)."""
    sync = FlowSet.build([0], [1], [s * GB])
    return _wl([_ph("rollout", "rollout", 2, before=r), _ph("train", "train", 2, before=t),
                _ph("weight_sync", "weight_sync", 2, sync)], 2, **sched)


TOPO = line_topology([B])


def _period(wl: Workload, steps: int = 1) -> float:
    return simulate_pipeline(TOPO, wl, options=SimConfig(link_latency=False, routing="split", steps=steps)).iteration_time_s


@pytest.mark.parametrize(("r", "t"), [(10.0, 6.0), (4.0, 9.0), (5.0, 5.0)])
def test_sync_period_is_the_sum(r: float, t: float) -> None:
    wl = _compute_only(r, t, 1.0, mode="sync")
    res = simulate(TOPO, wl, None, options=EXACT)
    assert res.iteration_time_s == approx(r + t + 1.0)
    # each pool works its phase and the (blocking) sync; the larger share is the critical pool
    assert res.extra["trainer_busy_frac"] == approx((t + 1.0) / (r + t + 1.0))
    assert res.extra["rollout_busy_frac"] == approx((r + 1.0) / (r + t + 1.0))


@pytest.mark.parametrize(("r", "t"), [(10.0, 6.0), (4.0, 9.0), (5.0, 5.0)])
@pytest.mark.parametrize("steps", [1, 3])
def test_one_step_off_period_is_max_plus_exposed_sync(r: float, t: float, steps: int) -> None:
    res = simulate_pipeline(TOPO, _compute_only(r, t, 1.0, mode="one_step_off"),
                            options=SimConfig(link_latency=False, routing="split", steps=steps))
    assert res.iteration_time_s == approx(max(r, t) + 1.0)
    ex = res.extra
    # busy over the period: the critical pool works max(r, t), the sync (blocking) occupies both
    assert ex["trainer_busy_frac"] == approx((t + 1.0) / (max(r, t) + 1.0))
    assert ex["rollout_busy_frac"] == approx((r + 1.0) / (max(r, t) + 1.0))
    assert ex["overlap_frac"] == approx(min(r, t) / (max(r, t) + 1.0))
    assert ex["critical_cluster"] == ("rollout" if r > t else "trainer" if t > r else "both")
    # the last measured step's instances: train and rollout start together, the sync after both
    p = {ph.name: ph for ph in res.phases}
    assert p["train"].start_s == approx(p["rollout"].start_s)
    assert p["weight_sync"].start_s == approx(p["train"].start_s + max(r, t))
    assert p["weight_sync"].cluster == "sync" and p["train"].cluster == "trainer"


def test_async_staleness_two() -> None:
    # steps: T_1 and R_3 start at 0 (samples of steps 1, 2 ready). S_1 waits for T_1 (6) and R_3 (10): [10, 11].
    # T_2 after S_1: [11, 17]; R_4 after R_3 and S_1: [11, 21]; S_2 after T_2 and R_4: [21, 22]. Period 11.
    wl = _compute_only(10.0, 6.0, 1.0, mode="async", staleness=2)
    res = simulate_pipeline(TOPO, wl, options=SimConfig(link_latency=False, routing="split", steps=2))
    assert res.iteration_time_s == approx(11.0)
    assert res.extra["step_completion_s"] == [approx(11.0), approx(22.0)]
    rollouts = [(i.step, i.start_s, i.end_s) for i in res.instances if i.cluster == "rollout"]
    assert rollouts == [(3, 0.0, approx(10.0)), (4, approx(11.0), approx(21.0))]


def test_async_staleness_two_training_bound() -> None:
    # t > r: T_1 [0, 9]; R_3 [0, 4]; S_1 [9, 10]; T_2 [10, 19], R_4 [10, 14], S_2 [19, 20]: period 10
    wl = _compute_only(4.0, 9.0, 1.0, mode="async", staleness=2)
    assert _period(wl, steps=2) == approx(10.0)


def test_streamed_sync_hides_under_rollout() -> None:
    # rollout-bound (r=10, t=6): the sync runs [6, 7] beside the rollout and is hidden: period = r = 10
    res = simulate_pipeline(TOPO, _compute_only(10.0, 6.0, 1.0, mode="one_step_off", sync="streamed"),
                            options=SimConfig(link_latency=False, routing="split", steps=2))
    assert res.iteration_time_s == approx(10.0)
    assert res.extra["converged"] and res.extra["warmup_steps"] >= 2 and res.extra["measured_steps"] == 2
    # training-bound (t=9 > r=4): training runs back to back, the sync is hidden too: period = t = 9
    assert _period(_compute_only(4.0, 9.0, 1.0, mode="one_step_off", sync="streamed"), steps=2) == approx(9.0)
    # a sync longer than the rollout's slack is exposed (r=4, t=3, s=3), from the cold start. By hand: R_1 [0,4],
    # T_1 [4,7], S_1 [7,10], R_2 [4,8], T_2 [8,11], R_3 [10,14] (waits for S_1), S_2 [11,14], T_3 [14,17],
    # R_4 [14,18], S_3 [17,20], T_4 [18,21], R_5 [20,24] (waits for S_3), S_4 [21,24], T_5 [24,27], S_5 [27,30]:
    # completions 10, 14, 20, 24, 30 -- a 2-periodic steady state (the rollout lane alternately waits 2 s and
    # 0 s for a sync) of mean 5 s per step.
    res = simulate_pipeline(TOPO, _compute_only(4.0, 3.0, 3.0, mode="one_step_off", sync="streamed"),
                            options=SimConfig(link_latency=False, routing="split", steps=4))
    assert res.extra["step_completion_s"][:5] == [approx(10.0), approx(14.0), approx(20.0), approx(24.0),
                                                  approx(30.0)]
    assert res.iteration_time_s == approx(5.0)
    # the default measures two periods of the sync cycle (K = 1: two steps), enough for this cyclicity
    assert _period(_compute_only(4.0, 3.0, 3.0, mode="one_step_off", sync="streamed"), steps=1) == approx(5.0)


def test_sync_every_two_is_per_rl_step() -> None:
    # two sub-steps (r, t) and one sync per two steps. one_step_off, blocking:
    # T_1 || R_2 from 0: max(10, 6) = 10; T_2 after R_2 and T_1: [10, 16]; R_3 alongside: [10, 20];
    # S_2 after T_2 and R_3: [20, 21]. Two RL steps in 21 s -> 10.5 s per step.
    sync = FlowSet.build([0], [1], [1 * GB])
    phases = [_ph("rollout.step0", "rollout", 2, before=10.0), _ph("train.step0", "train", 2, before=6.0),
              _ph("rollout.step1", "rollout", 2, before=10.0), _ph("train.step1", "train", 2, before=6.0),
              _ph("weight_sync", "weight_sync", 2, sync)]
    res = simulate_pipeline(TOPO, _wl(phases, 2, mode="one_step_off"), options=EXACT)
    assert res.iteration_time_s == approx(10.5)
    assert res.extra["rl_steps_per_period"] == 2
    # the sequential mode reports per RL step too: (10 + 6) * 2 + 1 over two steps
    seq = simulate(TOPO, _wl(phases, 2, mode="sync"), None, options=EXACT)
    assert seq.iteration_time_s == approx((2 * 16.0 + 1.0) / 2)


def test_shared_link_splits_between_clusters() -> None:
    # One 1 GB/s link tor0 -> tor1. Rollout: a 2 GB flow 0->1 at t = 0. Training: 1 s of compute, then a 1 GB
    # flow 0->1. From 1 s both share the link at 0.5 GB/s: the rollout flow has 1 GB left, training 1 GB;
    # both finish at 3 s. Sync: 0.5 GB alone -> 0.5 s. one_step_off period = 3.5 s (sequential: 2+2+0.5).
    ro = _ph("rollout", "rollout", 2, FlowSet.build([0], [1], [2 * GB]))
    trn = _ph("train", "train", 2, FlowSet.build([0], [1], [1 * GB]), before=1.0)
    sy = _ph("weight_sync", "weight_sync", 2, FlowSet.build([0], [1], [0.5 * GB]))
    res = simulate_pipeline(TOPO, _wl([ro, trn, sy], 2, mode="one_step_off"), options=EXACT)
    assert res.iteration_time_s == approx(3.5)
    p = {ph.name: ph for ph in res.phases}
    assert p["rollout"].end_s == approx(3.0) and p["train"].end_s == approx(3.0)
    assert res.flow_finish_s["train"].tolist() == [approx(3.0)]
    seq = simulate(TOPO, _wl([ro, trn, sy], 2, mode="sync"), None, options=EXACT)
    assert seq.iteration_time_s == approx(2.0 + 2.0 + 0.5)


def test_epochs_and_instances() -> None:
    res = simulate_pipeline(TOPO, _compute_only(10.0, 6.0, 1.0, mode="one_step_off"), options=EXACT)
    eps = [(e["phases"], e["start_s"], e["end_s"]) for e in res.extra["epochs"]]
    assert eps[:3] == [(["rollout", "train"], 0.0, approx(6.0)), (["rollout"], approx(6.0), approx(10.0)),
                       (["weight_sync"], approx(10.0), approx(11.0))]


def test_schedule_validation() -> None:
    with pytest.raises(ConfigError, match="workload.schedule.mode"):
        Schedule(mode="pipelined")
    with pytest.raises(ConfigError, match="workload.schedule.staleness"):
        Schedule(mode="one_step_off", staleness=3)
    with pytest.raises(ConfigError, match="workload.schedule.sync"):
        Schedule(mode="async", sync="eventually")
    assert Schedule(mode="async").versions_ahead == 2 and Schedule(mode="one_step_off").versions_ahead == 1


def test_workload_without_rollout_then_train_is_refused() -> None:
    wl = _wl([_ph("train", "train", 2, before=1.0)], 2, mode="one_step_off")
    assert step_structure(wl) is None
    with pytest.raises(SimulationError, match="mode: sync"):
        simulate_pipeline(TOPO, wl, options=EXACT)


# ------------------------------------------------------------------------------------------------
# properties over small random pipelines


@st.composite
def pipelines(draw: st.DrawFn) -> tuple[Workload, Workload]:
    n = 4
    topo_flows = st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1),
                                    st.floats(0.01, 2.0)), min_size=0, max_size=3)

    def phase(name: str, tag: str) -> PhaseStep:
        fl = draw(topo_flows)
        fs = FlowSet.build([a for a, _, _ in fl], [b for _, b, _ in fl], [g * GB for _, _, g in fl]) if fl else None
        return _ph(name, tag, n, fs, before=draw(st.floats(0.0, 3.0)), after=draw(st.floats(0.0, 1.0)))

    phases = [phase("rollout", "rollout"), phase("train", "train"), phase("weight_sync", "weight_sync")]
    mode = draw(st.sampled_from(["one_step_off", "async"]))
    sched = {"mode": mode, "sync": draw(st.sampled_from(["blocking", "streamed"]))}
    if mode == "async":
        sched["staleness"] = draw(st.integers(1, 3))
    return _wl(phases, n, **sched), _wl(phases, n, mode="sync")


TOPO4 = line_topology([B], hosts_per_switch=2)


@settings(max_examples=40, deadline=None)
@given(pipelines())
def test_pipeline_properties(pair: tuple[Workload, Workload]) -> None:
    wl, seq_wl = pair
    opts = SimConfig(link_latency=False, routing="split", steps=2)
    res = simulate_pipeline(TOPO4, wl, options=opts)
    seq = simulate(TOPO4, seq_wl, None, options=opts)
    period = res.iteration_time_s
    tol = 1e-9 * max(1.0, seq.iteration_time_s)
    # never slower than the sequential step, never faster than each pool's busy time
    assert period <= seq.iteration_time_s + tol
    assert res.extra["trainer_busy_frac"] <= 1 + 1e-9 and res.extra["rollout_busy_frac"] <= 1 + 1e-9
    # each pool's busy time per step (its instances run one at a time) fits in the period: summed over the
    # measured window of M steps, the lane's instance time inside the window is at most M periods
    lo, hi = res.extra["window_s"]
    assert hi - lo == pytest.approx(period * res.extra["measured_steps"], rel=1e-9, abs=1e-12)
    for lane in ("trainer", "rollout"):
        busy = sum(max(0.0, min(i.end_s, hi) - max(i.start_s, lo)) for i in res.instances if i.cluster == lane)
        assert busy <= (hi - lo) * (1 + 1e-9) + 1e-12, lane
    # bytes of every phase instance conserved
    for inst in res.instances:
        ph = wl.phase(inst.name)
        assert sum(inst.bytes_by_medium.values()) == pytest.approx(ph.flows.total_bytes, rel=1e-9, abs=1e-3)
    # deterministic
    again = simulate_pipeline(TOPO4, wl, options=opts)
    assert again.iteration_time_s == period
    assert all(np.array_equal(again.flow_finish_s[k], v) for k, v in res.flow_finish_s.items())


def test_instance_graph_edges() -> None:
    wl = _compute_only(1.0, 1.0, 1.0, mode="one_step_off")
    s = step_structure(wl)
    assert s is not None
    pipe = build_pipeline(wl, s, measured=2)
    names = [(x.cluster, x.step) for x in pipe.instances]
    assert names == [("rollout", 2), ("rollout", 3), ("trainer", 1), ("trainer", 2), ("sync", 1), ("sync", 2)]
    # R_3 after R_2 and S_1; T_2 after R_2, T_1, S_1; S_1 after T_1 and R_2; S_2 after T_2, S_1, R_3
    assert pipe.preds == ((), (0, 4), (), (0, 2, 4), (2, 0), (3, 4, 1))


def test_repeated_phase_runs_back_to_back() -> None:
    # training = 2 runs of 4 s (repeat 2) -> 8 s; rollout 10 s; sync 1 s: period max(10, 8) + 1 = 11
    sync = FlowSet.build([0], [1], [1 * GB])
    trn = PhaseStep(name="train", phase="train", flows=FlowSet.empty(), num_gpus=2, compute_before_s=4.0, repeat=2)
    wl = _wl([_ph("rollout", "rollout", 2, before=10.0), trn, _ph("weight_sync", "weight_sync", 2, sync)], 2,
             mode="one_step_off")
    res = simulate_pipeline(TOPO, wl, options=EXACT)
    assert res.iteration_time_s == approx(11.0)
    p = {ph.name: ph for ph in res.phases}
    assert p["train"].repeat == 2 and p["train"].duration_s == approx(8.0)
    assert [i.start_s for i in res.instances if i.name == "train"] == [0.0, approx(4.0)]
    # with training longer than the rollout the repeats are what the period waits for
    wl2 = _wl([_ph("rollout", "rollout", 2, before=5.0), trn, _ph("weight_sync", "weight_sync", 2, sync)], 2,
              mode="one_step_off")
    assert simulate_pipeline(TOPO, wl2, options=EXACT).iteration_time_s == approx(9.0)


def test_sync_mode_plays_any_phase_order() -> None:
    # a weight sync that is not last cannot be pipelined but still plays sequentially, one RL step per period
    sync = FlowSet.build([0], [1], [1 * GB])
    phases = [_ph("weight_sync", "weight_sync", 2, sync), _ph("rollout", "rollout", 2, before=2.0),
              _ph("train", "train", 2, before=3.0)]
    assert simulate(TOPO, _wl(phases, 2, mode="sync"), None, options=EXACT).iteration_time_s == approx(6.0)
    with pytest.raises(SimulationError, match="weight sync last"):
        simulate_pipeline(TOPO, _wl(phases, 2, mode="one_step_off"), options=EXACT)
