"""Hypothesis properties of simulate_flows on random small fabrics and random flows."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rfabric.circuits import CircuitAssignment
from rfabric.config import SimConfig
from rfabric.errors import SimulationError
from rfabric.sim import simulate_flows
from rfabric.topology import Topology
from rfabric.workload import FlowSet
from tests.sim.conftest import built
from topologies.templates import circuit_template

FABRICS = [
    ("fat_tree", 32, 4, {"switch_radix": 8}),
    ("fat_tree", 64, 1, {"switch_radix": 12, "oversubscription": 2}),
    ("rail_optimized", 32, 4, {"switch_radix": 8}),
    ("rfabric", 64, 2, {"switch_radix": 8}),
]


def _fabric(i: int) -> tuple[Topology, CircuitAssignment | None]:
    kind, gpus, gps, params = FABRICS[i]
    topo = built(kind, gpus, gps, **params)
    return topo, (circuit_template(topo, "mesh") if topo.has_ocs else None)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[int, FlowSet, SimConfig, int, bool]:
    fab = draw(st.integers(0, len(FABRICS) - 1))
    gpus = FABRICS[fab][1]
    n = draw(st.integers(1, 24))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    src = rng.integers(0, gpus, n)
    dst = (src + rng.integers(1, gpus, n)) % gpus
    size = rng.choice([0.0, 1e6, 5e7, 3e8], n)
    chain = rng.integers(0, 4, n)
    stage = rng.integers(0, 3, n)
    delay = rng.choice([0.0, 1e-4, 2e-3], n)
    mult = rng.integers(1, 3, n)
    fs = FlowSet.build(src, dst, size, chain=chain, stage=stage, delay_s=delay, multiplicity=mult)
    opts = SimConfig(routing=draw(st.sampled_from(["hash", "split", "spray", "adaptive"])), link_latency=draw(st.booleans()))
    return fab, fs, opts, draw(st.integers(0, 5)), draw(st.booleans())


@settings(max_examples=60, deadline=None)
@given(scenarios())
def test_flow_properties(sc: tuple[int, FlowSet, SimConfig, int, bool]) -> None:
    fab, fs, opts, seed, reconfigure = sc
    topo, circuits = _fabric(fab)
    changes = [(1e-3, CircuitAssignment()), (1e-3, circuits)] if (reconfigure and circuits is not None) else []
    tr = simulate_flows(topo, fs, assignment=circuits, changes=changes, options=opts, seed=seed)
    # every flow finishes
    assert np.all(np.isfinite(tr.finish_s)) and np.all(np.isfinite(tr.start_s))
    # bytes conserved
    total = float(np.dot(fs.size_bytes, fs.multiplicity))
    assert abs(sum(tr.bytes_by_medium.values()) - total) <= 1e-9 * total
    # capacity never exceeded at any instant
    assert tr.peak_utilisation <= 1 + 1e-9
    assert np.all((tr.util >= -1e-12) & (tr.util <= 1 + 1e-9))
    # finish >= start + size / fastest possible rate (a flow crosses its NIC or NVLink with all its bytes)
    nic, nvlink = topo.graph.graph["nic_bps"] / 8, 3200e9 / 8
    best = np.where(tr.nvlink, nvlink, nic)
    assert np.all(tr.finish_s >= tr.start_s + fs.size_bytes / best * (1 - 1e-9))
    # stages: a flow starts after every flow of the previous stage of its chain finished, plus its delay
    for c in np.unique(fs.chain):
        stages = np.unique(fs.stage[fs.chain == c])
        for a, b in zip(stages[:-1], stages[1:], strict=True):
            prev = (fs.chain == c) & (fs.stage == a)
            cur = (fs.chain == c) & (fs.stage == b)
            np.testing.assert_allclose(tr.start_s[cur], tr.finish_s[prev].max() + fs.delay_s[cur], rtol=1e-12)
    # deterministic for a fixed seed
    again = simulate_flows(topo, fs, assignment=circuits, changes=changes, options=opts, seed=seed)
    assert np.array_equal(again.finish_s, tr.finish_s) and again.events == tr.events


def test_hash_ecmp_depends_on_the_seed_only() -> None:
    topo = built("fat_tree", 128, 8, switch_radix=16)
    rng = np.random.default_rng(0)
    src = rng.integers(0, 128, 200)
    fs = FlowSet.build(src, (src + 8 + rng.integers(0, 112, 200)) % 128, 1e8)
    opts = SimConfig(routing="hash", link_latency=False)
    a = simulate_flows(topo, fs, options=opts, seed=1)
    b = simulate_flows(topo, fs, options=opts, seed=1)
    c = simulate_flows(topo, fs, options=opts, seed=2)
    assert np.array_equal(a.finish_s, b.finish_s)
    assert not np.array_equal(a.finish_s, c.finish_s)
    split = simulate_flows(topo, fs, options=SimConfig(routing="split", link_latency=False))
    assert split.end_s <= a.end_s * (1 + 1e-9)  # even spreading never loses to hash collisions here


@settings(max_examples=40, deadline=None)
@given(scenarios(), st.sampled_from([0.0, 0.01]))
def test_compiled_loop_matches_the_interpreted_loop(sc: tuple[int, FlowSet, SimConfig, int, bool], eps: float) -> None:
    """The compiled event loop (runs of events in numba) gives bit-identical traces to the Python loop."""
    from dataclasses import replace

    from rfabric.sim._kernels import HAVE_NUMBA
    from rfabric.sim.engine import run_flows
    from rfabric.sim.routing import Fabric

    if not HAVE_NUMBA:  # pragma: no cover
        return
    fab, fs, opts, seed, reconfigure = sc
    opts = replace(opts, merge_tolerance=eps)
    topo, circuits = _fabric(fab)
    changes = [(1e-3, CircuitAssignment()), (1e-3, circuits)] if (reconfigure and circuits is not None) else []
    fabric = Fabric.build(topo, [circuits, *(a for _, a in changes)])
    a, b = (run_flows(fabric, fs, assignment=circuits, changes=changes, options=opts, seed=seed, start_s=0.0,
                      loop=loop) for loop in (True, False))
    for k in ("start_s", "finish_s", "path_latency_s", "optical_share", "util_times_s", "util"):
        assert np.array_equal(getattr(a, k), getattr(b, k)), k
    assert (a.events, a.solves, a.iterations, a.peak_utilisation) == (b.events, b.solves, b.iterations, b.peak_utilisation)
    assert a.bytes_by_medium == b.bytes_by_medium


@settings(max_examples=40, deadline=None)
@given(scenarios(), st.sampled_from([0.0, 0.01]), st.integers(0, 2**32 - 1))
def test_compiled_loop_matches_the_interpreted_loop_with_instances(
        sc: tuple[int, FlowSet, SimConfig, int, bool], eps: float, gseed: int) -> None:
    """Pipelined runs (phase instances gating releases, epochs, an epoch policy switching circuits): the
    compiled loop gives bit-identical traces, instance times and epochs to the Python loop."""
    from dataclasses import replace

    from rfabric.sim._kernels import HAVE_NUMBA
    from rfabric.sim.engine import InstanceGraph, run_flows
    from rfabric.sim.routing import Fabric

    if not HAVE_NUMBA:  # pragma: no cover
        return
    fab, fs, opts, seed, reconfigure = sc
    opts = replace(opts, merge_tolerance=eps)
    topo, circuits = _fabric(fab)
    rng = np.random.default_rng(gseed)
    n_inst = int(rng.integers(1, 6))
    # a chain belongs to one instance; some instances may have no flows
    inst_of_chain = rng.integers(0, n_inst, int(fs.chain.max()) + 1)
    preds = tuple(tuple(int(q) for q in rng.choice(i, size=int(rng.integers(0, min(i, 2) + 1)), replace=False))
                  for i in range(n_inst))
    graph = InstanceGraph(flow_instance=inst_of_chain[fs.chain].astype(np.int64),
                          before_s=rng.choice([0.0, 1e-4, 3e-3], n_inst), after_s=rng.choice([0.0, 2e-3], n_inst),
                          preds=preds, key=tuple(rng.choice(["rollout", "train", "sync"], n_inst).tolist()))
    dark = CircuitAssignment()
    policy = None
    if reconfigure and circuits is not None:
        def policy(keys: tuple[str, ...], current: CircuitAssignment) -> CircuitAssignment:
            return dark if keys == ("sync",) else circuits
    fabric = Fabric.build(topo, [circuits, dark])
    out = []
    for loop in (True, False):
        try:
            out.append(run_flows(fabric, fs, assignment=circuits, changes=(), options=opts, seed=seed, start_s=0.0,
                                 graph=graph, epoch_policy=policy, loop=loop))
        except SimulationError as e:  # a dark-only epoch can strand flows: both loops must say so, alike
            out.append(str(e))
    a, b = out
    if isinstance(a, str) or isinstance(b, str):
        assert a == b
        return
    for k in ("start_s", "finish_s", "path_latency_s", "optical_share", "util_times_s", "util", "instance_start_s",
              "instance_comm_s", "instance_end_s"):
        assert np.array_equal(getattr(a, k), getattr(b, k), equal_nan=True), k
    assert (a.events, a.solves, a.iterations, a.peak_utilisation) == (b.events, b.solves, b.iterations, b.peak_utilisation)
    assert a.bytes_by_medium == b.bytes_by_medium
    assert a.epochs == b.epochs and a.end_s == b.end_s
    assert np.all(np.isfinite(a.instance_end_s))
