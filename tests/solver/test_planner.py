"""Planning across phases: static and empty plants, the reconfiguration rule, caching, determinism, export."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import solver
import topologies
from rfabric.circuits import CircuitAssignment, check_assignment
from rfabric.errors import ConfigError, SolverError
from rfabric.traffic_matrix import TrafficMatrix
from tests.solver.conftest import SMALL, pod_traffic, rfabric4, workload_of

GB = 1e9
RING = {(i, (i + 1) % 4): GB for i in range(4)}
SWAP = {(0, 1): GB, (1, 0): GB, (2, 3): GB, (3, 2): GB}


def test_no_ocs_gives_empty_assignments() -> None:
    ft = topologies.build("fat_tree", {"switch_radix": 8}, SMALL)
    wl = workload_of([("a", pod_traffic(RING), 0.0, 1), ("b", pod_traffic(SWAP), 0.0, 1)])
    s = solver.plan_schedule(ft, wl, solver.parse_options({}), seed=0)
    assert len(s) == 2 and all(len(a) == 0 for a in s.assignments)
    assert [d.action for d in s.decisions] == ["none", "none"]


def test_static_ocs_one_assignment_on_the_repeat_weighted_step() -> None:
    topo = topologies.build("static_ocs", {"switch_radix": 8, "wiring": "core"}, SMALL)
    wl = workload_of([("ring", pod_traffic(RING), 0.0, 9), ("swap", pod_traffic(SWAP), 0.0, 1)])
    s = solver.plan_schedule(topo, wl, solver.parse_options({}), seed=0)
    assert s.assignments[0] is s.assignments[1] and len(s.assignments[0]) > 0
    assert [d.action for d in s.decisions] == ["static", "static"]
    check_assignment(topo, s.assignments[0])
    # the ring phase repeats 9 times: the single assignment serves it better than one made for the swap
    for_swap = solver.solve_phase(topo, pod_traffic(SWAP), solver.parse_options({})).assignment
    assert s.decisions[0].alpha > solver.evaluate(topo, pod_traffic(RING), for_swap).objective
    assert s.decisions[1].alpha < 1.0  # ... and the swap pays for it


def test_static_named_template_must_be_passed_in() -> None:
    topo = topologies.build("static_ocs", {"switch_radix": 8, "wiring": "core", "circuit_template": "mesh"}, SMALL)
    wl = workload_of([("ring", pod_traffic(RING), 0.0, 1)])
    with pytest.raises(SolverError, match="fixed="):
        solver.plan_schedule(topo, wl, solver.parse_options({}), seed=0)
    from topologies.templates import circuit_template

    mesh = circuit_template(topo, "mesh")
    s = solver.plan_schedule(topo, wl, solver.parse_options({}), seed=0, fixed=mesh)
    assert s.assignments == (mesh,) and s.decisions[0].action == "static"


def test_never_reconfigures() -> None:
    topo = rfabric4()
    wl = workload_of([("ring", pod_traffic(RING), 1.0, 1), ("swap", pod_traffic(SWAP), 1.0, 1)])
    s = solver.plan_schedule(topo, wl, solver.parse_options({"reconfig": "never"}), seed=0)
    assert s.assignments[0] == s.assignments[1]
    assert {d.action for d in s.decisions} == {"static"} and "reconfig: never" in s.decisions[0].reason


def test_idle_window_covering_the_switch_reconfigures() -> None:
    topo = rfabric4(ocs_reconfig_ms=10)
    wl = workload_of([("ring", pod_traffic(RING), 0.0, 1), ("swap", pod_traffic(SWAP), 0.05, 1)])
    s = solver.plan_schedule(topo, wl, solver.parse_options({}), seed=0)
    d = s.decisions[1]
    assert d.action == "reconfigured" and d.changed > 0 and "covers the switching time" in d.reason
    assert d.alpha == pytest.approx(1.0)
    # steps repeat: decision 0 is the transition swap -> ring of the next step (no idle window before ring)
    d0 = s.decisions[0]
    assert d0.action == "reconfigured" and "wrap-around from phase 'swap'" in d0.reason and d0.changed > 0
    assert s.meta["wrap_around"]["converged"] and s.meta["wrap_around"]["to_phase"] == "ring"


def test_small_idle_window_keeps_the_circuits() -> None:
    # 1 ms of bytes: re-pointing (10 s switch, no idle window) can never pay off
    topo = rfabric4(ocs_reconfig_ms=10_000)
    wl = workload_of([("ring", pod_traffic(RING), 0.0, 1), ("swap", pod_traffic({k: 0.01 * GB for k in SWAP}), 0.0, 1)])
    s = solver.plan_schedule(topo, wl, solver.parse_options({}), seed=0)
    d = s.decisions[1]
    assert d.action == "kept" and d.changed == 0 and "does not pay" in d.reason
    assert s.assignments[1] == s.assignments[0]
    ev = solver.evaluate(topo, pod_traffic(SWAP), s.assignments[0])
    assert d.alpha == pytest.approx(ev.objective)
    # ... unless told to always reconfigure
    s2 = solver.plan_schedule(topo, wl, solver.parse_options({"reconfig": "always"}), seed=0)
    assert s2.decisions[1].action == "reconfigured" and s2.decisions[1].alpha == pytest.approx(1.0)


def test_exposed_delay_worth_paying_reconfigures() -> None:
    # 100 GB per GPU pair x 50 repeats: the gain dwarfs a 10 ms exposed switch
    topo = rfabric4(ocs_reconfig_ms=10)
    wl = workload_of([("ring", pod_traffic(RING), 0.0, 1), ("swap", pod_traffic({k: 100 * GB for k in SWAP}), 0.0, 50)])
    s = solver.plan_schedule(topo, wl, solver.parse_options({}), seed=0)
    assert s.decisions[1].action == "reconfigured" and "exceeds the exposed delay" in s.decisions[1].reason


def test_previous_circuits_stay_in_place() -> None:
    topo = rfabric4()
    first = solver.solve_phase(topo, pod_traffic(RING), solver.parse_options({}))
    again = solver.solve_phase(topo, pod_traffic({k: 3 * v for k, v in RING.items()}), solver.parse_options({}),
                               previous=first.assignment)
    assert again.assignment == first.assignment  # same pattern: nothing moves
    other = solver.solve_phase(topo, pod_traffic({**RING, (0, 2): GB}), solver.parse_options({}),
                               previous=first.assignment)
    removed, added = first.assignment.changed(other.assignment)
    kept = len(set(first.assignment.circuits) & set(other.assignment.circuits))
    assert kept == other.domains[0].kept and kept >= len(first.assignment) - len(removed)
    assert len(added) < len(other.assignment)


def test_change_cap_and_penalty_limit_changes() -> None:
    topo = rfabric4()
    first = solver.solve_phase(topo, pod_traffic(RING), solver.parse_options({}))
    free = solver.solve_phase(topo, pod_traffic(SWAP), solver.parse_options({}), previous=first.assignment)
    capped = solver.solve_phase(topo, pod_traffic(SWAP), solver.parse_options({"max_changed": 4}),
                                previous=first.assignment)
    assert free.domains[0].changed > 4 >= capped.domains[0].changed
    assert capped.objective <= free.objective
    costly = solver.solve_phase(topo, pod_traffic(SWAP), solver.parse_options({"reconfig_penalty": 1.0}),
                                previous=first.assignment)
    assert costly.domains[0].changed == 0  # one circuit buys < 1/12 alpha, costs 1


def test_cache_hits_for_a_repeating_pattern() -> None:
    topo = rfabric4()
    wl = workload_of([("ring", pod_traffic(RING), 1.0, 1), ("swap", pod_traffic(SWAP), 1.0, 1),
                      ("ring2", pod_traffic({k: 2.001 * v for k, v in RING.items()}), 1.0, 1)])
    cache = solver.SolveCache()
    s = solver.plan_schedule(topo, wl, solver.parse_options({}), seed=0, cache=cache)
    assert cache.misses == 2 and s.meta["cache_hits"] == cache.hits >= 1  # two patterns, solved once each
    assert "cache hit" in s.decisions[2].reason
    assert s.assignments[2] != () and s.decisions[2].alpha == pytest.approx(s.decisions[0].alpha)
    off = solver.plan_schedule(topo, wl, solver.parse_options({"cache": False}), seed=0)
    assert off.meta["cache_hits"] == 0 and off.assignments == s.assignments


def test_deterministic_bytes() -> None:
    topo = rfabric4(agg_ocs_share=0.5)
    rng = np.random.default_rng(0)
    tm = TrafficMatrix.from_pairs(64, rng.integers(0, 64, 300), rng.integers(0, 64, 300), rng.random(300) * GB)
    wl = workload_of([("a", tm, 0.0, 1), ("b", pod_traffic(RING), 0.0, 2)])
    runs = [solver.plan_schedule(topo, wl, solver.parse_options({}), seed=3) for _ in range(2)]

    def blob(s):
        return json.dumps([[(c.ocs, c.port_a, c.port_b) for c in a.circuits] for a in s.assignments])

    assert blob(runs[0]) == blob(runs[1])
    assert [d.alpha for d in runs[0].decisions] == [d.alpha for d in runs[1].decisions]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**16), agg=st.sampled_from([0.0, 0.5]), upper=st.sampled_from([0.0, 1.0]),
       density=st.floats(0.01, 0.5), backend=st.sampled_from(["highs", "greedy"]))
def test_every_assignment_is_valid(seed, agg, upper, density, backend) -> None:
    topo = rfabric4(agg_ocs_share=agg, core_ocs_upper_share=upper)
    rng = np.random.default_rng(seed)
    m = int(density * 64 * 64)
    tm = TrafficMatrix.from_pairs(64, rng.integers(0, 64, m), rng.integers(0, 64, m), rng.pareto(1.5, m) * GB)
    opts = solver.parse_options({"backend": backend, "time_limit_s": 0.5})
    res = solver.solve_phase(topo, tm, opts)
    assert check_assignment(topo, res.assignment) == []
    assert res.termination in ("optimal", "feasible", "heuristic")
    for d in res.domains:
        if d.t0_s > 0:
            assert 0 <= d.alpha <= d.bound * (1 + 1e-6) + 1e-9
            assert d.alpha >= d.heuristic_alpha * (1 - 1e-6) or d.dropped
            # realised counts respect each node's ports
            dom = next(x for x in solver.domains(topo) if x.name == d.domain)
            assert np.all(d.x.sum(axis=1) + d.z <= dom.budget)
    # the second phase starts from the first one's circuits and still checks out
    res2 = solver.solve_phase(topo, pod_traffic(RING), opts, previous=res.assignment)
    assert check_assignment(topo, res2.assignment) == []


def test_summary_is_json_and_names_pod_pairs(topo4) -> None:
    res = solver.solve_phase(topo4, pod_traffic(RING), solver.parse_options({}))
    info = json.loads(json.dumps(res.summary()))
    assert info["circuits_per_pair"] == {"pod0-pod1": 6, "pod0-pod3": 6, "pod1-pod2": 6, "pod2-pod3": 6}
    assert info["alpha"] == pytest.approx(0.625) and info["backend"] == "highs"
    assert res.nodes == ("pod0", "pod1", "pod2", "pod3") and res.x.shape == (4, 4)
    assert res.rows > 0 and res.cols > 0 and res.nonzeros > 0 or res.stage == "heuristic"


def test_agg_layer_domains(topo4_agg) -> None:
    names = [d.name for d in solver.domains(topo4_agg)]
    assert names == ["core", "agg.0", "agg.1", "agg.2", "agg.3"]
    agg0 = solver.domains(topo4_agg)[1]
    assert agg0.nodes == ("tor0", "tor1", "tor2", "tor3") and agg0.upper_budget == 8
    # ToR 0 -> ToR 1 inside pod 0 gets direct ToR-ToR circuits
    tm = TrafficMatrix.from_pairs(64, np.arange(4), np.arange(4, 8), GB)
    res = solver.solve_phase(topo4_agg, tm, solver.parse_options({}))
    d = next(r for r in res.domains if r.domain == "agg.0")
    assert d.x[0, 1] >= 1 and d.alpha == pytest.approx(d.bound, rel=1e-6)


def test_export_lp_and_mps(tmp_path, topo4) -> None:
    opts = solver.parse_options({})
    (lp,) = solver.export_model(topo4, pod_traffic(RING), opts, tmp_path / "m.lp")
    text = lp.read_text()
    assert "Maximize" in text or "MAXIMIZE" in text
    assert "spill_out_0" in text and "x_0_1" in text
    (mps,) = solver.export_model(topo4, pod_traffic(RING), opts, tmp_path / "m.mps")
    assert "ROWS" in mps.read_text()
    with pytest.raises(ConfigError, match="lp or .mps"):
        solver.export_model(topo4, pod_traffic(RING), opts, tmp_path / "m.txt")
    with pytest.raises(ConfigError, match="no traffic"):
        solver.export_model(topo4, pod_traffic({(0, 0): GB}), opts, tmp_path / "e.lp")


def test_exported_model_solves_to_the_same_optimum(tmp_path, topo4) -> None:
    from solver.backends.highs import quiet_highs

    opts = solver.parse_options({})
    (path,) = solver.export_model(topo4, pod_traffic(RING), opts, tmp_path / "m.mps")
    h = quiet_highs()
    h.readModel(str(path))
    h.run()
    assert abs(h.getInfo().objective_function_value) == pytest.approx(0.625, rel=1e-6)


def test_assignment_of_a_schedule_checks(topo4) -> None:
    wl = workload_of([("ring", pod_traffic(RING), 0.0, 1), ("none", pod_traffic({(0, 0): GB}), 0.0, 1),
                      ("swap", pod_traffic(SWAP), 1.0, 1)])
    s = solver.plan_schedule(topo4, wl, solver.parse_options({}), seed=0)
    assert len(s.assignments) == 3 and all(isinstance(a, CircuitAssignment) for a in s.assignments)
    for a in s.assignments:
        check_assignment(topo4, a)


def test_idle_layers_are_pre_positioned_for_the_next_phase() -> None:
    # phase "local" sends nothing across pods; the ring after it has no idle window to switch in
    topo = rfabric4(ocs_reconfig_ms=10)
    wl = workload_of([("local", pod_traffic({(0, 0): GB, (1, 1): GB}), 0.0, 1), ("ring", pod_traffic(RING), 0.0, 1)])
    s = solver.plan_schedule(topo, wl, solver.parse_options({}), seed=0)
    first, second = s.decisions
    assert len(s.assignments[0]) > 0 and s.assignments[0] == s.assignments[1]
    assert "pre-positioned for phase 'ring'" in first.reason
    assert second.action == "kept" and second.changed == 0 and second.alpha == pytest.approx(0.625)


def test_wrap_around_plans_the_periodic_schedule() -> None:
    # a tiny phase before a big one, a 10 s switch and no idle window: pass 1 sets phase 0 up for its own
    # pattern and pays a switch into the big phase; in steady state phase 0 follows the big phase, where
    # switching back never pays, so the periodic schedule keeps the big phase's circuits throughout
    topo = rfabric4(ocs_reconfig_ms=10_000)
    wl = workload_of([("small", pod_traffic({k: 0.01 * GB for k in SWAP}), 0.0, 1),
                      ("big", pod_traffic({k: 1000 * GB for k in RING}), 0.0, 50)])
    s = solver.plan_schedule(topo, wl, solver.parse_options({}), seed=0)
    wrap = s.meta["wrap_around"]
    assert wrap["converged"] and wrap["passes"] == 2 and wrap["from_phase"] == "big"
    assert s.assignments[0] == s.assignments[1]  # periodic: no switch at all in steady state
    d0 = s.decisions[0]
    assert d0.action == "kept" and d0.changed == 0 and "wrap-around from phase 'big'" in d0.reason
    assert d0.termination == "feasible" and d0.bound >= d0.alpha  # kept circuits: no optimality claimed
    big = solver.solve_phase(topo, pod_traffic({k: 1000 * GB for k in RING}), solver.parse_options({}))
    ev = solver.evaluate(topo, pod_traffic({k: 1000 * GB for k in RING}), s.assignments[1])
    assert ev.objective == pytest.approx(big.objective) and s.decisions[1].alpha == pytest.approx(big.objective)


def test_wrap_around_of_one_phase_is_trivial() -> None:
    topo = rfabric4()
    s = solver.plan_schedule(topo, workload_of([("ring", pod_traffic(RING), 0.0, 1)]), solver.parse_options({}),
                             seed=0)
    assert s.meta["wrap_around"]["passes"] == 0 and "initial" in s.decisions[0].reason
