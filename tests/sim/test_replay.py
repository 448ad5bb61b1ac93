"""Replayed stages (rfabric.workload.StageReplay): the engine plays a template's flows again with new sizes.

A replay must equal materialising the copies: hand-computed on one link, and a Hypothesis property against
the materialised flows (to 1e-9) on random small fabrics, with the compiled loop bit-identical to the
interpreted one.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rfabric.config import SimConfig
from rfabric.errors import SimulationError
from rfabric.sim import simulate_flows
from rfabric.sim._kernels import HAVE_NUMBA
from rfabric.sim.engine import InstanceGraph, run_flows
from rfabric.sim.routing import Fabric
from rfabric.workload import FlowSet, StageReplay
from tests.sim.conftest import line_topology
from tests.sim.test_properties import _fabric, scenarios

EXACT = SimConfig(link_latency=False, routing="split")
GB = 1e9
B = 8e9  # 8 Gb/s = 1 GB/s


def approx(x: float) -> object:
    return pytest.approx(x, rel=1e-9, abs=1e-12)


def _hand() -> FlowSet:
    # chain 0: stage 0 = 0->2 (1 GB); stage 1 (the template) = 0->2 (1 GB) and 1->3 (2 GB) after 0.5 s
    fs = FlowSet.build([0, 0, 1], [2, 2, 3], [1 * GB, 1 * GB, 2 * GB], stage=[0, 1, 1], delay_s=[0.0, 0.5, 0.5])
    return replace(fs, replay=StageReplay.build(chain=0, first_stage=1, stages=1, scale=[2.0, 0.5, 0.0],
                                                delay_s=[1.0, 0.0, 0.25]))


@pytest.mark.parametrize("loop", [True, False])
def test_replay_by_hand(loop: bool) -> None:
    # one 1 GB/s link between the two switches. Stage 0 ends at 1. Template from 1.5: both at 0.5 GB/s,
    # 0->2 done at 3.5, 1->3 alone for its last GB: 4.5. Replay x2 after 1 s: 2 and 4 GB, 5.5 + 4 + 2 = 11.5.
    # Replay x0.5: 0.5 and 1 GB, 11.5 + 1 + 0.5 = 13. Replay x0 after 0.25 s: zero bytes, drained at 13.25.
    topo = line_topology([B], hosts_per_switch=2)
    fs = _hand()
    tr = run_flows(Fabric.build(topo, routing=EXACT.routing), fs, assignment=None, changes=(), options=EXACT, seed=0, start_s=0.0,
                   loop=loop)
    assert tr.finish_s.tolist() == [approx(1.0), approx(3.5), approx(4.5)]  # every flow's own play
    assert tr.start_s.tolist() == [0.0, approx(1.5), approx(1.5)]
    assert tr.replay_end_s.tolist() == [approx(11.5), approx(13.0), approx(13.25)]
    assert tr.end_s == approx(13.25)
    assert tr.replay_bytes.tolist() == [0.0, approx(2.5 * GB), approx(5 * GB)]
    assert sum(tr.bytes_by_medium.values()) == approx(11.5 * GB)
    assert fs.total_bytes == approx(11.5 * GB)
    tm = fs.traffic(4).to_sparse().toarray()
    assert tm[0, 2] == approx(4.5 * GB) and tm[1, 3] == approx(7 * GB)


def test_replay_of_a_missing_stage_is_an_error() -> None:
    fs = replace(FlowSet.build([0], [2], [GB]), replay=StageReplay.build(0, 1, 1, 1.0, 0.0))
    with pytest.raises(ValueError, match="template stage"):
        fs.validate()
    with pytest.raises(SimulationError, match="template stage"):
        simulate_flows(line_topology([B], hosts_per_switch=2), fs, options=EXACT)


def materialise(fs: FlowSet) -> tuple[FlowSet, list[np.ndarray]]:
    """The replays of ``fs`` as copies of their templates (and, per replay, the indices of its copies)."""
    rp = fs.replay
    assert rp is not None
    base = replace(fs, replay=None)
    nxt = {int(c): int(fs.stage[fs.chain == c].max()) + 1 for c in np.unique(fs.chain)}
    parts, idx, n = [base], [], len(fs)
    for c, a, m, x, d in zip(rp.chain, rp.first_stage, rp.stages, rp.scale, rp.delay_s, strict=True):
        sel = (fs.chain == c) & (fs.stage >= a) & (fs.stage < a + m)
        cp = base.select(sel)
        cp = replace(cp, size_bytes=cp.size_bytes * x, stage=(cp.stage - a + nxt[int(c)]).astype(np.int32),
                     delay_s=np.where(cp.stage == a, d, cp.delay_s))
        nxt[int(c)] += int(m)
        parts.append(cp)
        idx.append(np.arange(n, n + len(cp)))
        n += len(cp)
    from traffic.phases import merge

    return merge(parts), idx


@st.composite
def replayed(draw: st.DrawFn) -> tuple[int, FlowSet, SimConfig, int]:
    fab, fs, opts, seed, _ = draw(scenarios())
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    k = int(rng.integers(1, 6))
    chains, firsts, lens = [], [], []
    for _ in range(k):
        c = int(rng.choice(fs.chain))
        st_c = np.unique(fs.stage[fs.chain == c])
        i = int(rng.integers(0, st_c.size))
        j = i
        while j + 1 < st_c.size and st_c[j + 1] == st_c[j] + 1 and rng.random() < 0.5:
            j += 1
        chains.append(c)
        firsts.append(int(st_c[i]))
        lens.append(j - i + 1)
    rp = StageReplay.build(chains, firsts, lens, rng.choice([0.0, 0.5, 1.0, 2.5], k), rng.choice([0.0, 1e-4, 3e-3], k))
    return fab, replace(fs, replay=rp), opts, seed


@settings(max_examples=60, deadline=None)
@given(replayed(), st.booleans())
def test_replay_equals_materialised_flows(sc: tuple[int, FlowSet, SimConfig, int], instances: bool) -> None:
    """Replayed stages finish when their materialised copies do (1e-9), every flow's own play too, and the
    bytes per medium agree; the compiled loop is bit-identical to the interpreted one."""
    fab, fs, opts, seed = sc
    topo, circuits = _fabric(fab)
    mat, idx = materialise(fs)
    fabric = Fabric.build(topo, [circuits], routing=opts.routing)
    graph_r = graph_m = None
    if instances:  # chains split over two instances, the second after the first
        inst = (fs.chain % 2).astype(np.int64)
        mk = lambda fi: InstanceGraph(flow_instance=fi, before_s=np.array([0.0, 1e-4]),  # noqa: E731
                                      after_s=np.array([2e-3, 0.0]), preds=((), (0,)), key=("a", "b"))
        graph_r, graph_m = mk(inst), mk((mat.chain % 2).astype(np.int64))
    kw = {"assignment": circuits, "changes": (), "options": opts, "seed": seed, "start_s": 0.0}
    runs = [run_flows(fabric, fs, graph=graph_r, loop=loop, **kw) for loop in (True, False)]
    m = run_flows(fabric, mat, graph=graph_m, **kw)
    n = len(fs)
    for r in runs:
        assert r.end_s == pytest.approx(m.end_s, rel=1e-9, abs=1e-15)
        np.testing.assert_allclose(r.finish_s, m.finish_s[:n], rtol=1e-9, atol=1e-15)
        np.testing.assert_allclose(r.start_s, m.start_s[:n], rtol=1e-9, atol=1e-15)
        ends = [float(np.max(m.finish_s[i], initial=-np.inf)) for i in idx]
        for got, want in zip(r.replay_end_s, ends, strict=True):
            if np.isfinite(want):
                assert got == pytest.approx(want, rel=1e-9, abs=1e-15)
        for k, v in m.bytes_by_medium.items():
            assert r.bytes_by_medium[k] == pytest.approx(v, rel=1e-9, abs=1e-3)
        played = (fs.size_bytes + r.replay_bytes) * fs.multiplicity
        assert played.sum() == pytest.approx(mat.total_bytes, rel=1e-9, abs=1e-3)
        if instances:
            np.testing.assert_allclose(r.instance_end_s, m.instance_end_s, rtol=1e-9, atol=1e-15)
    if HAVE_NUMBA:
        a, b = runs
        for k in ("start_s", "finish_s", "util_times_s", "util", "replay_end_s", "replay_bytes", "instance_end_s"):
            assert np.array_equal(getattr(a, k), getattr(b, k)), k
        assert (a.events, a.solves) == (b.events, b.solves)
