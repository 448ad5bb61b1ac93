"""The ns-3 backend against hand-computed timelines and the flow-level simulator (needs the ``packet`` extra)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rfabric.errors import ConfigError
from rfabric.packet import run_packet
from rfabric.packet.scenarios import SCENARIOS, dumbbell, small_rfabric, uplinks
from rfabric.units import GBPS, MB, MS
from rfabric.workload import FlowSet

pytestmark = pytest.mark.packet

# MTU 9000: 8948 payload bytes per 9002 bytes on the wire (IP + TCP + timestamps + PPP)
WIRE = 9002 / 8948


def test_single_flow_drains_at_line_rate(ns3: Any) -> None:
    topo = dumbbell(1, 1)
    tr = run_packet(topo, FlowSet.build([0], [1], 2 * MB))
    ideal = 2 * MB * 8 / (10 * GBPS)
    assert tr.start_s[0] == 0.0
    # never faster than the wire allows, and within 2 % of it (headers, store-and-forward, latency)
    assert ideal * WIRE <= tr.finish_s[0] <= ideal * 1.02
    assert tr.unfinished == 0 and tr.events > 0 and tr.nodes == 6


def test_shared_bottleneck_makespan_and_bytes(ns3: Any) -> None:
    n = 3
    topo = dumbbell(n, n)
    tr = run_packet(topo, FlowSet.build(np.arange(n), np.arange(n) + n, 1 * MB, chain=np.arange(n)))
    ideal = n * MB * 8 / (10 * GBPS)
    assert ideal * WIRE <= tr.end_s <= ideal * 1.03
    # every flow needed at least its fair share of the wire
    assert np.all(tr.fct_s >= MB * 8 / (10 * GBPS))


def test_stages_wait_for_the_previous_stage_plus_delay(ns3: Any) -> None:
    topo = dumbbell(2, 2)
    # stage 0: 0->2 (1 MB) and 1->3 (0.5 MB); stage 1: 2->0 after 0.2 ms of compute
    fs = FlowSet.build([0, 1, 2], [2, 3, 0], [1 * MB, 0.5 * MB, 0.5 * MB], chain=0, stage=[0, 0, 1],
                       delay_s=[0.0, 0.0, 0.2 * MS])
    tr = run_packet(topo, fs)
    stage0_end = max(tr.finish_s[0], tr.finish_s[1])
    assert tr.start_s[2] == pytest.approx(stage0_end + 0.2 * MS, abs=1e-9)
    assert tr.finish_s[2] > tr.start_s[2] + 0.5 * MB * 8 / (10 * GBPS)


def test_multiplicity_is_that_many_connections(ns3: Any) -> None:
    topo = dumbbell(1, 1)
    one = run_packet(topo, FlowSet.build([0], [1], 1 * MB, multiplicity=2))
    two = run_packet(topo, FlowSet.build([0, 0], [1, 1], 1 * MB, chain=[0, 1]))
    assert one.meta["connections"] == 2
    assert one.end_s == pytest.approx(two.end_s, rel=0.02)


def test_same_seed_same_bytes(ns3: Any) -> None:
    sc = SCENARIOS["rfabric_all_to_all_change"](True)
    a = run_packet(sc.topology, sc.flows, assignment=sc.assignment, changes=sc.changes, seed=3)
    b = run_packet(sc.topology, sc.flows, assignment=sc.assignment, changes=sc.changes, seed=3)
    assert np.array_equal(a.finish_s, b.finish_s) and a.events == b.events


def test_circuit_change_moves_traffic(ns3: Any) -> None:
    topo = small_rfabric(ocs_reconfig_s=0.2 * MS)
    fs = FlowSet.build([4], [6], 4 * MB)  # tor2 -> tor3
    eps_only = run_packet(topo, fs, assignment=uplinks([0, 1]))
    gains = run_packet(topo, fs, assignment=uplinks([0, 1]), changes=[(0.5 * MS, uplinks([2, 3]))])
    # 10 Gb/s on the always-on path, 20 Gb/s (the NIC) once tor2 and tor3 have circuits to agg1
    assert eps_only.finish_s[0] == pytest.approx(4 * MB * 8 / (10 * GBPS), rel=0.03)
    ideal = 0.7 * MS + (4 * MB - 0.7 * MS * 10 * GBPS / 8) * 8 / (20 * GBPS)
    assert gains.meta["reconfigurations"] == 2
    assert ideal * 0.99 <= gains.finish_s[0] <= ideal * 1.10


def test_bad_inputs_are_config_errors(ns3: Any) -> None:
    topo = dumbbell(1, 1)
    with pytest.raises(ConfigError, match="itself"):
        run_packet(topo, FlowSet.build([0], [0], 1.0))
    with pytest.raises(ConfigError, match="outside"):
        run_packet(topo, FlowSet.build([0], [5], 1.0))
    with pytest.raises(ConfigError, match="no OCS"):
        run_packet(topo, FlowSet.build([0], [1], 1.0), changes=[(0.0, uplinks([0]))])


def test_zero_byte_flow_finishes_at_once(ns3: Any) -> None:
    tr = run_packet(dumbbell(1, 1), FlowSet.build([0, 0], [1, 1], [0.0, 1e5], stage=[0, 1]))
    assert tr.finish_s[0] == tr.start_s[0] == 0.0
    assert tr.start_s[1] == 0.0 and tr.finish_s[1] > 0


def test_quick_validation_writes_table_and_figure(ns3: Any, tmp_path: Path) -> None:
    from rfabric.packet.validate import COLUMNS, run_validation

    rows = run_validation(tmp_path, scenarios=["single_flow", "rfabric_transfer_change"], quick=True)
    assert [r["scenario"] for r in rows] == ["single_flow", "rfabric_transfer_change"]
    for ext in ("csv", "json", "png", "pdf"):
        assert (tmp_path / f"validation.{ext}").stat().st_size > 0
    with (tmp_path / "validation.csv").open() as fh:
        table = list(csv.DictReader(fh))
    assert tuple(table[0]) == COLUMNS
    single = rows[0]
    assert abs(single["phase_err"]) < 0.02 and single["within_5pct"]
    with pytest.raises(ConfigError, match="did you mean"):
        run_validation(tmp_path, scenarios=["single_flw"])
