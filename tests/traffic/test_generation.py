"""Generation: decode roofline, experts touched, continuous batching, runs, alpha, KV migration (hand-computed)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rfabric.config import ClusterConfig, SimConfig
from rfabric.sim import simulate
from rfabric.workload import PhaseStep, Workload
from tests.sim.conftest import line_topology
from traffic import build_workload, parse_spec
from traffic.collectives import all_reduce
from traffic.generation import (
    Roofline,
    admission_schedule,
    decode_alpha_s,
    decode_runs,
    expected_experts_touched,
    kv_migration,
    sum_of_max_lines,
)
from traffic.latency import Latency
from traffic.models import load_model
from traffic.parallelism import RolloutLayout

HBM, MBU, PEAK, MFU = 3.35e12, 0.6, 989e12, 0.4


def approx(x: float) -> object:
    return pytest.approx(x, rel=1e-9)


def roof(model: str, tp: int, dpa: int = 1, ep: int = 1, ffn: int = 0) -> Roofline:
    lay = RolloutLayout.build(offset=0, gpus=tp * dpa + ffn, tp=tp, dp_attention=dpa, ep=ep, ffn_gpus=ffn)
    return Roofline(model=load_model(model), layout=lay, hbm_bytes_per_s=HBM * MBU, flops_per_s=PEAK * MFU)


def test_expert_touch_expectation_matches_seeded_monte_carlo() -> None:
    rng = np.random.default_rng(1234)
    E, k, ep = 128, 8, 8
    for T in (1, 4, 16, 64):
        trials = 4000
        # each token picks k distinct experts uniformly: argsort of uniform keys, first k
        picks = np.argsort(rng.random((trials, T, E)), axis=2)[:, :, :k]
        hit = np.zeros((trials, E), dtype=bool)
        np.put_along_axis(hit, picks.reshape(trials, -1), True, axis=1)
        per_rank = hit[:, : E // ep].sum(axis=1)  # EP rank 0 holds experts 0..15
        want = float(expected_experts_touched(T, E, k, E / ep))
        assert want == approx(E / ep * (1 - (1 - k / E) ** T))
        se = per_rank.std(ddof=1) / np.sqrt(trials)
        assert abs(per_rank.mean() - want) < 4 * se + 1e-12, (T, per_rank.mean(), want)


def test_dense_decode_iteration_memory_bound_by_hand() -> None:
    """Qwen2.5-72B, TP8, 256 live sequences of 1,536 attended tokens: roofline max, not the sum."""
    m = load_model("qwen2.5-72b")
    r = roof("qwen2.5-72b", 8)
    n, ctx = 256.0, 256.0 * 1536
    mem = (m.weight_bytes / 8 + m.kv_cache_bytes_per_token * ctx / 8) / (HBM * MBU)
    flops = (2 * m.active_params * n / 8 + 4 * m.layers * m.attn_dim * ctx / 8) / (PEAK * MFU)
    got = float(r.iteration_s(n, ctx, ctx)[0] if np.ndim(r.iteration_s(n, ctx, ctx)) else r.iteration_s(n, ctx, ctx))
    assert mem > flops  # memory-bound
    assert got == approx(mem)
    assert 0.016 < got < 0.018  # ~17 ms (the old additive model gave ~29 ms)


def test_dense_iteration_compute_bound_by_hand() -> None:
    m = load_model("qwen2.5-14b")
    r = roof("qwen2.5-14b", 4)
    n = 8192.0  # a prefill-sized batch of tokens, no KV reads
    mem = m.weight_bytes / 4 / (HBM * MBU)
    flops = (2 * m.active_params * n / 4 + 4 * m.layers * m.attn_dim * 1e6 / 4) / (PEAK * MFU)
    assert flops > mem
    assert float(r.iteration_s(n, 1e6, 0.0)) == approx(flops)


def test_moe_decode_iteration_reads_only_touched_experts() -> None:
    """Qwen3-30B-A3B on one TP8 / EP8 replica, 4 live tokens: experts per rank touched ~ 16 (1 - (1-8/128)^4)."""
    m = load_model("qwen3-30b-a3b")
    r = roof("qwen3-30b-a3b", 8, ep=8)
    n, ctx = 4.0, 4.0 * 600
    touched = 16 * (1 - (1 - 8 / 128) ** 4)
    routed = m.routed_expert_params * 2
    mem = ((m.weight_bytes - routed) / 8 + m.moe_layers * touched * m.expert_params_per_expert * 2
           + m.kv_cache_bytes_per_token * ctx / 8) / (HBM * MBU)
    shared = m.active_params - m.moe_layers * 8 * m.expert_params_per_expert
    flops = (2 * shared * n / 8 + 2 * m.moe_layers * 8 * m.expert_params_per_expert * n / 8
             + 4 * m.layers * m.attn_dim * ctx / 8) / (PEAK * MFU)
    assert float(r.iteration_s(n, ctx, ctx)) == approx(max(mem, flops))
    # far fewer bytes than reading every expert
    assert mem < 0.5 * (m.weight_bytes / 8) / (HBM * MBU)


def test_moe_compute_bound_with_afd() -> None:
    m = load_model("qwen3-30b-a3b")
    r = roof("qwen3-30b-a3b", 4, ep=4, ffn=4)
    n = 20000.0
    lines = r.lines(n, 0.0, 0.0)
    ffn_flops = 2 * m.moe_layers * 8 * m.expert_params_per_expert * n / 4 / (PEAK * MFU)
    assert float(lines[3]) == approx(ffn_flops)
    assert float(r.iteration_s(n, 0.0, 0.0)) == approx(float(lines.max()))


@given(st.lists(st.tuples(st.floats(-5, 5), st.floats(-2, 2)), min_size=1, max_size=4), st.integers(0, 40))
@settings(max_examples=200, deadline=None)
def test_sum_of_max_lines_is_the_brute_force_sum(lines: list[tuple[float, float]], g: int) -> None:
    a = np.array([[x] for x, _ in lines])
    b = np.array([[y] for _, y in lines])
    brute = sum(max(x + y * i for x, y in lines) for i in range(g))
    assert float(sum_of_max_lines(a, b, np.array([g]))[0]) == pytest.approx(brute, rel=1e-9, abs=1e-9)


def test_run_is_the_sum_of_its_iterations() -> None:
    for model, kw in (("qwen2.5-72b", {"tp": 8}), ("qwen3-30b-a3b", {"tp": 8, "ep": 8}),
                      ("qwen3-30b-a3b", {"tp": 4, "ep": 4, "ffn": 4})):
        r = roof(model, **kw)
        live, ctx0, g, pre = 37.0, 37.0 * 2000, 3000, 3 * 512.0
        want = sum(float(r.iteration_s(live + (pre if i == 0 else 0), ctx0 + live * i + (pre * 256 if i == 0 else 0),
                                       ctx0 + live * i)) for i in range(g))
        got = float(r.run_s(np.array([live]), np.array([ctx0]), np.array([g]), np.array([pre]),
                            np.array([pre * 256]))[0])
        assert got == approx(want)


def test_continuous_batching_schedule_and_runs_by_hand() -> None:
    lengths = np.array([[3, 1, 2, 4]])
    start = admission_schedule(lengths, 2)
    # slots: seq0 [0,3), seq1 [0,1); seq2 takes seq1's slot at 1 -> [1,3); seq3 takes a slot at 3 -> [3,7)
    assert start.tolist() == [[0, 0, 1, 3]]
    runs = decode_runs(start, lengths, 0, 7, prompt_tokens=10, skip_admission_at=0)
    assert runs.t0.tolist() == [0, 1, 3]
    assert runs.iters.tolist() == [1, 2, 4]
    assert runs.live.tolist() == [2, 2, 1]
    assert runs.admitted.tolist() == [0, 1, 1]
    # attended context at the run's first iteration: seq0 10 + 1, seq2 10 + 0; at t=3 seq3 attends 10
    assert runs.ctx0.tolist() == [20, 21, 10]
    # a static batch (max_running 0) admits everything at once
    assert admission_schedule(lengths, 0).tolist() == [[0, 0, 0, 0]]


def test_continuous_batching_in_a_workload(cluster: ClusterConfig) -> None:
    base = {"model": "qwen2.5-14b", "rollout": {"batch_per_replica": 64, "response_tokens_mean": 300,
                                                "response_tokens_max": 2000}}
    static = build_workload(base, cluster, seed=3).phase("rollout")
    cb = build_workload({**base, "rollout": {**base["rollout"], "max_running": 16}}, cluster, seed=3).phase("rollout")
    assert cb.meta["decoded_tokens"] == static.meta["decoded_tokens"]  # same sequences, other schedule
    assert cb.meta["iterations_max"] > static.meta["iterations_max"]  # 16 slots: more iterations
    assert cb.meta["max_running"] == 16


def test_decode_alpha_per_iteration_by_hand() -> None:
    lat = Latency.from_table("ll")
    m = load_model("qwen2.5-72b")
    lay = RolloutLayout.build(offset=0, gpus=8, tp=8)
    # 2 all-reduces per layer (attention output, MLP output), ring LL over 8 NVLink ranks: 6.6 + 14 * 0.6 us
    assert decode_alpha_s(m, lay, lat, 8) == approx(2 * 80 * 15.0e-6)
    d = load_model("deepseek-v3")
    lay = RolloutLayout.build(offset=0, gpus=64, tp=8, dp_attention=8, ep=64)
    want = (d.layers + 3) * lat.all_reduce_s(8, 1) + 2 * 58 * 21e-6
    assert decode_alpha_s(d, lay, lat, 8) == approx(want)


def test_alpha_beta_all_reduce_on_one_link() -> None:
    """A 2-rank ring all-reduce of S over one link of C bit/s: alpha + (2 (n-1)/n S) / (C / 8)."""
    C, S = 8e9, 4e9
    lat = Latency.from_table("simple")
    alpha = lat.all_reduce_s(2, 2)  # two GPUs on two switches: 2 network steps
    assert alpha == approx(8.4e-6 + 2 * 14e-6)
    fs = all_reduce(np.array([[0, 1]]), S, algorithm="ring", delay_s=alpha)
    topo = line_topology([C])
    ph = PhaseStep(name="ar", phase="rollout", flows=fs, num_gpus=2)
    res = simulate(topo, Workload(name="w", num_gpus=2, phases=(ph,)), None,
                   options=SimConfig(link_latency=False, routing="split"))
    assert res.phases[0].end_s == approx(alpha + (2 * 1 / 2 * S) / (C / 8))


def test_kv_migration_bytes_by_hand() -> None:
    m = load_model("qwen2.5-14b")
    old = RolloutLayout.build(offset=64, gpus=16, tp=8)
    new = RolloutLayout.build(offset=64, gpus=16, tp=4)
    kv = np.array([[100.0, 300.0], [0.0, 50.0]])  # cached tokens moving to new replica 0 / 1 of each old replica
    fs = kv_migration(m, old, new, kv)
    # old TP rank t (GPU base + t) holds heads [t/8, (t+1)/8), new rank t' of the i-th new replica (GPU base + 4i + t')
    # heads [t'/4, (t'+1)/4): old rank t's share goes to new rank t // 2. It stays on its GPU only when
    # t == 4i + t // 2: t = 0 for i = 0, t = 7 for i = 1 -- so 7/8 of every sequence's KV moves
    per = m.kv_cache_bytes_per_token
    assert fs.total_bytes == approx(per * (100 + 300 + 0 + 50) * 7 / 8)
    assert np.all(fs.src != fs.dst)
    assert fs.tags == ("rollout/kv_migration",)


def test_switch_moves_the_kv_cache(cluster: ClusterConfig) -> None:
    spec = {"model": "qwen2.5-14b", "rollout": {"switch": {"tp": 4, "after_finished": 0.5}}}
    wl = build_workload(spec, cluster, seed=0)
    sw = wl.phase("rollout.switched")
    fs = sw.flows
    kv = np.array([t == "rollout/kv_migration" for t in fs.tags])[fs.tag]
    assert kv.any() and np.all(fs.stage[kv] == 0)
    # every sequence still running at the switch moves prompt + generated tokens of KV (half of them stay)
    assert 0 < fs.size_bytes[kv].sum() < 512 * 16384 * load_model("qwen2.5-14b").kv_cache_bytes_per_token * 8 * 256


def test_fp8_dispatch_and_latency_options(cluster: ClusterConfig) -> None:
    base = {"model": "qwen3-30b-a3b", "rollout": {"length_distribution": "fixed", "response_tokens_mean": 64,
                                                  "batch_per_replica": 8, "prompt_tokens": 16}}
    bf = build_workload(base, cluster, seed=0).phase("rollout")
    f8 = build_workload({**base, "rollout": {**base["rollout"], "dispatch_dtype": "fp8"}}, cluster,
                        seed=0).phase("rollout")

    def ep_bytes(p: PhaseStep) -> float:
        fs = p.flows
        ep = np.array([t == "ep/all_to_all" for t in fs.tags])[fs.tag]
        return float((fs.size_bytes * fs.multiplicity)[ep].sum())

    assert ep_bytes(f8) == approx(ep_bytes(bf) * (1 + 4 / 128 + 2) / 4)
    off = build_workload({**base, "latency": {"enabled": False}}, cluster, seed=0).phase("rollout")
    on = build_workload({**base, "latency": {"all_to_all_us": 100}}, cluster, seed=0).phase("rollout")
    assert off.meta["alpha_per_iteration_s"] == 0.0
    lat = Latency.from_table("ll")
    assert on.meta["alpha_per_iteration_s"] == approx(48 * lat.all_reduce_s(8, 1) + 2 * 48 * 100e-6)
    assert on.meta["compute_s"] > bf.meta["compute_s"] > off.meta["compute_s"]


def test_latency_config_errors(cluster: ClusterConfig) -> None:
    from rfabric.errors import ConfigError

    with pytest.raises(ConfigError, match="workload.latency.protocol"):
        parse_spec({"latency": {"protocol": "fast"}}, cluster)
    with pytest.raises(ConfigError, match="workload.rollout.dispatch_dtype"):
        parse_spec({"rollout": {"dispatch_dtype": "fp4"}}, cluster)
    with pytest.raises(ConfigError, match="base_us"):
        parse_spec({"latency": {"base_us": -1}}, cluster)


def test_request_migration_by_hand() -> None:
    from traffic.generation import plan_migration, request_migration

    lengths = np.array([[10, 10, 10], [1, 0, 0]])
    start = np.zeros_like(lengths)
    L2, S2, src, dst, gen = plan_migration(lengths, start, 2, max_running=0, slack=0)
    # at iteration 2 replica 0 runs 3 requests, replica 1 none: cap ceil(3/2) = 2, so one request moves 0 -> 1
    assert src.tolist() == [0] and dst.tolist() == [1] and gen.tolist() == [2.0]
    assert L2.tolist() == [[10, 10], [10, 1]] and S2.tolist() == [[0, 0], [0, 0]]
    m = load_model("qwen2.5-14b")
    lay = RolloutLayout.build(offset=64, gpus=4, tp=2)
    fs = request_migration(m, lay, src, dst, gen + 100)
    assert fs.src.tolist() == [64, 65] and fs.dst.tolist() == [66, 67]
    assert fs.total_bytes == approx((100 + 2) * m.kv_cache_bytes_per_token)


def test_request_migration_in_a_workload(cluster: ClusterConfig) -> None:
    from rfabric.errors import ConfigError

    spec = {"model": "qwen2.5-14b", "rollout": {"tp": 4, "migration": {"after_finished": 0.8}}}
    wl = build_workload(spec, cluster, seed=0)
    a, b = wl.phase("rollout"), wl.phase("rollout.migrated")
    assert a.meta["decode_iterations"][1] == b.meta["decode_iterations"][0]
    plain = build_workload({"model": "qwen2.5-14b", "rollout": {"tp": 4}}, cluster, seed=0).phase("rollout")
    assert a.meta["decoded_tokens"] + b.meta["decoded_tokens"] == plain.meta["decoded_tokens"]
    fs = b.flows
    mig = np.array([t == "rollout/request_migration" for t in fs.tags])[fs.tag]
    assert b.meta["migrated_requests"] > 0 and mig.any() and np.all(fs.stage[mig] == 0)
    assert fs.size_bytes[mig].sum() == approx(b.meta["migrated_kv_bytes"])
    with pytest.raises(ConfigError, match="workload.rollout.migration"):
        parse_spec({"rollout": {"migration": {}, "switch": {"tp": 4}}}, cluster)


def test_node_limited_routing_scales_cross_server_dispatch() -> None:
    from traffic.generation import node_limited_factor

    cl = ClusterConfig(trainer_gpus=64, rollout_gpus=64)
    m = load_model("qwen3-30b-a3b")
    # EP32 over 4 servers, 128 experts (32 per server), top-8: touched servers without a limit 4 (1 - C(96,8)/C(128,8))
    from math import comb

    want = 4 * (1 - comb(96, 8) / comb(128, 8)) / 8
    assert node_limited_factor(m, 32, 8, 0) == approx(want)
    assert node_limited_factor(m, 32, 8, 2) == approx(2 * (1 - comb(32, 8) / comb(64, 8)) / 8)
    base = {"model": "qwen3-30b-a3b", "rollout": {"tp": 4, "dp_attention": 8, "ep": 32, "ep_algorithm": "hierarchical",
                                                  "length_distribution": "fixed", "response_tokens_mean": 50}}
    a = build_workload(base, cl, seed=0).phase("rollout").flows
    b = build_workload({**base, "rollout": {**base["rollout"], "max_nodes_per_token": 2}}, cl, seed=0).phase("rollout").flows

    def remote_ep(fs: object) -> float:
        ep = np.array([t == "ep/all_to_all" for t in fs.tags])[fs.tag]  # type: ignore[attr-defined]
        r = ep & (fs.src // 8 != fs.dst // 8)  # type: ignore[attr-defined]
        return float(fs.size_bytes[r].sum())  # type: ignore[attr-defined]

    assert remote_ep(b) == approx(remote_ep(a) * node_limited_factor(m, 32, 8, 2))
    from rfabric.errors import ConfigError

    with pytest.raises(ConfigError, match="max_nodes_per_token"):
        parse_spec({"model": "qwen3-30b-a3b", "rollout": {"max_nodes_per_token": 4}}, cl)


def test_live_count_groups_by_hand() -> None:
    from traffic.generation import live_count_groups, stage_of_runs

    lengths = np.array([[3, 1, 2, 4], [2, 2, 2, 2]])
    start = admission_schedule(lengths, 2)
    runs = decode_runs(start, lengths, 0, 7, prompt_tokens=10, skip_admission_at=0)
    # replica 0: runs [0,1) live 2, [1,3) live 2 (seq2 refills seq1's slot), [3,7) live 1 -> 2 groups;
    # replica 1: [0,2) live 2, [2,4) live 2 (both slots refilled at once) -> 1 group
    assert runs.replica.tolist() == [0, 0, 0, 1, 1]
    group, groups = live_count_groups(runs, 2)
    assert group.tolist() == [0, 0, 1, 0, 0] and groups.tolist() == [2, 1]
    assert stage_of_runs(runs, 2, 8).tolist() == [0, 0, 1, 0, 0]
    assert stage_of_runs(runs, 2, 1).tolist() == [0, 0, 0, 0, 0]  # capped: groups share the stage


@pytest.mark.parametrize("model", ["qwen2.5-14b", "qwen3-30b-a3b"])
def test_grouped_decode_equals_per_iteration_play(cluster: ClusterConfig, model: str) -> None:
    """One stage per live-count group plays exactly like one stage per iteration (replicas inside a server:
    the flows of consecutive iterations share their links), and the in-server all-to-all as shift flows of
    multiplicity ep - 1 like the full pairwise exchange (exact to 1e-9)."""
    import topologies
    from rfabric.sim.engine import simulate_flows
    from traffic.generation import decode_alpha_s, latency_of, rollout_phases, roofline_of, stack_stages
    from traffic.phases import replica_traffic

    spec = {"model": model, "rollout": {"tp": 4, "ep": 4 if "a3b" in model else 0, "prompt_tokens": 64,
                                        "max_running": 0}}
    plan = parse_spec(spec, cluster)
    lay = plan.rollout
    R = lay.num_replicas
    lengths = np.tile(np.array([[5, 2, 2, 7]]), (R, 1))
    lengths[1] = [3, 3, 6, 1]  # another live-count profile on replica 1
    ph = rollout_phases(plan, lengths, sfx="", num_gpus=cluster.gpus, gps=8)[0]
    assert ph.meta["stages"] == ph.meta["live_count_groups"] == 3  # 4 -> 2 -> 1 live on replica 0
    # per iteration, by hand: prefill stage, then one stage per decode iteration with that iteration's
    # roofline compute + alpha, collectives of `live` tokens, full pairwise all-to-all
    P = 64
    rf = roofline_of(plan, lay)
    alpha = decode_alpha_s(plan.model, lay, latency_of(plan.spec), 8)
    kw = {"stages": "coalesced", "step_latency_s": 0.0, "gps": 8, "ep_algorithm": "direct"}
    tok = np.full(R, 4.0 * P)
    c0 = rf.iteration_s(tok, 4.0 * P * P / 2.0, 0.0) + alpha
    parts = [replica_traffic(plan.model, lay, tok, c0, **kw)]
    for t in range(int(lengths.max())):
        live = (lengths > t).sum(axis=1).astype(float)
        ctx = np.where(lengths > t, P + t, 0).sum(axis=1).astype(float)
        c = np.where(live > 0, rf.iteration_s(live, ctx, ctx) + alpha, 0.0)
        parts.append(replica_traffic(plan.model, lay, live, c, **kw))
    manual = stack_stages(parts)
    topo = topologies.build("fat_tree", {}, cluster)
    want = simulate_flows(topo, manual).end_s
    got = ph.compute_before_s + simulate_flows(topo, ph.flows).end_s + ph.compute_after_s
    assert got == approx(want)
    assert ph.flows.total_bytes == approx(manual.total_bytes)
    assert len(ph.flows) < len(manual)


@pytest.mark.parametrize(("model", "ro"), [("qwen2.5-14b", {"tp": 4}),
                                           ("qwen3-30b-a3b", {"tp": 4, "ep": 4}),
                                           ("qwen3-30b-a3b", {"tp": 1, "dp_attention": 16, "ep": 16}),
                                           ("qwen3-30b-a3b", {"tp": 2, "dp_attention": 8, "ep": 16, "ep_algorithm": "hierarchical",
                                                             "max_nodes_per_token": 1})])
def test_replayed_groups_equal_materialised_groups(cluster: ClusterConfig, model: str, ro: dict[str, object],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Over the flow budget, groups 1.. replay group 0's flows (rfabric.workload.StageReplay) with their own
    sizes and compute: one stage per group still, with fewer flows, and the same phase as materialising
    every group (times and bytes to 1e-9), EP groups across servers and two-stage all-to-alls included."""
    import topologies
    import traffic.generation as gen
    from rfabric.sim.engine import simulate_flows

    plan = parse_spec({"model": model, "rollout": {**ro, "prompt_tokens": 64, "max_running": 3}}, cluster)
    R = plan.rollout.num_replicas
    lengths = np.random.default_rng(3).integers(1, 12, (R, 7))
    full = gen.rollout_phases(plan, lengths, sfx="", num_gpus=cluster.gpus, gps=8)[0]
    assert full.flows.replay is None and full.meta["stages"] == full.meta["live_count_groups"] > 2
    monkeypatch.setattr(gen, "ROLLOUT_FLOW_BUDGET", len(full.flows) - 1)
    ph = gen.rollout_phases(plan, lengths, sfx="", num_gpus=cluster.gpus, gps=8)[0]
    assert ph.flows.replay is not None and ph.meta["replayed_blocks"] == len(ph.flows.replay) > 0
    assert ph.meta["stages"] == ph.meta["live_count_groups"] == full.meta["stages"]
    assert len(ph.flows) < len(full.flows)
    assert ph.flows.total_bytes == approx(full.flows.total_bytes)
    assert ph.compute_before_s == approx(full.compute_before_s)
    assert ph.compute_after_s == pytest.approx(full.compute_after_s, rel=1e-9, abs=1e-12)
    topo = topologies.build("fat_tree", {}, cluster)
    a, b = simulate_flows(topo, full.flows), simulate_flows(topo, ph.flows)
    assert b.end_s == approx(a.end_s)
    for k, v in a.bytes_by_medium.items():
        assert b.bytes_by_medium[k] == pytest.approx(v, rel=1e-9, abs=1e-3)
