"""The planner's circuits do not depend on the machine's speed or load (issue #19).

The exact per-OCS step of :func:`solver.decompose.realise` used to run under the wall-clock limit
``solver.time_limit_s`` (2 s), so a loaded machine cut it short and planned other circuits. Its limits are
now deterministic (nodes, program size) and the wall clock is a safety net. A slow or loaded machine is
emulated here by handing HiGHS a proportionally smaller wall-clock limit (HiGHS reads its own clock, so
scaling its ``time_limit`` is what a machine that many times slower would see).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from solver.decompose import realise
from solver.heuristics import toy_domain
from solver.options import SAFETY_NET_NOTE


def _regular(n: int, degree: int, seed: int) -> np.ndarray:
    """Symmetric counts: ``degree / 2`` random Hamiltonian cycles (a ``degree``-regular multigraph)."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, n), dtype=np.int64)
    for _ in range(degree // 2):
        p = rng.permutation(n)
        for i in range(n):
            a, b = p[i], p[(i + 1) % n]
            x[a, b] += 1
            x[b, a] += 1
    return x


def _slow_highs(monkeypatch: pytest.MonkeyPatch, factor: float) -> None:
    """Every HiGHS run gets ``factor`` times its wall-clock limit (a machine ``1 / factor`` times as fast)."""
    import solver.backends.highs as highs

    real = highs.quiet_highs

    class Slow:
        def __init__(self, h: Any) -> None:
            self._h = h

        def setOptionValue(self, name: str, value: Any) -> Any:  # noqa: N802 - highspy's name
            if name == "time_limit":
                value = float(value) * factor
            return self._h.setOptionValue(name, value)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._h, name)

    monkeypatch.setattr(highs, "quiet_highs", lambda: Slow(real()))


# 40 nodes, one port on each of 6 OCSes, a 6-regular multigraph: the fast path leaves circuits out and the
# exact step (690 columns) closes at its first node in ~0.1 s
CASE = (40, 6, 6, 0)


def test_a_slow_machine_plans_the_same_circuits(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a machine 100x slower (or that loaded), the old 2-s limit became 20 ms of this machine's time and
    cut the ~0.1-s exact step short (other circuits, every time on the old code); the 60-s safety net
    becomes 0.6 s and never fires, so the node-limited program decides and the circuits are the same."""
    n, ocs, degree, seed = CASE
    d = toy_domain(n, ports=1, ocs=ocs)
    x = _regular(n, degree, seed)
    normal = realise(d, x)
    assert normal.method == "exact" and not normal.timed_out
    _slow_highs(monkeypatch, factor=0.01)
    slow = realise(d, x)
    assert not slow.timed_out, "the safety net fired: this machine is more than 100x slower than the test assumes"
    assert slow.circuits == normal.circuits and slow.method == normal.method and slow.dropped == normal.dropped


def test_the_safety_net_is_reported_when_it_fires(monkeypatch: pytest.MonkeyPatch) -> None:
    n, ocs, degree, seed = CASE
    d = toy_domain(n, ports=1, ocs=ocs)
    x = _regular(n, degree, seed)
    _slow_highs(monkeypatch, factor=1e-9)  # nothing finishes within the net
    r = realise(d, x)
    assert r.timed_out
    assert r.dropped == 0 or SAFETY_NET_NOTE in r.reason


def test_a_program_above_the_size_bound_is_not_started(monkeypatch: pytest.MonkeyPatch) -> None:
    import solver.backends.highs as highs

    n, ocs, degree, seed = CASE
    d = toy_domain(n, ports=1, ocs=ocs)
    x = _regular(n, degree, seed)
    calls: list[int] = []
    real = highs.solve_arrays
    def counted(*a: Any, **k: Any) -> Any:
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(highs, "solve_arrays", counted)
    r = realise(d, x, max_columns=100)
    assert not calls and r.method == "fast" and not r.timed_out
    if r.dropped:
        assert not r.proven and "ocs_max_columns" in r.reason
