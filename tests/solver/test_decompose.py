"""Port level: counts -> OCS port pairs; previous circuits kept; unrealisable duplex counts dropped, reported."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rfabric.circuits import CircuitAssignment, check_assignment
from solver.decompose import _alternate, _permutations, orient, previous_counts, realise
from solver.formulation import Domain
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
    assert r.proven and "proven" in r.reason and "2 of the 3" in r.reason


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
    assert r.dropped == 0 or (r.reason and r.method == "exact")
    if prev is not None:
        xp, _ = previous_counts(d, prev)
        if r.method == "fast":  # every circuit that could stay, stays (the exact step puts realising first)
            assert r.kept == np.minimum(xp, x)[np.triu_indices(n, 1)].sum()
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


# ---- issue #11: never crash, never drop a circuit that fits -----------------------------------------------------


def layout(ports: list[list[int]], upper: list[int] | None = None) -> Domain:
    """A domain from per-OCS port counts ``ports[k][i]`` (node ``i`` on OCS ``k``) and upper ports per OCS."""
    lower, ups = [], []
    for k, per in enumerate(ports):
        nxt, row = 0, []
        for count in per:
            row.append(tuple(range(nxt, nxt + count)))
            nxt += count
        lower.append(tuple(row))
        ups.append(tuple(range(nxt, nxt + (upper[k] if upper else 0))))
    n = len(ports[0])
    return Domain(name="t", layer="core", pod=-1, nodes=tuple(f"pod{i}" for i in range(n)),
                  ocs=tuple(f"ocs.core.{k}" for k in range(len(ports))), lower_ports=tuple(lower),
                  upper_ports=tuple(ups), circuit_bps=100e9, eps_out_bps=np.zeros(n), eps_in_bps=np.zeros(n),
                  host_bps=np.full(n, 100e9), group_ids=tuple(range(n)))


def sym(n: int, pairs: dict[tuple[int, int], int]) -> np.ndarray:
    x = np.zeros((n, n), dtype=np.int64)
    for (a, b), c in pairs.items():
        x[a, b] += c
        x[b, a] += c
    return x


def valid(d: Domain, r) -> None:
    used = [(c.ocs, p) for c in r.circuits for p in (c.port_a, c.port_b)]
    assert len(used) == len(set(used))
    x_again, z_again = previous_counts(d, CircuitAssignment.of(r.circuits))
    assert np.array_equal(x_again, r.x) and np.array_equal(z_again, r.z)


def test_ocs_with_one_end_full_is_not_chosen() -> None:
    # OCS1 has many ports of node 1 and none of node 0: the circuit fits only on OCS0
    d = layout([[1, 1], [0, 20]])
    r = realise(d, sym(2, {(0, 1): 1}))
    valid(d, r)
    assert r.dropped == 0 and r.circuits[0].ocs == "ocs.core.0"


def test_uniform_core_layout_count_matrix_is_realised() -> None:
    d = layout([[35] * 4] * 5)  # 1,024-GPU core layer: 4 pods, 5 OCSes, 35 ports per pod per OCS
    x = np.array([[0, 5, 121, 13], [5, 0, 31, 139], [121, 31, 0, 23], [13, 139, 23, 0]])
    r = realise(d, x)
    valid(d, r)
    assert r.dropped == 0 and np.array_equal(r.x, x)


def test_three_matchings_on_three_single_port_ocses() -> None:
    d = layout([[1] * 5] * 3)
    x = sym(5, {(0, 2): 1, (0, 3): 1, (1, 3): 1, (1, 4): 1, (2, 4): 1, (3, 4): 1})
    r = realise(d, x)
    valid(d, r)
    assert r.dropped == 0 and np.array_equal(r.x, x)
    Y, _ = r.split
    assert np.all(Y.sum(axis=2) <= 1)  # every OCS holds a matching


def test_upper_circuit_that_fits_is_kept() -> None:
    d = layout([[1, 1, 1], [1, 1, 1]], upper=[0, 1])
    r = realise(d, sym(3, {(0, 1): 1, (0, 2): 1}), np.array([0, 1, 0]))
    valid(d, r)
    assert r.dropped == 0 and r.z.tolist() == [0, 1, 0]


def test_counts_beyond_the_ports_are_dropped_not_raised() -> None:
    d = layout([[1, 1], [1, 0]])
    r = realise(d, sym(2, {(0, 1): 3}), np.array([2, 0]))
    valid(d, r)
    assert r.x[0, 1] == 1 and r.dropped == 4 and r.proven


def per_ocs_fill(rng: np.random.Generator, P: np.ndarray, cap_up: np.ndarray, fill: float):
    """Per-OCS feasible circuit sets (within each OCS's ports): ``(Y, U)``."""
    K, n = P.shape
    Y = np.zeros((K, n, n), dtype=np.int64)
    U = np.zeros((K, n), dtype=np.int64)
    for k in range(K):
        free, fu = P[k].copy(), int(cap_up[k])
        for _ in range(int(fill * (free.sum() + fu)) + 1):
            a, b = rng.integers(0, n, 2)
            if a != b and free[a] and free[b]:
                Y[k, a, b] += 1
                Y[k, b, a] += 1
                free[a] -= 1
                free[b] -= 1
            elif a == b and fu and free[a]:
                U[k, a] += 1
                fu -= 1
                free[a] -= 1
    return Y, U


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**16), n=st.integers(2, 9), K=st.integers(1, 4), max_ports=st.integers(1, 3),
       upper=st.booleans(), keep=st.booleans(), fill=st.floats(0.3, 1.0))
