"""Packet-level cross-check timing: ns-3 import, per-scenario wall time, the whole validation.

Run: ``python -m pytest tests/benchmarks/bench_packet.py -m benchmark -s`` (needs the ``packet`` extra).
Reference (2-core VM shared with other jobs, ns3 3.44.post0): install ~104 s, ``from ns import ns`` 7-40 s;
the full validation (9 scenarios built by the real builders) is dominated by the four 64 MB k=4
fat-tree collectives and the two 64 MB RFabric ones; the flow-level side takes < 1 s in total.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.benchmark, pytest.mark.packet]


def test_bench_full_validation(tmp_path: Path) -> None:
    pytest.importorskip("ns", reason="ns-3 Python bindings not installed (pip install -e '.[packet]')")
    from validation import load_times
    from validation.compare import run_validation

    t = time.perf_counter()
    rows = run_validation(tmp_path)
    total = time.perf_counter() - t
    print(f"\nns-3 load: {load_times()}")
    for r in rows:
        print(f"{r['scenario']:32s} ns-3 {r['packet_wall_s']:6.2f} s ({r['packet_events']:>9d} events)  "
              f"flow-level {r['flow_wall_s']:.4f} s  phase err {100 * r['phase_err']:+.2f} %")
    print(f"total {total:.1f} s")
    assert total < 1800
