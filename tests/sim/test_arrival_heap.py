"""The compiled loop's arrival heap (:class:`rfabric.sim._loop.Pending`): runs of flows due together pop in
(due time, release order), the order of one heap entry per flow keyed by (time, insertion number)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rfabric.sim import _loop


def _pop_all(pq: _loop.Pending, ist: np.ndarray, srcs: tuple[np.ndarray, ...]) -> list[tuple[float, int]]:
    out = []
    n = int(ist[_loop.HEAP_N])
    while n > 0:
        t, w, p, c = float(pq.ht[0]), int(pq.hw[0]), int(pq.hp[0]), int(pq.hc[0])
        out += [(t, int(f)) for f in srcs[w][p:p + c]]
        n = _loop.seg_pop(pq, n)
    ist[_loop.HEAP_N] = n
    return out


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 40), st.integers(1, 6), st.integers(0, 2**32 - 1))
def test_runs_pop_in_time_then_release_order(n: int, batches: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    delay = rng.choice([0.0, 1e-3, 2e-3, 0.1], n)  # many ties: runs of equal due times
    order = rng.permutation(n).astype(np.int64)  # the "flows by stage group" source
    firsts = np.sort(rng.choice(n, size=int(rng.integers(0, n + 1)), replace=False)).astype(np.int64)
    pq = _loop.new_pending(2 * n, firsts)
    ist = np.zeros(_loop.IST_SIZE, dtype=np.int64)
    expect: list[tuple[float, int, int]] = []  # (due, release index, flow)
    k = 0
    _loop.release(pq, ist, 2, firsts, 0, firsts.size, 0.5, delay, -1.0)
    for f in firsts:
        expect.append((0.5 + delay[f], k, int(f)))
        k += 1
    cuts = np.sort(rng.integers(0, n + 1, batches))
    for a, b in zip(np.r_[0, cuts[:-1]], cuts, strict=True):  # batches of the other source, some with one delay
        base = float(rng.choice([0.0, 0.5, 1.0]))
        dl = float(rng.choice([-1.0, 0.0, 3e-3]))
        _loop.release(pq, ist, 0, order, int(a), int(b), base, delay, dl)
        for f in order[a:b]:
            expect.append((base + (dl if dl >= 0 else delay[f]), k, int(f)))
            k += 1
    got = _pop_all(pq, ist, (order, np.zeros(0, dtype=np.int64), firsts))
    want = [(t, f) for t, _, f in sorted(expect)]
    assert got == want
    # one entry per run of consecutive flows due together, never more than one per flow
    assert int(ist[_loop.SEQ]) <= len(expect)


def test_a_stage_of_one_delay_is_one_entry() -> None:
    delay = np.zeros(1000)
    src = np.arange(1000, dtype=np.int64)
    pq = _loop.new_pending(1000, src)
    ist = np.zeros(_loop.IST_SIZE, dtype=np.int64)
    _loop.release(pq, ist, 2, src, 0, 1000, 0.0, delay, -1.0)
    assert int(ist[_loop.HEAP_N]) == 1 and int(pq.hc[0]) == 1000
