"""The ns-3 backend on fabrics from the real builders, against hand-computed timelines and the flow model
(needs the ``packet`` extra; skipped with a reason without it)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rfabric.config import SimConfig
from rfabric.errors import ConfigError
from rfabric.sim import simulate_flows
from rfabric.units import GBPS, MB, MS
from rfabric.workload import FlowSet
from validation import PacketOptions, run_packet
from validation.scenarios import SCENARIOS, Case, build_case

pytestmark = pytest.mark.packet

# MTU 9000: 8948 payload bytes per 9002 bytes on the wire (IP + TCP + timestamps + PPP)
WIRE = 9002 / 8948
NIC = 10 * GBPS


@pytest.fixture(scope="module")
def pair() -> Case:
    """Two one-GPU servers on one ToR (fat_tree builder)."""
    return build_case(SCENARIOS["single_flow"], quick=True)


@pytest.fixture(scope="module")
def rfabric() -> Case:
    """16 GPUs on the RFabric builder: pod-local ToR-ToR circuits, then ToR-aggregation circuits."""
    return build_case(SCENARIOS["rfabric_all_to_all_reconfig"], quick=True)


@pytest.fixture(scope="module")
def fat_tree() -> Case:
    return build_case(SCENARIOS["fat_tree_all_to_all_hash"], quick=True)


def test_single_flow_drains_at_line_rate(ns3: Any, pair: Case) -> None:
    tr = run_packet(pair.topology, FlowSet.build([0], [1], 2 * MB))
    ideal = 2 * MB * 8 / NIC
    assert tr.start_s[0] == 0.0
    # never faster than the wire allows, and within 4 % of it (headers, slow start, store-and-forward)
    assert ideal * WIRE <= tr.finish_s[0] <= ideal * 1.04
    assert tr.unfinished == 0 and tr.events > 0 and tr.nodes == 5


def test_stages_wait_for_the_previous_stage_plus_delay(ns3: Any, pair: Case) -> None:
    # stage 0: 0->1 (1 MB) and 1->0 (0.5 MB); stage 1: 1->0 after 0.2 ms of compute
    fs = FlowSet.build([0, 1, 1], [1, 0, 0], [1 * MB, 0.5 * MB, 0.5 * MB], chain=0, stage=[0, 0, 1],
                       delay_s=[0.0, 0.0, 0.2 * MS])
    tr = run_packet(pair.topology, fs)
    stage0_end = max(tr.finish_s[0], tr.finish_s[1])
    assert tr.start_s[2] == pytest.approx(stage0_end + 0.2 * MS, abs=1e-9)
    assert tr.finish_s[2] > tr.start_s[2] + 0.5 * MB * 8 / NIC


def test_multiplicity_is_that_many_connections(ns3: Any, pair: Case) -> None:
    one = run_packet(pair.topology, FlowSet.build([0], [1], 1 * MB, multiplicity=2))
    two = run_packet(pair.topology, FlowSet.build([0, 0], [1, 1], 1 * MB, chain=[0, 1]))
    assert one.meta["connections"] == 2
    assert one.end_s == pytest.approx(two.end_s, rel=0.02)


def test_zero_byte_flow_finishes_at_once(ns3: Any, pair: Case) -> None:
    tr = run_packet(pair.topology, FlowSet.build([0, 0], [1, 1], [0.0, 1e5], stage=[0, 1]))
    assert tr.finish_s[0] == tr.start_s[0] == 0.0
    assert tr.start_s[1] == 0.0 and tr.finish_s[1] > 0


def test_bad_inputs_are_config_errors(ns3: Any, pair: Case, rfabric: Case) -> None:
    with pytest.raises(ConfigError, match="itself"):
        run_packet(pair.topology, FlowSet.build([0], [0], 1.0))
    with pytest.raises(ConfigError, match="outside"):
        run_packet(pair.topology, FlowSet.build([0], [5], 1.0))
    assert rfabric.assignment is not None
    with pytest.raises(ConfigError, match="no OCS"):
        run_packet(pair.topology, FlowSet.build([0], [1], 1.0), changes=[(0.0, rfabric.assignment)])


def test_circuit_change_moves_traffic(ns3: Any, rfabric: Case) -> None:
    # GPUs 0, 1 (tor0, pod 0) -> 4, 5 (tor2, pod 1). On the pod-local plan only the electrical uplink
    # leads out of the pod: 5 Gb/s each. The change darkens those circuits at 0 and lights ToR-agg ones
    # 1 ms later: then each flow runs at its NIC's 10 Gb/s.
    fs = FlowSet.build([0, 1], [4, 5], 2 * MB, chain=[0, 1])
    before, changes = rfabric.assignment, rfabric.changes
    eps_only = run_packet(rfabric.topology, fs, assignment=before)
    gains = run_packet(rfabric.topology, fs, assignment=before, changes=changes)
    assert eps_only.end_s == pytest.approx(2 * MB * 8 / (NIC / 2), rel=0.04)
    dark = rfabric.topology.ocs_reconfig_s
    ideal = dark + (2 * MB - dark * NIC / 2 / 8) * 8 / NIC
    assert gains.meta["reconfigurations"] == 2
    assert ideal * 0.99 <= gains.end_s <= ideal * 1.10
    flow = simulate_flows(rfabric.topology, fs, assignment=before, changes=changes, options=rfabric.config.sim)
    assert ideal < flow.end_s < ideal + 10e-6  # the fluid model: the same timeline plus path latency


def test_pinned_hash_reproduces_the_flow_models_collisions(ns3: Any, fat_tree: Case) -> None:
    # both GPUs of tor0 send 2 MB to one GPU each in pod 3: find one destination pair whose hashed
    # routes (seed 0) share a link and one whose routes do not
    size = 2 * MB
    ends = {}
    for a in range(12, 16):
        for b in range(12, 16):
            if a != b:
                fs = FlowSet.build([0, 1], [a, b], size, chain=[0, 1])
                ends[(a, b)] = simulate_flows(fat_tree.topology, fs, options=SimConfig(routing="hash")).end_s
    alone = size * 8 / NIC
    hit = min(ends, key=lambda k: -ends[k])
    miss = min(ends, key=lambda k: ends[k])
    assert ends[hit] > 1.9 * alone and ends[miss] < 1.01 * alone  # seed 0 has both kinds
    opts = PacketOptions(ecmp="pinned")
    shared, apart = (run_packet(fat_tree.topology, FlowSet.build([0, 1], list(k), size, chain=[0, 1]), options=opts,
                                routing="hash") for k in (hit, miss))
    assert shared.end_s == pytest.approx(ends[hit], rel=0.05)  # ns-3 pins both on the shared link
    assert apart.end_s < 1.1 * alone


def test_same_seed_same_bytes(ns3: Any, rfabric: Case) -> None:
    fs = FlowSet.build([0, 1, 2, 3], [4, 8, 12, 5], 1 * MB, chain=np.arange(4))
    opts = PacketOptions(ecmp="pinned", spray="least_queued")
    a = run_packet(rfabric.topology, fs, assignment=rfabric.assignment, changes=rfabric.changes, options=opts, seed=3)
    b = run_packet(rfabric.topology, fs, assignment=rfabric.assignment, changes=rfabric.changes, options=opts, seed=3)
    assert np.array_equal(a.finish_s, b.finish_s) and a.events == b.events


def test_quick_validation_writes_table_and_figure(ns3: Any, tmp_path: Path) -> None:
    from validation.compare import COLUMNS, run_validation

    rows = run_validation(tmp_path, scenarios=["single_flow", "rfabric_all_to_all_direct"], quick=True)
    assert [r["scenario"] for r in rows] == ["single_flow", "rfabric_all_to_all_direct"]
    for ext in ("csv", "json", "png", "pdf"):
        assert (tmp_path / f"validation.{ext}").stat().st_size > 0
    with (tmp_path / "validation.csv").open() as fh:
        table = list(csv.DictReader(fh))
    assert tuple(table[0]) == COLUMNS
    assert [r["fabric"] for r in rows] == ["fat_tree", "rfabric"]
    for r in rows:
        assert abs(r["phase_err"]) < 0.05 and r["within_5pct"]
