"""The sparse per-OCS split (solver.ocs_split) against the dense K x n x n arrays it replaces."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from solver.ocs_split import as_split, lookup, shared_ocs, sym_split, upper_entries, upper_total


@st.composite
def entries(draw: st.DrawFn) -> tuple[int, int, np.ndarray]:
    K = draw(st.integers(1, 4))
    n = draw(st.integers(2, 6))
    m = draw(st.integers(0, 12))
    rows = [(draw(st.integers(0, K - 1)), *draw(st.lists(st.integers(0, n - 1), min_size=2, max_size=2, unique=True)),
             draw(st.integers(1, 3))) for _ in range(m)]
    return K, n, np.array(rows, dtype=np.int64).reshape(-1, 4)


@given(entries())
@settings(max_examples=60, deadline=None)
def test_sparse_split_equals_the_dense_one(case: tuple[int, int, np.ndarray]) -> None:
    K, n, e = case
    dense = np.zeros((K, n, n), dtype=np.int64)
    for k, a, b, v in e.tolist():
        dense[k, a, b] += v
        dense[k, b, a] += v
    Y = sym_split(K, n, e[:, 0], e[:, 1], e[:, 2], e[:, 3])
    assert np.array_equal(Y.toarray(), dense)
    assert np.array_equal(Y.sum(axis=0), dense.sum(axis=0)) and np.array_equal(Y.sum(axis=2), dense.sum(axis=2))
    k, a, b = np.nonzero(dense)
    assert [c.tolist() for c in Y.coords] == [k.tolist(), a.tolist(), b.tolist()]  # np.nonzero's order
    qk, qa, qb = np.meshgrid(np.arange(K), np.arange(n), np.arange(n), indexing="ij")
    assert np.array_equal(lookup(Y, qk.ravel(), qa.ravel(), qb.ravel()), dense.ravel())
    assert upper_total(Y) == int(np.triu(dense.sum(axis=0), k=1).sum())
    uk, ua, ub, uv = upper_entries(Y)
    assert np.all(ua < ub) and int(uv.sum()) == upper_total(Y)
    assert np.array_equal(as_split(dense).toarray(), dense)


@given(st.integers(1, 5), st.integers(2, 7), st.integers(0, 2**32 - 1))
@settings(max_examples=40, deadline=None)
def test_shared_ocs_equals_the_dense_mask(K: int, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    cap = rng.integers(0, 3, size=(K, n)) * (rng.random((K, n)) < 0.6)
    ea, eb = np.triu_indices(n, k=1)
    want = np.nonzero((cap[:, ea] > 0) & (cap[:, eb] > 0))
    got = shared_ocs(cap, ea, eb)
    assert [g.tolist() for g in got] == [w.tolist() for w in want]
