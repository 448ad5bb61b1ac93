"""Port level: counts -> OCS port pairs; previous circuits kept; unrealisable duplex counts dropped, reported."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rfabric.circuits import CircuitAssignment, check_assignment
from solver.decompose import _alternate, _permutations, orient, previous_counts, realise
from solver.heuristics import toy_domain
from tests.solver.conftest import rfabric4


def random_counts(rng: np.random.Generator, n: int, budget: int, fill: float) -> np.ndarray:
    """A symmetric count matrix whose row sums stay within ``budget``."""
    x = np.zeros((n, n), dtype=np.int64)
    free = np.full(n, budget)
    for _ in range(int(fill * n * budget)):
        a, b = rng.integers(0, n, 2)
        if a != b and free[a] and free[b]:
            x[a, b] += 1
            x[b, a] += 1
            free[a] -= 1
            free[b] -= 1
    return x


def test_triangle_on_two_single_port_ocses_is_dropped_and_reported() -> None:
    d = toy_domain(3, ports=1, ocs=2)
    x = np.ones((3, 3), dtype=np.int64) - np.eye(3, dtype=np.int64)
    r = realise(d, x)
    assert r.dropped == 1 and len(r.circuits) == 2
    assert r.x.sum() == 4 and np.all(r.x <= x)


def test_even_cycle_on_two_single_port_ocses_is_exact() -> None:
    d = toy_domain(4, ports=1, ocs=2)
    x = np.zeros((4, 4), dtype=np.int64)
    for i in range(4):
        x[i, (i + 1) % 4] = x[(i + 1) % 4, i] = 1
    r = realise(d, x)
    assert r.dropped == 0 and np.array_equal(r.x, x)


def test_orientation_balances_degrees() -> None:
    rng = np.random.default_rng(1)
    x = random_counts(rng, 20, 7, 0.9)
    M = orient(x)
    assert np.array_equal(M + M.T, x)
    deg = x.sum(axis=1)
    assert np.all(np.abs(M.sum(axis=1) - M.sum(axis=0)) <= deg % 2 + 0)
    layers = _permutations(M)
    total = np.zeros_like(M)
    for perm in layers:
        live = perm >= 0
        assert len(set(perm[live].tolist())) == int(live.sum())  # a permutation: distinct targets
        total[np.flatnonzero(live), perm[live]] += 1
    assert np.array_equal(total, M)


def test_alternate_splits_paths_and_even_cycles() -> None:
    perm = np.array([1, 2, 3, 0, 5, 6, 4, -1])  # a 4-cycle, a 3-cycle, a fixed-free node
    m1, m2 = _alternate(perm)
    for m in (m1, m2):
        nodes = [v for e in m for v in e]
        assert len(nodes) == len(set(nodes))  # a matching
    assert len(m1) + len(m2) == 4 + 2  # the odd cycle loses one edge


@pytest.mark.parametrize("ports", [2, 4])
def test_even_ports_per_ocs_realise_every_count(ports) -> None:
    rng = np.random.default_rng(ports)
    d = toy_domain(30, ports=ports, ocs=16 // ports)
    x = random_counts(rng, 30, 16, 1.0)
    r = realise(d, x)
    assert r.dropped == 0 and np.array_equal(r.x, x)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**16), n=st.integers(2, 12), ports=st.integers(1, 3), ocs=st.integers(1, 4),
       fill=st.floats(0.1, 1.0), keep=st.booleans())
def test_realisation_is_valid_and_never_exceeds_ports(seed, n, ports, ocs, fill, keep) -> None:
    rng = np.random.default_rng(seed)
    d = toy_domain(n, ports=ports, ocs=ocs)
    x = random_counts(rng, n, ports * ocs, fill)
    prev = CircuitAssignment.of(realise(d, random_counts(rng, n, ports * ocs, fill)).circuits) if keep else None
    r = realise(d, x, previous=prev, weight=x.astype(float))
    # the port-level invariants check_assignment enforces, on a synthetic plant
    used = [(c.ocs, p) for c in r.circuits for p in (c.port_a, c.port_b)]
    assert len(used) == len(set(used))
    assert np.all(r.x.sum(axis=1) <= ports * ocs)
    x_again, _ = previous_counts(d, CircuitAssignment.of(r.circuits))
    assert np.array_equal(x_again, r.x)
    lost = np.maximum(x - r.x, 0).sum() // 2
    assert lost <= r.dropped  # every missing circuit is reported
    if prev is not None:
        xp, _ = previous_counts(d, prev)
        assert r.kept == np.minimum(xp, x)[np.triu_indices(n, 1)].sum()  # every circuit that could stay, stays
        assert r.kept <= len(set(prev.circuits) & set(r.circuits))


def test_real_plant_with_previous_keeps_ports_in_place() -> None:
    topo = rfabric4(core_ocs_upper_share=1.0)
    import solver

    (dom,) = solver.domains(topo)
    assert dom.upper_budget == 12 * 4
    x = np.zeros((4, 4), dtype=np.int64)
    x[0, 1] = x[1, 0] = 6
    x[2, 3] = x[3, 2] = 6
    z = np.array([6, 6, 6, 6])
    first = realise(dom, x, z)
    a1 = CircuitAssignment.of(first.circuits)
    assert check_assignment(topo, a1) == [] and first.dropped == 0 and np.array_equal(first.z, z)
    x2 = x.copy()
    x2[0, 1] = x2[1, 0] = 3
    x2[0, 2] = x2[2, 0] = 3
    x2[1, 3] = x2[3, 1] = 3
    x2[2, 3] = x2[3, 2] = 3
    second = realise(dom, x2, z, previous=a1)
    a2 = CircuitAssignment.of(second.circuits)
    assert check_assignment(topo, a2) == [] and np.array_equal(second.x, x2)
    assert second.kept == 3 + 3 + 24  # 3 + 3 pod circuits and all 24 upper circuits stay
    removed, added = a1.changed(a2)
    assert len(added) == len(removed) == 6