def test_counts_from_per_ocs_circuit_sets_are_realised_in_full(seed, n, K, max_ports, upper, keep, fill) -> None:
    rng = np.random.default_rng(seed)
    P = rng.integers(0, max_ports + 1, size=(K, n))
    cap_up = rng.integers(0, 3, size=K) if upper else np.zeros(K, dtype=np.int64)
    d = layout(P.tolist(), cap_up.tolist())
    Y, U = per_ocs_fill(rng, P, cap_up, fill)
    prev = None
    if keep:
        Y2, U2 = per_ocs_fill(rng, P, cap_up, 0.8)
        prev = CircuitAssignment.of(realise(d, Y2.sum(axis=0), U2.sum(axis=0)).circuits)
    r = realise(d, Y.sum(axis=0), U.sum(axis=0), previous=prev)
    valid(d, r)
    assert r.dropped == 0, r.reason
    assert np.array_equal(r.x, Y.sum(axis=0)) and np.array_equal(r.z, U.sum(axis=0))
    if prev is not None:
        assert r.kept == len(set(prev.circuits) & set(r.circuits))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**16), n=st.integers(2, 8), K=st.integers(1, 3), keep=st.booleans())
def test_any_counts_are_realised_without_raising_and_losses_are_accounted(seed, n, K, keep) -> None:
    rng = np.random.default_rng(seed)
    P = rng.integers(0, 3, size=(K, n))
    cap_up = rng.integers(0, 2, size=K)
    d = layout(P.tolist(), cap_up.tolist())
    x = np.triu(rng.integers(0, 4, size=(n, n)), k=1)  # may exceed the ports: not necessarily realisable
    x = x + x.T
    z = rng.integers(0, 3, size=n)
    prev = None
    if keep:
        Y, U = per_ocs_fill(rng, P, cap_up, 0.7)
        prev = CircuitAssignment.of(realise(d, Y.sum(axis=0), U.sum(axis=0)).circuits)
    r = realise(d, x, z, previous=prev, time_limit_s=0.5)
    valid(d, r)
    assert np.all(r.x <= x) and np.all(r.z <= z)
    assert r.requested == int(np.triu(x, k=1).sum() + z.sum())
    assert r.dropped == r.requested - int(np.triu(r.x, k=1).sum() + r.z.sum())
    assert r.dropped == 0 or r.reason
    assert np.all(r.x.sum(axis=1) + r.z <= P.sum(axis=0))
