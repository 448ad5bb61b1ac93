"""Issue #12, "parse once, pass typed": the OCS reconfiguration time, the solver time limit and the seed are
each parsed in one function with one default, and every consumer of a loaded config sees a change of them.

One RFabric case of the packet cross-check (16 GPUs, circuits re-pointed at the start) is loaded with each
key changed from its default; the simulator step, the event engine, the circuit planner, the circuit
solver (MILP, exact realisation step, transit routing LPs) and the packet backend are then asked what
they used.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import numpy as np
import pytest

import solver
import topologies
from rfabric import api
from rfabric.circuits import CircuitSchedule
from rfabric.config import RunConfig
from rfabric.sim import simulate, simulate_flows
from rfabric.workload import PhaseStep, Schedule, Workload
from validation import circuit_states
from validation.scenarios import SCENARIOS, build_case

RECONFIG_S = 0.0043  # not the 10 ms default, nor the scenario's 1 ms
TIME_LIMIT_S = 0.25  # below the 1 s floor the transit model used to apply
SEED, SOLVER_SEED = 11, 5


def _scenario(**top: Any) -> Any:
    sc = SCENARIOS["rfabric_all_to_all_reconfig"]
    cfg = copy.deepcopy(dict(sc.config))
    cfg["fabrics"] = [{**cfg["fabrics"][0], "ocs_reconfig_ms": RECONFIG_S * 1e3}]
    cfg.update(top)
    return dataclasses.replace(sc, config=cfg)


@pytest.fixture(scope="module")
def case() -> Any:
    return build_case(_scenario(seed=SEED, solver={"time_limit_ms": TIME_LIMIT_S * 1e3, "seed": SOLVER_SEED,
                                                   "model": "transit"}), quick=True)


def test_each_key_is_parsed_into_the_typed_run(case: Any) -> None:
    cfg = case.config
    r = api.resolved(cfg)
    assert r is cfg.resolved and api.resolved(cfg) is r  # parsed once, then kept on the config
    assert r.fabric_params["rfabric"].ocs_reconfig_s == pytest.approx(RECONFIG_S)
    assert r.solver_options.time_limit_s == pytest.approx(TIME_LIMIT_S)
    assert cfg.seed == SEED and r.solver_options.mixed_seed(cfg.seed) == SEED + SOLVER_SEED
    assert case.topology.ocs_reconfig_s == pytest.approx(RECONFIG_S)  # the builder
    # stored once: the typed field, no second copy in the builder's parameters (nor in the logical fabric)
    assert "ocs_reconfig_s" not in case.topology.params
    assert case.topology.params["ocs_radix"] == api.resolved(cfg).fabric_params["rfabric"].ocs_radix


def test_every_built_fabric_holds_the_reconfiguration_time_once() -> None:
    cfg = api.load_config({"fabrics": [{"kind": k, "name": k, "ocs_reconfig_ms": RECONFIG_S * 1e3}
                                       for k in ("rfabric", "static_ocs", "jupiter")]
                           + ["fat_tree", "mixnet", "topoopt", "rail_optimized"],
                           "cluster": {"trainer_gpus": 64, "rollout_gpus": 64}})
    for entry in cfg.fabrics:
        topo = api.build_topology(cfg, entry.name)
        assert "ocs_reconfig_s" not in topo.params, entry.kind
        if entry.kind in ("rfabric", "static_ocs", "jupiter"):
            assert topo.ocs_reconfig_s == pytest.approx(RECONFIG_S), entry.kind


def test_one_default_each() -> None:
    from topologies._params import OcsParams

    with_ocs = [k for k in topologies.REGISTRY.kinds()
                if "ocs_reconfig_s" in {f.name for f in dataclasses.fields(topologies.REGISTRY.get(k).params_cls)}]
    assert {"rfabric", "static_ocs", "jupiter"} <= set(with_ocs)
    for kind in with_ocs:  # declared once, on OcsParams, with its one default
        cls = topologies.REGISTRY.get(kind).params_cls
        assert issubclass(cls, OcsParams) and "ocs_reconfig_s" not in cls.__dict__.get("__annotations__", {}), kind
        assert cls().ocs_reconfig_s == 10e-3
    assert solver.SolverOptions().time_limit_s == solver.options.TIME_LIMIT_S
    cfg = api.load_config({"fabrics": ["rfabric"], "cluster": {"trainer_gpus": 8, "rollout_gpus": 8}})
    assert api.build_topology(cfg).ocs_reconfig_s == 10e-3
    assert api.resolved(cfg).solver_options.time_limit_s == solver.options.TIME_LIMIT_S and cfg.seed == 0


def test_a_replaced_config_is_resolved_again() -> None:
    cfg = api.load_config({"fabrics": ["rfabric"], "cluster": {"trainer_gpus": 8, "rollout_gpus": 8}})
    other = dataclasses.replace(cfg, solver={"time_limit_ms": 300})
    assert other.resolved is None and other == dataclasses.replace(cfg, solver={"time_limit_ms": 300})
    assert api.resolved(other).solver_options.time_limit_s == pytest.approx(0.3)
    assert api.resolved(cfg).solver_options.time_limit_s == solver.options.TIME_LIMIT_S
    hand = RunConfig(fabrics=cfg.fabrics, solver={"time_limit_ms": 400})
    assert api.resolved(hand).solver_options.time_limit_s == pytest.approx(0.4)


def _two_phase(case: Any) -> tuple[Workload, CircuitSchedule]:
    """The scenario's two phases (the pod-local all-to-all its circuits were planned for, then its own) as
    one step, each after 1 ms of compute, with the circuits the scenario plans for each."""
    before, after = case.assignment, case.changes[0][1]
    assert before.circuits != after.circuits
    prev = api.build_workload(api.load_config({**api.config_data(case.config),
                                               "workload": dict(case.scenario.previous)}))
    phases = tuple(PhaseStep(name=n, phase="train", flows=f, num_gpus=case.topology.num_gpus,
                             compute_before_s=1e-3) for n, f in (("a", prev.phases[0].flows), ("b", case.flows)))
    wl = Workload(name="two", num_gpus=case.topology.num_gpus, phases=phases, schedule=Schedule(mode="sync"))
    return wl, CircuitSchedule(assignments=(before, after))


def test_the_simulator_step_and_the_engine_see_the_reconfiguration_time(case: Any) -> None:
    wl, schedule = _two_phase(case)
    res = simulate(case.topology, wl, schedule, options=case.config.sim, seed=case.config.seed)
    assert [p.reconfig_s for p in res.phases] == [pytest.approx(RECONFIG_S)] * 2  # step: the dark time
    tr = simulate_flows(case.topology, case.flows, assignment=case.assignment, changes=case.changes,
                        options=case.config.sim, seed=case.config.seed)
    assert np.isclose(tr.util_times_s, RECONFIG_S).any()  # engine: the new circuits come up at 0 + 4.3 ms
    assert not np.isclose(tr.util_times_s, 1e-3).any() and not np.isclose(tr.util_times_s, 10e-3).any()


def test_the_planner_sees_the_reconfiguration_time(case: Any) -> None:
    wl, _ = _two_phase(case)
    sched = solver.plan_schedule(case.topology, wl, api.resolved(case.config).solver_options, seed=case.config.seed)
    assert any(f"switching time {RECONFIG_S:.4g} s" in d.reason for d in sched.decisions), \
        [d.reason for d in sched.decisions]


def test_the_packet_backend_sees_the_reconfiguration_time_and_the_seed(case: Any, monkeypatch: Any) -> None:
    import validation.compare as vc

    states = circuit_states(case.topology, case.assignment, case.changes)
    assert states[-1][0] == pytest.approx(RECONFIG_S)  # circuits lit again at 0 + 4.3 ms in ns-3

    seen: dict[str, Any] = {}

    class Seen(Exception):
        pass

    def fake_run_packet(topology: Any, flows: Any, **kw: Any) -> Any:
        seen.update(kw, topology=topology)
        raise Seen

    monkeypatch.setattr(vc, "run_packet", fake_run_packet)
    with pytest.raises(Seen):
        vc.run_case(case)
    assert seen["seed"] == SEED and seen["topology"].ocs_reconfig_s == pytest.approx(RECONFIG_S)


def test_the_solver_sees_the_time_limit_and_the_seed(case: Any, monkeypatch: Any) -> None:
    import solver.transit as transit
    from solver.backends import highs

    calls: list[tuple[float, int, bool]] = []
    real_arrays = highs.solve_arrays

    def spy_arrays(*a: Any, **kw: Any) -> Any:
        calls.append((kw["time_limit_s"], kw.get("seed", 0), bool(np.asarray(a[6]).any())))
        return real_arrays(*a, **kw)

    seeds: list[int] = []
    real_transit = transit.solve_transit

    def spy_transit(*a: Any, **kw: Any) -> Any:
        seeds.append(kw["seed"])
        assert kw["time_limit_s"] == pytest.approx(TIME_LIMIT_S)
        return real_transit(*a, **kw)

    monkeypatch.setattr(highs, "solve_arrays", spy_arrays)
    monkeypatch.setattr(transit, "solve_transit", spy_transit)
    wl = api.build_workload(case.config)
    api.plan_circuits(case.config, case.topology, wl)
    assert calls and seeds
    assert all(tl == pytest.approx(TIME_LIMIT_S) for tl, _, _ in calls)  # MILPs and every routing LP
    assert set(seeds) == {SEED + SOLVER_SEED}
    assert {s for _, s, integer in calls if integer} <= {SEED + SOLVER_SEED}


def test_the_simulator_and_the_workload_see_the_seed(monkeypatch: Any) -> None:
    import traffic
    from rfabric.sim import routing

    seen: dict[str, set[int]] = {"traffic": set(), "routing": set()}
    real_build, real_keys = traffic.build_workload, routing.pair_keys

    def spy_build(*a: Any, **kw: Any) -> Any:
        seen["traffic"].add(kw["seed"])
        return real_build(*a, **kw)

    def spy_keys(seed: int, *a: Any) -> Any:
        seen["routing"].add(seed)
        return real_keys(seed, *a)

    monkeypatch.setattr(traffic, "build_workload", spy_build)
    monkeypatch.setattr(routing, "pair_keys", spy_keys)
    cfg = api.load_config({"fabrics": ["fat_tree"], "cluster": {"trainer_gpus": 8, "rollout_gpus": 8},
                           "topology": {"switch_radix": 16}, "sim": {"routing": "hash"},
                           "workload": {"kind": "collective", "size_bytes": 1e6}}, seed=SEED)
    topo, wl = api.build_topology(cfg), api.build_workload(cfg)
    api.simulate(cfg, topo, wl, None)
    assert seen == {"traffic": {SEED}, "routing": {SEED}}
