"""Routing models: spray (tier aggregates) equals split exactly, adaptive places pairs on free paths,
and the deprecated ``sim.ecmp`` key still works."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rfabric.circuits import logical_topology
from rfabric.config import SimConfig, parse_run_config, to_plain
from rfabric.errors import ConfigError, SimulationError
from rfabric.sim import simulate_flows
from rfabric.sim.routing import Fabric
from rfabric.workload import FlowSet
from tests.sim.conftest import built, line_topology
from topologies.templates import circuit_template

NIC = 400e9
# (kind, gpus, gpus per server, params): every one of them passes the spray-aggregate check
CLOS = [
    ("fat_tree", 64, 4, {"switch_radix": 8}),  # 4 pods, 3 tiers
    ("fat_tree", 64, 2, {"switch_radix": 8, "oversubscription": 3}),
    ("fat_tree", 64, 2, {"switch_radix": 8, "core_oversubscription": 2}),
    ("fat_tree", 48, 8, {"switch_radix": 64}),  # one pod: two tiers
    ("rail_optimized", 32, 4, {"switch_radix": 8}),
    ("rfabric", 64, 2, {"switch_radix": 8}),
    ("mixnet", 128, 4, {"switch_radix": 8, "region_servers": 4}),  # hosts under a 3-tier Clos of 1 NIC/server
    ("mixnet", 64, 8, {"switch_radix": 8, "region_servers": 4, "nic_ocs_share": 0.5}),  # 4 NICs/server on ToRs
]


def _finish(topo, fs, routing, **kw):  # type: ignore[no-untyped-def]
    return simulate_flows(topo, fs, options=SimConfig(routing=routing, link_latency=True), **kw)


def _ring(n: int, size: float) -> FlowSet:
    src = np.arange(n)
    return FlowSet.build(src, (src + 1) % n, np.full(n, size))


def _all_to_all(gpus: np.ndarray, size: float) -> FlowSet:
    s, d = np.meshgrid(gpus, gpus, indexing="ij")
    m = s != d
    return FlowSet.build(s[m], d[m], np.full(int(m.sum()), size))


def _weight_sync(n: int, size: float) -> FlowSet:
    half = n // 2
    src = np.arange(half)
    return FlowSet.build(src, src + half, np.full(half, size))


@pytest.mark.parametrize("case", range(len(CLOS)))
@pytest.mark.parametrize("pattern", ["ring", "all_to_all", "weight_sync"])
def test_spray_equals_split_on_collective_phases(case: int, pattern: str) -> None:
    kind, gpus, gps, params = CLOS[case]
    topo = built(kind, gpus, gps, **params)
    assert Fabric.build(topo, routing="spray").spray is not None  # the aggregated path is exercised
    fs = {"ring": _ring(gpus, 3e7), "all_to_all": _all_to_all(np.arange(0, gpus, 3), 1e6),
          "weight_sync": _weight_sync(gpus, 5e7)}[pattern]
    split, spray = _finish(topo, fs, "split"), _finish(topo, fs, "spray")
    np.testing.assert_allclose(spray.finish_s, split.finish_s, rtol=1e-9, atol=0)
    np.testing.assert_allclose(spray.util, split.util, rtol=1e-9, atol=1e-12)  # aggregates sampled, members not
    assert spray.bytes_by_medium == pytest.approx(split.bytes_by_medium, rel=1e-12)


def test_spray_weight_sync_reaches_the_nic_bound_where_hash_collides() -> None:
    topo = built("fat_tree", 64, 4, switch_radix=8)
    fs = _weight_sync(64, 1e8)
    bound = 1e8 * 8 / NIC
    spray = simulate_flows(topo, fs, options=SimConfig(routing="spray", link_latency=False))
    hashed = simulate_flows(topo, fs, options=SimConfig(routing="hash", link_latency=False))
    assert spray.end_s == pytest.approx(bound, rel=1e-12)
    assert hashed.end_s > 1.5 * bound  # 32 pairs on 16 core links: per-flow ECMP collides


@settings(max_examples=25, deadline=None)
@given(case=st.integers(0, len(CLOS) - 1), seed=st.integers(0, 2**31), circuits=st.booleans())
def test_spray_equals_split_on_random_flows(case: int, seed: int, circuits: bool) -> None:
    kind, gpus, gps, params = CLOS[case]
    topo = built(kind, gpus, gps, **params)
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 40))
    src = rng.integers(0, gpus, n)
    dst = (src + rng.integers(1, gpus, n)) % gpus
    fs = FlowSet.build(src, dst, rng.choice([1e6, 5e7, 3e8], n), delay_s=rng.choice([0.0, 1e-4, 2e-3], n),
                       multiplicity=rng.integers(1, 3, n))
    kw = {}
    if circuits and topo.has_ocs:  # exact walks over circuits meet aggregated always-on routes
        kw = {"assignment": circuit_template(topo, "mesh"), "changes": [(1e-3, circuit_template(topo, "tree"))]}
    split, spray = _finish(topo, fs, "split", **kw), _finish(topo, fs, "spray", **kw)
    np.testing.assert_allclose(spray.finish_s, split.finish_s, rtol=1e-9, atol=0)


def test_spray_with_ocs_to_tor_circuits_equals_split() -> None:
    # ToR<->ToR circuits on agg-layer OCS planes: exact walks use ToR uplinks that the always-on
    # aggregates also cover, so rows are lifted to (or expanded from) the aggregates consistently.
    topo = built("rfabric", 64, 2, switch_radix=8, agg_ocs_share=0.75, agg_ocs_upper_share=0.0)
    rng = np.random.default_rng(7)
    src = rng.integers(0, 64, 200)
    dst = (src + rng.integers(1, 64, 200)) % 64
    fs = FlowSet.build(src, dst, rng.choice([1e6, 5e7, 3e8], 200))
    kw = {"assignment": circuit_template(topo, "mesh")}
    split, spray = _finish(topo, fs, "split", **kw), _finish(topo, fs, "spray", **kw)
    np.testing.assert_allclose(spray.finish_s, split.finish_s, rtol=1e-9, atol=0)


@pytest.mark.parametrize("ecmp", ["spray", "split", "hash"])
def test_flows_of_one_pair_get_the_same_rows_however_many_share_it(ecmp: str) -> None:
    # Fluid routes are computed (and lifted to, or expanded from, the tier aggregates) once per switch pair
    # and then given to every flow of the pair: each of three interleaved copies of a batch gets, bit for
    # bit, the rows of its flow routed in the batch alone (same switch pairs, so the same aggregates are
    # lifted or expanded; here some are expanded, so a flow routed on its own could differ).
    topo = built("rfabric", 64, 2, switch_radix=8, agg_ocs_share=0.75, agg_ocs_upper_share=0.0)
    asg = circuit_template(topo, "mesh")
    state = Fabric.build(topo, [asg], routing="spray").state(asg)
    assert state.circuits_live and state.fabric.spray is not None
    rng = np.random.default_rng(3)
    src = rng.integers(0, 64, 120)
    dst = (src + rng.integers(1, 64, 120)) % 64
    once = state.route(src, dst, ecmp=ecmp, seed=5)
    thrice = state.route(np.tile(src, 3), np.tile(dst, 3), ecmp=ecmp, seed=5)
    for k in range(3):
        part = thrice.incidence[k * src.size:(k + 1) * src.size]
        assert np.array_equal(part.indptr, once.incidence.indptr)
        assert np.array_equal(part.indices, once.incidence.indices)
        assert np.array_equal(part.data, once.incidence.data)
        for a, b in ((thrice.latency_s, once.latency_s), (thrice.optical, once.optical)):
            assert np.array_equal(a[k * src.size:(k + 1) * src.size], b)
    if ecmp == "spray":
        alone = [state.route(src[i:i + 1], dst[i:i + 1], ecmp=ecmp, seed=5).incidence for i in range(src.size)]
        assert any(not np.array_equal(once.incidence[i].indices, alone[i].indices) for i in range(src.size))


def _vectorised_split_walk(state, cls, s, d, w):  # type: ignore[no-untyped-def]
    """The capacity-proportional walk over all requests at once, hop by hop (the numpy formulation the
    compiled ``_split_walk`` replaced): rows hop by hop, front entries merged with np.unique/np.bincount."""
    f = state.fabric
    dist = state.dist_a if cls == "A" else f.dist_b
    allowed = np.ones(f.num_arcs, dtype=bool) if cls == "A" else ~f.arc_circuit
    indptr, out_arc, out_v = state._switch_csr()
    cap, n_sw = state.capacity_bps, f.sw_nodes.size
    req, node, wt = np.arange(s.size), s.astype(np.int64), w.astype(np.float64)
    flag, optical = np.zeros(s.size, dtype=bool), np.zeros(s.size)
    rec: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    while req.size:
        at_dst = node == d[req]
        optical += np.bincount(req[at_dst & flag], wt[at_dst & flag], minlength=s.size)
        req, node, wt, flag = req[~at_dst], node[~at_dst], wt[~at_dst], flag[~at_dst]
        if not req.size:
            break
        cnt = indptr[node + 1] - indptr[node]
        row = np.repeat(np.arange(req.size), cnt)
        pos = np.arange(int(cnt.sum())) - np.repeat(np.cumsum(cnt) - cnt, cnt) + np.repeat(indptr[node], cnt)
        c_arc, c_v = out_arc[pos], out_v[pos]
        ok = allowed[c_arc] & (dist[c_v, d[req][row]] == dist[node[row], d[req][row]] - 1)
        row, c_arc, c_v = row[ok], c_arc[ok], c_v[ok]
        share = wt[row] * cap[c_arc] / np.bincount(row, cap[c_arc], minlength=req.size)[row]
        rec.append((req[row], c_arc, share))
        uk, inv = np.unique((req[row] * n_sw + c_v) * 2 + (flag[row] | f.arc_circuit[c_arc]), return_inverse=True)
        wt, flag, node, req = np.bincount(inv, share), (uk & 1).astype(bool), (uk >> 1) % n_sw, (uk >> 1) // n_sw
    r, a, sh = (np.concatenate([x[i] for x in rec]) for i in range(3))
    return r, a, sh, optical


@pytest.mark.parametrize("kind, gpus, gps, params", [
    ("rfabric", 64, 2, {"switch_radix": 8, "agg_ocs_share": 0.75, "agg_ocs_upper_share": 0.0}),
    ("rfabric", 64, 2, {"switch_radix": 8}), ("fat_tree", 64, 4, {"switch_radix": 8}),
    ("jupiter", 64, 4, {"switch_radix": 8}), ("mixnet", 128, 4, {"switch_radix": 8, "region_servers": 4})])
def test_compiled_split_walk_equals_the_vectorised_walk_bit_for_bit(kind: str, gpus: int, gps: int,
                                                                    params: dict) -> None:
    topo = built(kind, gpus, gps, **params)
    asg = circuit_template(topo, "mesh") if topo.has_ocs else None
    state = Fabric.build(topo, [asg], routing="split").state(asg)
    f = state.fabric
    tors = np.unique(f.tor[f.tor >= 0])
    rng = np.random.default_rng(11)
    s, d = rng.choice(tors, 200), rng.choice(tors, 200)
    w = rng.random(200)
    crossed = 0.0
    for cls, dist in (("A", state.dist_a), ("B", f.dist_b)):
        ok = (s != d) & (dist[s, d] < 1 << 20)
        got = state._walk(cls, s[ok], d[ok], w[ok], None)
        ref = _vectorised_split_walk(state, cls, s[ok], d[ok], w[ok])
        assert got[0].size > 0 and np.array_equal(got[3], ref[3])
        o_got, o_ref = np.argsort(got[0], kind="stable"), np.argsort(ref[0], kind="stable")  # same rows per request
        for x, y in zip(got[:3], ref[:3], strict=True):
            assert np.array_equal(x[o_got], y[o_ref])
        crossed += float(got[3].sum())
    assert (crossed > 0) == (asg is not None)  # circuit shares are exercised on the OCS fabrics


def test_no_aggregates_off_a_clos_and_spray_still_exact() -> None:
    topo = line_topology([100e9, 50e9], hosts_per_switch=2, nic_bps=400e9)
    assert Fabric.build(topo, routing="spray").spray is None
    fs = FlowSet.build([0, 1, 2], [4, 5, 5], [1e8, 1e8, 1e8])
    np.testing.assert_allclose(_finish(topo, fs, "spray").finish_s, _finish(topo, fs, "split").finish_s, rtol=1e-12)


def test_spray_on_a_single_tor_fabric() -> None:
    topo = built("fat_tree", 16, 8, switch_radix=64)  # two servers on one ToR: no uplink to aggregate
    fs = FlowSet.build([0, 1], [8, 9], [1e8, 1e8])
    tr = simulate_flows(topo, fs, options=SimConfig(routing="spray", link_latency=False))
    np.testing.assert_allclose(tr.finish_s, 1e8 * 8 / NIC, rtol=1e-12)


def test_adaptive_puts_pairs_on_disjoint_paths() -> None:
    # 6 ToRs of 4 GPUs (radix 8: 4 down, 4 single links up to the 4 aggs of their pod): 4 pairs
    # tor0 -> tor1 fit 4 disjoint paths.
    topo = built("fat_tree", 24, 1, switch_radix=8)
    fs = FlowSet.build([0, 1, 2, 3], [4, 5, 6, 7], np.full(4, 1e8))
    bound = 1e8 * 8 / NIC
    tr = simulate_flows(topo, fs, options=SimConfig(routing="adaptive", link_latency=False))
    np.testing.assert_allclose(tr.finish_s, bound, rtol=1e-12)
    f = Fabric.build(topo)
    r = f.state(None).route(fs.src, fs.dst, ecmp="adaptive", seed=3)
    tor0_up = np.flatnonzero((f.group == f.group_names.index("tor→agg")) & (f.arc_src == f.node_names.index("tor0")))
    assert tor0_up.size == 4
    assert np.all(r.incidence[:, tor0_up].sum(axis=0) == 1)  # every uplink of tor0 carries exactly one pair


def test_adaptive_depends_on_the_seed_only_for_ties() -> None:
    topo = built("fat_tree", 64, 4, switch_radix=8)
    fs = _weight_sync(64, 1e8)
    a = [simulate_flows(topo, fs, options=SimConfig(routing="adaptive", link_latency=False), seed=s).end_s
         for s in (0, 0, 1)]
    assert a[0] == a[1]
    assert max(a) == pytest.approx(1e8 * 8 / NIC, rel=1e-12)  # every seed finds a collision-free placement


def test_unknown_routing_is_an_error() -> None:
    topo = built("fat_tree", 64, 4, switch_radix=8)
    with pytest.raises(SimulationError, match="unknown routing"):
        Fabric.build(topo).state(None).route(np.array([0]), np.array([9]), ecmp="random", seed=0)
    with pytest.raises(ConfigError, match="sim.routing"):
        parse_run_config({"sim": {"routing": "ecmp"}})


def test_deprecated_ecmp_key_sets_routing_with_a_warning() -> None:
    with pytest.warns(FutureWarning, match="sim.ecmp is deprecated"):
        cfg = parse_run_config({"sim": {"ecmp": "split"}})
    assert cfg.sim.routing == "split" and cfg.sim.ecmp == "split"
    assert "ecmp" not in to_plain(cfg.sim)
    with pytest.warns(FutureWarning):
        assert SimConfig(ecmp="hash").routing == "hash"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert SimConfig().routing == "spray"
        assert parse_run_config({"sim": {"routing": "adaptive"}}).sim.ecmp == "adaptive"
        with pytest.raises(ConfigError, match="sim.ecmp"):
            SimConfig(routing="adaptive", ecmp="hash")
        with pytest.raises(ConfigError, match="sim.ecmp"):
            parse_run_config({"sim": {"routing": "adaptive", "ecmp": "hash"}})
        with pytest.raises(ConfigError, match="sim.routing"):
            SimConfig(routing="random")


@pytest.mark.parametrize("kind", ["fat_tree", "rail_optimized", "static_ocs", "rfabric", "jupiter", "mixnet", "topoopt"])
def test_always_on_table_without_the_graph_copy(kind: str) -> None:
    """``Topology.compile(always_on=True)`` is the table of ``logical_topology(topo).compile()`` (same nodes, arcs,
    order)."""
    topo = built(kind, 128, 8, **({} if kind == "topoopt" else {"switch_radix": 16}))
    a, b = logical_topology(topo).compile(), topo.compile(always_on=True)
    assert a.node_names == b.node_names
    for f in ("node_role", "arc_src", "arc_dst", "capacity_bps", "latency_s", "medium", "gpu_node"):
        assert np.array_equal(getattr(a, f), getattr(b, f)), f
    if topo.has_ocs:  # the OCS nodes are left out of the always-on table only
        assert len(topo.compile().node_names) > len(b.node_names)
    # arcs in networkx's edge order, both directions of an edge side by side
    from rfabric.topology import Medium

    edges = [(u, v) for u, v, d in topo.graph.edges(data=True) if d.get("medium") is not Medium.FIBRE]
    names = b.node_names
    assert [(names[x], names[y]) for x, y in zip(b.arc_src[0::2].tolist(), b.arc_dst[0::2].tolist(), strict=True)] == edges
    assert np.array_equal(b.arc_src[1::2], b.arc_dst[0::2])


@pytest.mark.parametrize("kind", ["fat_tree", "rfabric", "jupiter", "topoopt"])
def test_switch_distances_match_all_pairs_shortest_paths(kind: str) -> None:
    """The per-destination BFS gives scipy's all-pairs hop distances at every NIC switch (the columns used)."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import shortest_path

    from rfabric.sim.routing import _FAR

    topo = built(kind, 128, 8, **({} if kind == "topoopt" else {"switch_radix": 16}))
    circ = circuit_template(topo, "mesh") if topo.has_ocs and kind != "topoopt" else None
    fab = Fabric.build(topo, [circ])
    st = fab.state(circ)
    s = fab.sw_nodes.size
    sw_s, sw_d = fab.sw_of_node[fab.arc_src], fab.sw_of_node[fab.arc_dst]
    for dist, cap, allowed in ((st.dist_a, st.capacity_bps, np.ones(fab.num_arcs, dtype=bool)),
                               (fab.dist_b, fab.base_capacity_bps, ~fab.arc_circuit)):
        m = (sw_s >= 0) & (sw_d >= 0) & (cap > 0) & allowed & ~fab.arc_virtual
        d = shortest_path(sp.csr_matrix((np.ones(int(m.sum())), (sw_s[m], sw_d[m])), shape=(s, s)), unweighted=True)
        t = np.unique(fab.tor[fab.tor >= 0])
        assert t.size > 1
        assert np.array_equal(np.where(np.isfinite(d), d, _FAR).astype(np.int32)[:, t], dist[:, t])


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31), n=st.integers(2, 160), density=st.floats(0.2, 4.0), sources=st.integers(1, 150))
def test_bit_parallel_bfs_equals_scipy_hop_distances(seed: int, n: int, density: float, sources: int) -> None:
    """64 sources per sweep (several sweeps and a partial one here), unreachable nodes ``far``."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import shortest_path

    from rfabric.sim.routing import _FAR, _bfs_rows

    rng = np.random.default_rng(seed)
    m = int(density * n)
    g = sp.csr_matrix((np.ones(m), (rng.integers(0, n, m), rng.integers(0, n, m))), shape=(n, n))
    src = rng.choice(n, min(sources, n), replace=False).astype(np.int64)
    got = _bfs_rows(g.indptr.astype(np.int64), g.indices.astype(np.int64), src, n, int(_FAR))
    ref = shortest_path(g, unweighted=True, indices=src)
    assert np.array_equal(got, np.where(np.isfinite(ref), ref, _FAR).astype(np.int32))
