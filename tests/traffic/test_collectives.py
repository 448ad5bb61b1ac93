"""Collective algorithms: hand-computed small cases, analytic byte counts, Hypothesis properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rfabric.workload import FlowSet
from traffic.collectives import (
    ALGORITHMS,
    all_reduce,
    all_to_all,
    broadcast,
    collective,
    point_to_point,
    split_over,
    then,
)

S = 8e6


def sent(fs: FlowSet, n_gpus: int) -> np.ndarray:
    return np.bincount(fs.src, weights=fs.size_bytes * fs.multiplicity, minlength=n_gpus)


def recv(fs: FlowSet, n_gpus: int) -> np.ndarray:
    return np.bincount(fs.dst, weights=fs.size_bytes * fs.multiplicity, minlength=n_gpus)


# ---- hand-computed cases ------------------------------------------------------------------------


def test_ring_all_reduce_exact_four_ranks() -> None:
    fs = all_reduce(np.array([[3, 1, 2, 0]]), 4e6, stages="exact")
    assert int(fs.stage.max()) + 1 == 6  # 2(n-1) steps
    for k in range(6):
        m = fs.stage == k
        assert sorted(zip(fs.src[m].tolist(), fs.dst[m].tolist(), strict=True)) == [(0, 3), (1, 2), (2, 0), (3, 1)]
        assert np.all(fs.size_bytes[m] == 1e6)
    assert np.all(sent(fs, 4) == 6e6)  # 2 (n-1)/n S
    assert set(np.unique(fs.chain).tolist()) == {0}


def test_ring_coalesced_carries_all_steps_and_latency() -> None:
    fs = all_reduce(np.array([[0, 1, 2, 3]]), 4e6, delay_s=0.5, step_latency_s=1e-3)
    assert len(fs) == 4 and np.all(fs.size_bytes == 6e6) and np.all(fs.stage == 0)
    assert fs.delay_s == pytest.approx(np.full(4, 0.5 + 5e-3))


def test_halving_doubling_partners_and_sizes() -> None:
    fs = all_reduce(np.array([[0, 1, 2, 3]]), 4e6, algorithm="halving_doubling")
    rows = sorted(zip(fs.stage.tolist(), fs.src.tolist(), fs.dst.tolist(), fs.size_bytes.tolist(), strict=True))
    # reduce-scatter: distance 2 (S/2), distance 1 (S/4); all-gather: distance 1 (S/4), distance 2 (S/2)
    expect = ([(0, i, i ^ 2, 2e6) for i in range(4)] + [(1, i, i ^ 1, 1e6) for i in range(4)]
              + [(2, i, i ^ 1, 1e6) for i in range(4)] + [(3, i, i ^ 2, 2e6) for i in range(4)])
    assert rows == sorted(expect)


def test_double_binary_tree_four_ranks() -> None:
    fs = all_reduce(np.array([[0, 1, 2, 3]]), 4e6, algorithm="double_binary_tree", stages="exact")
    # tree A: 0 <- 1, 0 <- 2, 1 <- 3; tree B (reversed): 3 <- 2, 3 <- 1, 2 <- 0; each edge S/2 up and down
    up = {(int(s), int(d)) for s, d, k in zip(fs.src, fs.dst, fs.stage, strict=True) if k < 2}
    assert up == {(1, 0), (2, 0), (3, 1), (2, 3), (1, 3), (0, 2)}
    assert np.all(fs.size_bytes == 2e6)
    assert int(fs.stage.max()) + 1 == 4  # depth 2: two levels up, two down
    assert fs.total_bytes == pytest.approx(2 * 3 * 4e6)  # 2 (n-1) S over all ranks


def test_hierarchical_all_reduce_two_servers() -> None:
    # 2 servers x 2 GPUs (gpus_per_server=2): intra RS S/2, inter AR of S/2 between GPUs 0-2 and 1-3, intra AG
    fs = all_reduce(np.array([[0, 1, 2, 3]]), 4e6, algorithm="hierarchical", stages="exact", gpus_per_server=2)
    st0 = fs.stage == 0
    assert sorted(zip(fs.src[st0].tolist(), fs.dst[st0].tolist(), strict=True)) == [(0, 1), (1, 0), (2, 3), (3, 2)]
    inter = (fs.src // 2) != (fs.dst // 2)
    # ring all-reduce of S/l = 2e6 over m = 2 servers: 2 steps, each pair exchanging 1e6 both ways
    pairs = sorted(zip(fs.src[inter].tolist(), fs.dst[inter].tolist(), strict=True))
    assert pairs == sorted(2 * [(0, 2), (1, 3), (2, 0), (3, 1)])
    assert np.all(fs.size_bytes[inter] == 1e6)
    assert int(fs.stage.max()) + 1 == 1 + 2 + 1
    assert fs.size_bytes[inter].sum() == pytest.approx(4 * 2 * (2 - 1) / 2 * 2e6)


def test_all_to_all_direct_and_exact_shifts() -> None:
    fs = all_to_all(np.array([[0, 1, 2]]), 3e6, stages="exact")
    assert len(fs) == 6 and np.all(fs.size_bytes == 1e6)
    assert np.all(fs.dst[fs.stage == 0] == (fs.src[fs.stage == 0] + 1) % 3)
    assert np.all(sent(fs, 3) == 2e6)


def test_all_to_all_hierarchical_network_bytes() -> None:
    g = np.arange(16)[None, :]  # 4 servers x 4 GPUs
    d = all_to_all(g, 16e6, gpus_per_server=4)
    h = all_to_all(g, 16e6, algorithm="hierarchical", gpus_per_server=4)
    net = lambda fs: fs.size_bytes[(fs.src // 4) != (fs.dst // 4)].sum()  # noqa: E731
    assert net(h) == pytest.approx(net(d)) == pytest.approx(16 * 3 / 4 * 16e6)
    remote_peers = lambda fs: len({(int(s), int(t)) for s, t in zip(fs.src, fs.dst, strict=True) if s // 4 != t // 4})  # noqa: E731
    assert remote_peers(h) == 16 * 3 and remote_peers(d) == 16 * 12
    assert np.all(recv(h, 16) >= 0)


def test_broadcast_tree_root_and_levels() -> None:
    fs = broadcast(np.array([[10, 11, 12, 13, 14]]), 5e6, root=2, stages="exact")
    assert len(fs) == 4 and np.all(fs.size_bytes == 5e6)
    r = recv(fs, 15)
    assert r[12] == 0 and np.all(r[[10, 11, 13, 14]] == 5e6)
    assert set(fs.src[fs.stage == 0].tolist()) == {12}


def test_point_to_point_and_then() -> None:
    a = point_to_point([0, 1], [1, 0], 1e6, chain=[0, 0])
    b = point_to_point([0], [2], 2e6, chain=[0], tag="other")
    c = then(a, b, delay_s=0.25)
    assert c.stage.tolist() == [0, 0, 1] and c.delay_s.tolist() == [0, 0, 0.25]
    assert c.tags == ("p2p", "other") and c.tag.tolist() == [0, 0, 1]
    with pytest.raises(ValueError, match="itself"):
        point_to_point([1], [1], 1.0)


def test_split_over_spreads_bytes_and_delays() -> None:
    g = np.array([[0, 1]])
    fs = split_over(lambda i, d: all_reduce(g, 1e6, delay_s=d), 3, 0.1)
    assert int(fs.stage.max()) == 2 and fs.total_bytes == pytest.approx(3 * 2 * 1e6)
    assert sorted(set(fs.delay_s.tolist())) == [0.1]


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="power-of-two"):
        all_reduce(np.array([[0, 1, 2]]), 1.0, algorithm="halving_doubling")
    with pytest.raises(ValueError, match="twice"):
        all_reduce(np.array([[0, 0]]), 1.0)
    with pytest.raises(ValueError, match="same number"):
        all_reduce(np.array([[0, 1, 8]]), 1.0, algorithm="hierarchical")
    with pytest.raises(ValueError):
        all_reduce(np.array([[0, 1]]), -1.0)
    with pytest.raises(ValueError, match="unknown"):
        collective("all_reduce", np.array([[0, 1]]), 1.0, algorithm="bogus")


# ---- analytic totals for every algorithm, Hypothesis over sizes ------------------------------------

EXPECTED_PER_RANK = {
    "all_reduce": lambda n: 2 * (n - 1) / n,
    "reduce_scatter": lambda n: (n - 1) / n,
    "all_gather": lambda n: (n - 1) / n,
    "all_to_all": lambda n: (n - 1) / n,
}


@st.composite
def cases(draw: st.DrawFn) -> tuple[str, str, str, int, int, int]:
    op = draw(st.sampled_from(sorted(EXPECTED_PER_RANK)))
    algo = draw(st.sampled_from(ALGORITHMS[op]))
    gps = draw(st.sampled_from([1, 2, 4, 8]))
    if algo == "halving_doubling":
        n = draw(st.sampled_from([2, 4, 8, 16]))
    elif algo == "hierarchical":
        n = gps * draw(st.integers(1 if gps > 1 else 2, 4))
    else:
        n = draw(st.integers(2, 12))
    groups = draw(st.integers(1, 3))
    stages = draw(st.sampled_from(["coalesced", "exact"]))
    return op, algo, stages, n, groups, gps


@given(cases(), st.integers(0, 2**31 - 1))
@settings(max_examples=120, deadline=None)
def test_total_bytes_match_formula(case: tuple[str, str, str, int, int, int], seed: int) -> None:
    op, algo, stages, n, G, gps = case
    rng = np.random.default_rng(seed)
    gpus = rng.permutation(G * n).reshape(G, n) if algo != "hierarchical" else np.arange(G * n).reshape(G, n)
    fs = collective(op, gpus, S, algorithm=algo, stages=stages, gpus_per_server=gps)
    assert np.all(fs.src != fs.dst)
    assert np.all(fs.size_bytes > 0)
    total = fs.total_bytes
    if op == "all_reduce" and algo == "hierarchical":
        m, loc = n // gps, gps
        expect = G * n * (2 * (loc - 1) / loc * S + 2 * (m - 1) / m * S / loc)
    elif op == "all_to_all" and algo == "hierarchical":
        m, loc = n // gps, gps
        expect = G * n * ((loc - 1) * m * S / n + (m - 1) * loc * S / n)
        net = fs.size_bytes[(fs.src // gps) != (fs.dst // gps)].sum()
        assert net == pytest.approx(G * n * EXPECTED_PER_RANK[op](m) * S)  # what the network carries
    else:
        expect = G * n * EXPECTED_PER_RANK[op](n) * S
    assert total == pytest.approx(expect, rel=1e-9)
    # chains are the instances; every GPU of an instance takes part
    assert np.unique(fs.chain).size == G
    if algo in ("ring", "direct", "halving_doubling"):  # symmetric algorithms: every rank sends the same
        s = sent(fs, G * n)
        assert np.allclose(s, EXPECTED_PER_RANK[op](n) * S)
        assert np.allclose(recv(fs, G * n), s)
    # stages of every chain are 0..k without gaps
    for c in np.unique(fs.chain):
        st_c = np.unique(fs.stage[fs.chain == c])
        assert st_c.tolist() == list(range(st_c.size))


@given(st.integers(2, 20), st.integers(0, 19), st.sampled_from(["coalesced", "exact"]))
@settings(max_examples=40, deadline=None)
def test_broadcast_delivers_once_to_everyone(n: int, root: int, stages: str) -> None:
    root %= n
    fs = broadcast(np.arange(n)[None, :], S, root=root, stages=stages)
    r = recv(fs, n)
    assert r[root] == 0
    assert np.all(np.delete(r, root) == S)
    assert fs.total_bytes == pytest.approx((n - 1) * S)


@given(st.integers(2, 16), st.sampled_from(["ring", "double_binary_tree"]))
@settings(max_examples=30, deadline=None)
def test_exact_and_coalesced_agree_on_pairs_and_bytes(n: int, algo: str) -> None:
    g = np.arange(n)[None, :]
    e = all_reduce(g, S, algorithm=algo, stages="exact")
    c = all_reduce(g, S, algorithm=algo, stages="coalesced")
    te, tc = e.traffic(n), c.traffic(n)
    assert np.array_equal(te.src, tc.src) and np.array_equal(te.dst, tc.dst)
    assert np.allclose(te.size_bytes, tc.size_bytes)
    assert int(c.stage.max()) == 0


def test_per_group_sizes_and_delays() -> None:
    g = np.array([[0, 1], [2, 3]])
    fs = all_reduce(g, np.array([1e6, 3e6]), delay_s=np.array([0.0, 2.0]))
    assert np.allclose(sent(fs, 4), [1e6, 1e6, 3e6, 3e6])
    assert fs.delay_s[fs.chain == 1].tolist() == [2.0, 2.0]


def test_all_to_all_nvlink_shift_keeps_bytes_and_port_loads() -> None:
    g = np.arange(16).reshape(1, 16)  # two 8-GPU servers
    full = all_to_all(g, 16e6)
    for algo in ("direct", "hierarchical"):
        a = all_to_all(g, 16e6, algorithm=algo)
        s = all_to_all(g, 16e6, algorithm=algo, nvlink_shift=True)
        assert s.total_bytes == pytest.approx(a.total_bytes, rel=1e-12)
        intra = s.src // 8 == s.dst // 8
        # in-server: one flow per GPU to the next GPU of its server, multiplicity 7
        assert int(intra.sum()) == 16 and set(s.multiplicity[intra].tolist()) == {7}
        assert np.all(s.dst[intra] % 8 == (s.src[intra] + 1) % 8)
        # every GPU's NVLink port sends and receives the same bytes as with the full exchange
        w = s.size_bytes * s.multiplicity
        wa = a.size_bytes * a.multiplicity
        ia = a.src // 8 == a.dst // 8
        for end in ("src", "dst"):
            assert np.bincount(getattr(s, end)[intra], weights=w[intra], minlength=16) == pytest.approx(
                np.bincount(getattr(a, end)[ia], weights=wa[ia], minlength=16))
        # cross-server flows unchanged
        assert np.array_equal(np.sort(s.size_bytes[~intra]), np.sort(a.size_bytes[~ia]))
    assert len(all_to_all(g, 16e6, nvlink_shift=True)) == 16 + 128 < len(full) == 240
