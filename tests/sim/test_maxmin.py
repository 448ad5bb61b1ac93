"""Max-min solvers: hand cases, the optimality certificate on random instances, both methods agree."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from rfabric.sim.maxmin import maxmin_rates

METHODS = ("waves", "heap")


@pytest.mark.parametrize("method", METHODS)
def test_classic_three_links(method: str) -> None:
    # f0 crosses links 0,1,2; f1 link 0; f2 link 1; f3 link 2; capacities 1, 2, 3
    a = sp.csr_matrix(np.array([[1, 1, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=float))
    r, _ = maxmin_rates(a, np.array([1.0, 2.0, 3.0]), method=method)
    assert r.tolist() == pytest.approx([0.5, 0.5, 1.5, 2.5], rel=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_weights_count_as_copies(method: str) -> None:
    # a flow of multiplicity 3 and a single flow on one link of 8: each copy gets 2
    a = sp.csr_matrix(np.array([[3.0], [1.0]]))
    r, _ = maxmin_rates(a, np.array([8.0]), method=method)
    assert r.tolist() == pytest.approx([2.0, 2.0], rel=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_empty_rows_are_unlimited(method: str) -> None:
    a = sp.csr_matrix((np.array([1.0]), (np.array([1]), np.array([0]))), shape=(2, 1))
    r, _ = maxmin_rates(a, np.array([5.0]), method=method)
    assert np.isinf(r[0]) and r[1] == 5.0


def test_unknown_method() -> None:
    with pytest.raises(ValueError):
        maxmin_rates(sp.csr_matrix(np.ones((1, 1))), np.ones(1), method="magic")


@st.composite
def instances(draw: st.DrawFn) -> tuple[sp.csr_matrix, np.ndarray]:
    nf = draw(st.integers(1, 25))
    nl = draw(st.integers(1, 12))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    mask = rng.random((nf, nl)) < 0.35
    mask[np.arange(nf), rng.integers(0, nl, nf)] = True  # every flow crosses a link
    a = mask * rng.choice([0.25, 0.5, 1.0, 2.0], (nf, nl))
    cap = rng.integers(1, 20, nl).astype(float)
    return sp.csr_matrix(a), cap


@settings(max_examples=150, deadline=None)
@given(instances())
def test_maxmin_certificate(inst: tuple[sp.csr_matrix, np.ndarray]) -> None:
    """Feasible, and every flow has a saturated link on which no flow gets more (max-min optimality)."""
    a, cap = inst
    dense = a.toarray()
    for method in METHODS:
        r, _ = maxmin_rates(a, cap, method=method)
        load = dense.T @ r
        assert np.all(load <= cap * (1 + 1e-9))
        for f in range(dense.shape[0]):
            links = np.flatnonzero(dense[f])
            ok = False
            for lnk in links:
                saturated = load[lnk] >= cap[lnk] * (1 - 1e-9)
                on = np.flatnonzero(dense[:, lnk])
                if saturated and r[f] >= r[on].max() * (1 - 1e-9):
                    ok = True
                    break
            assert ok, f"flow {f} has no bottleneck ({method})"
    rw, _ = maxmin_rates(a, cap, method="waves")
    rh, _ = maxmin_rates(a, cap, method="heap")
    np.testing.assert_allclose(rw, rh, rtol=1e-10)
