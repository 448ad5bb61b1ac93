"""Plants whose nodes do not all share the same OCSes: pair capacities, the greedy's tie on a pinned alpha,
the fast path's placement order, and a phase that keeps its circuits."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from rfabric.circuits import CircuitAssignment
from solver.decompose import realise
from solver.formulation import Domain, Problem, make_problem
from solver.heuristics import evaluate_alpha, greedy, node_bound
from tests.solver.test_decompose import layout, sym

GB = 1e9


def test_pair_capacity_sums_the_shared_ports_per_ocs() -> None:
    d = layout([[1, 1, 0], [1, 0, 1], [2, 1, 1]])
    # (0, 1): 1 + 0 + 1; (0, 2): 0 + 1 + 1; (1, 2): 0 + 0 + 1
    assert d.pair_capacity(np.array([0, 0, 1]), np.array([1, 2, 2])).tolist() == [2, 2, 1]


def pinned() -> tuple[Domain, Problem]:
    """Three pairs of equal demand; nodes 4 and 5 share no OCS, so alpha is pinned at their electrical 0.25."""
    d = layout([[2, 2, 0, 0, 0, 0], [0, 0, 2, 2, 0, 0], [0, 0, 0, 0, 2, 0], [0, 0, 0, 0, 0, 2]])
    d = replace(d, eps_out_bps=np.full(6, 25e9), eps_in_bps=np.full(6, 25e9))
    T = np.zeros((6, 6))
    T[0, 1] = T[2, 3] = T[4, 5] = GB
    return d, make_problem(d, T, np.zeros(6), np.zeros(6))


def test_a_pinned_alpha_still_gets_circuits_where_they_can_be_built() -> None:
    d, p = pinned()
    assert node_bound(p) == pytest.approx(0.25, rel=1e-8)  # the pair capacity 0 of (4, 5) is in the bound
    x, z = greedy(p)
    assert evaluate_alpha(p, x, z) == pytest.approx(0.25, rel=1e-9)
    # every candidate ties on alpha; no circuits at all used to win the tie
    assert x[0, 1] >= 1 and x[2, 3] >= 1 and x[4, 5] == 0
    assert np.all(x[np.triu_indices(6, 1)] <= d.pair_capacity(*np.triu_indices(6, 1)))


def test_a_chain_is_placed_from_its_constrained_end() -> None:
    # nodes 0..2 on OCSes 0..3, node 3 only on OCSes 2 and 3: pair (2, 3) needs exactly those two.
    # Placed busiest/lowest first, (0, 1) takes OCSes 0, 1 and (1, 2) then 2, 3, leaving (2, 3) nothing
    # (the per-OCS integer program then had to repair it). Pair (4, 5) on OCS 4 keeps every OCS from
    # reaching all nodes (no whole permutation layers).
    d = layout([[1, 1, 1, 0, 0, 0], [1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 0, 0], [0, 0, 0, 0, 1, 1]])
    x = sym(6, {(0, 1): 2, (1, 2): 2, (2, 3): 2, (4, 5): 1})
    r = realise(d, x)
    assert r.dropped == 0 and r.method == "fast"
    assert np.array_equal(r.x, x)


def test_counts_equal_to_the_previous_circuits_keep_them_all() -> None:
    d = layout([[1, 1, 1, 0], [1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 1, 1]])
    x = sym(4, {(0, 1): 2, (1, 2): 2, (2, 3): 2})
    first = realise(d, x)
    again = realise(d, x, previous=CircuitAssignment.of(first.circuits))
    assert again.circuits == first.circuits and again.kept == len(first.circuits) and again.dropped == 0
    assert np.array_equal(again.x, x) and np.array_equal(again.split[1], first.split[1])
    assert (again.split[0] != first.split[0]).nnz == 0
    # one circuit fewer: not the same counts, the previous circuits still stay where they can
    fewer = realise(d, sym(4, {(0, 1): 1, (1, 2): 2, (2, 3): 2}), previous=CircuitAssignment.of(first.circuits))
    assert fewer.kept == len(first.circuits) - 1 and set(fewer.circuits) <= set(first.circuits)


def test_greedy_rounds_compiled_equal_interpreted() -> None:
    from solver.heuristics import _round_kernel

    rng = np.random.default_rng(7)
    n, m = 40, 150
    a = rng.integers(0, n - 1, m)
    b = a + 1 + rng.integers(0, n - 1 - a)
    key = np.unique(a * n + b)
    ea, eb = (key // n).astype(np.int64), (key % n).astype(np.int64)
    w = np.round(rng.random(ea.size) * 4, 1)  # ties on purpose
    cap = rng.integers(0, 4, ea.size).astype(np.int64)
    tie = np.arange(ea.size, dtype=np.int64)
    for per_round in (1, 2):
        got = []
        for fn in (_round_kernel, getattr(_round_kernel, "py_func", _round_kernel)):
            free = np.full(n, 5, dtype=np.int64)
            xe = np.zeros(ea.size, dtype=np.int64)
            order = np.lexsort((tie, -(w - xe))).astype(np.int64)
            fn(ea, eb, w, cap, free, xe, tie, order, per_round * 5 + 2, per_round)
            got.append((xe.copy(), free.copy()))
        assert np.array_equal(got[0][0], got[1][0]) and np.array_equal(got[0][1], got[1][1])
        xe, free = got[0]
        assert np.all(xe <= cap) and np.all(free >= 0)
        used = np.bincount(ea, xe, n) + np.bincount(eb, xe, n)
        assert np.array_equal(used.astype(np.int64) + free, np.full(n, 5))


@pytest.mark.parametrize("kind", ["ring", "a2a"])
def test_greedy_beyond_the_assignment_size_keeps_its_quality(kind: str) -> None:
    """256 pods (the compiled greedy rounds, not the assignment problem), within every node's ports: the
    ring as good as the assignment rounds (0.75, bench_solver), uniform all-to-all at its proven bound."""
    from solver.heuristics import ASSIGNMENT_MAX_NODES, greedy_layers, toy_domain

    P = 256
    assert P > ASSIGNMENT_MAX_NODES
    d = toy_domain(P, ports=1, ocs=16, eps_bps=4 * 100e9, host_bps=16 * 100e9)
    i = np.arange(P)
    T = np.zeros((P, P))
    if kind == "ring":
        T[i, (i + 1) % P] = GB
    else:
        T = (np.ones((P, P)) - np.eye(P)) * GB
    p = make_problem(d, T, np.zeros(P), np.zeros(P))
    assert greedy_layers(p) == (1, 2)
    x, z = greedy(p)
    assert np.all(x.sum(axis=1) + z <= p.budget)
    assert evaluate_alpha(p, x, z) == pytest.approx(0.75 if kind == "ring" else node_bound(p), rel=1e-6)
