"""The disaggregated RL step: phases, disjoint GPU sets, analytic bytes, determinism, variants."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rfabric.config import ClusterConfig
from rfabric.workload import FlowSet, PhaseStep, Workload
from traffic import REGISTRY, build_workload, parse_spec
from traffic.models import load_model

DEFAULT = {"kind": "rl_step", "model": "qwen2.5-14b"}


def in_range(x: np.ndarray, rng: tuple[int, int]) -> bool:
    return bool(np.all((x >= rng[0]) & (x < rng[1])))


def by_tag(fs: FlowSet, tag: str) -> np.ndarray:
    return fs.tag == fs.tags.index(tag) if tag in fs.tags else np.zeros(len(fs), dtype=bool)


def check_invariants(wl: Workload) -> None:
    for p in wl.phases:
        fs = p.flows
        assert p.phase in ("train", "rollout", "weight_sync", "score")
        assert np.all(fs.src != fs.dst), p.name
        assert np.all(fs.size_bytes > 0) and np.all(fs.delay_s >= 0)
        assert p.compute_before_s >= 0 and p.compute_after_s >= 0
        for c in np.unique(fs.chain)[:50]:  # stages of a chain are dense
            s = np.unique(fs.stage[fs.chain == c])
            assert s.tolist() == list(range(s.size))
        if p.phase in ("rollout", "score"):
            assert in_range(fs.src, wl.rollout_gpus) and in_range(fs.dst, wl.rollout_gpus), p.name
        elif p.phase == "train":
            assert in_range(fs.src, wl.trainer_gpus) and in_range(fs.dst, wl.trainer_gpus), p.name


def test_registry_kinds() -> None:
    assert {"rl_step", "collective"} <= set(REGISTRY.kinds())


def test_default_builds_fast_with_network_traffic(cluster: ClusterConfig) -> None:
    t = time.perf_counter()
    wl = build_workload(DEFAULT, cluster, seed=0)
    assert time.perf_counter() - t < 1.0  # generous: it takes ~10 ms
    check_invariants(wl)
    assert [p.name for p in wl.phases] == ["rollout", "logprob", "train", "weight_sync"]
    assert wl.trainer_gpus == (0, 64) and wl.rollout_gpus == (64, 128)
    srv = lambda x: x // 8  # noqa: E731
    for name in ("train", "weight_sync"):
        fs = wl.phase(name).flows
        assert fs.size_bytes[srv(fs.src) != srv(fs.dst)].sum() > 0, name
    train = wl.phase("train")
    dp = by_tag(train.flows, "dp/all_reduce")
    assert np.all(srv(train.flows.src[dp]) != srv(train.flows.dst[dp]))  # DP across servers
    assert train.meta["compute_s"] > 0 and wl.phase("rollout").meta["compute_s"] > 0


def test_dp_gradient_bytes_are_the_ring_formula(cluster: ClusterConfig) -> None:
    wl = build_workload({**DEFAULT, "train": {"tp": 8, "zero_stage": 0}}, cluster, seed=0)
    m = load_model("qwen2.5-14b")
    tr = wl.phase("train")
    fs = tr.flows
    dp = by_tag(fs, "dp/all_reduce")
    # 8 DP groups (one per TP rank) of 8; each rank reduces its 1/8 TP shard of fp32 gradients per update
    S = m.params / 8 * 4
    assert fs.size_bytes[dp].sum() == pytest.approx(64 * 2 * 7 / 8 * S)
    assert tr.repeat == 4  # default: 4 mini-batch updates per RL step, each with its own reduction
    # buckets (one per layer group) become ready during the last backward pass, in order
    delays = np.unique(fs.delay_s[dp])
    assert delays.size == tr.meta["layers_per_stage"] and delays.size or delays.size > 1
    assert np.all(np.diff(delays) > 0) and delays.max() <= tr.compute_before_s + tr.meta["compute_s"] * 1.5


def test_weight_sync_delivers_the_model_to_every_replica(cluster: ClusterConfig) -> None:
    for model, extra in (("qwen2.5-14b", {}), ("qwen3-30b-a3b", {}), ("qwen3-30b-a3b", {"rollout": {"tp": 4}}),
                         ("qwen3-30b-a3b", {"rollout": {"tp": 4, "ffn_gpus": 4, "ep": 4}}),
                         ("qwen2.5-14b", {"train": {"tp": 2, "pp": 2}, "rollout": {"tp": 4}}),
                         ("qwen2.5-14b", {"weight_sync": {"method": "broadcast", "roots": 1}}),
                         ("qwen3-30b-a3b", {"weight_sync": {"method": "broadcast"}, "collective_stages": "exact"}),
                         ("qwen3-30b-a3b", {"train": {"tp": 4, "ep": 8}})):  # EP folded over TP ranks (ep > dp)
        wl = build_workload({"model": model, **extra}, cluster, seed=0)
        ws = wl.phase("weight_sync")
        fs = ws.flows
        W = load_model(model).weight_bytes
        reps = np.arange(wl.rollout_gpus[0], wl.rollout_gpus[1]).reshape(ws.meta["replicas"], -1)
        replica_of = np.full(wl.num_gpus, -1)
        for r, g in enumerate(reps):
            replica_of[g] = r
        into = replica_of[fs.dst]
        outside = replica_of[fs.src] != into
        got = np.bincount(into[outside], weights=fs.size_bytes[outside], minlength=reps.shape[0])
        assert got == pytest.approx(np.full(reps.shape[0], W)), (model, extra)
        assert np.all(replica_of[fs.dst] >= 0)  # everything lands on rollout GPUs
        direct = by_tag(fs, "sync/p2p")
        assert in_range(fs.src[direct], wl.trainer_gpus)


def test_determinism_and_seeds(cluster: ClusterConfig) -> None:
    a = build_workload(DEFAULT, cluster, seed=7)
    b = build_workload(DEFAULT, cluster, seed=7)
    c = build_workload(DEFAULT, cluster, seed=8)
    for p, q in zip(a.phases, b.phases, strict=True):
        for k in ("src", "dst", "size_bytes", "chain", "stage", "delay_s", "multiplicity", "tag"):
            assert np.array_equal(getattr(p.flows, k), getattr(q.flows, k)), (p.name, k)
        assert p.compute_before_s == q.compute_before_s and p.compute_after_s == q.compute_after_s
    ra, rc = a.phase("rollout"), c.phase("rollout")
    assert ra.meta["decoded_tokens"] != rc.meta["decoded_tokens"]
    assert not np.array_equal(ra.flows.size_bytes, rc.flows.size_bytes)


def test_rollout_lengths_long_tailed_and_segments_shrink(cluster: ClusterConfig) -> None:
    wl = build_workload(DEFAULT, cluster, seed=0)
    ro = wl.phase("rollout")
    fs = ro.flows
    per_stage = np.bincount(fs.stage, weights=fs.size_bytes * fs.multiplicity)
    decode = per_stage[1:]  # stage 0: prefill
    assert decode[0] > decode[-1] > 0  # batch drains: later segments carry fewer tokens
    mean_tokens = ro.meta["decoded_tokens"] / ro.meta["sequences"]
    assert 1500 < mean_tokens < 2600  # lognormal with mean 2048, clipped at 16384


def test_tp_bytes_in_rollout_follow_tokens(cluster: ClusterConfig) -> None:
    spec = {**DEFAULT, "rollout": {"length_distribution": "fixed", "response_tokens_mean": 100,
                                   "batch_per_replica": 4, "prompt_tokens": 10}, "rl": {"weak_scaling": True}}
    wl = build_workload(spec, cluster, seed=0)
    m = load_model("qwen2.5-14b")
    fs = wl.phase("rollout").flows
    tokens = 8 * 4 * (100 + 10)  # replicas x sequences x (response + prompt)
    # 2 all-reduces per layer of tokens x hidden x 2 bytes; ring over tp=8 ranks: 2 (7/8) S per rank
    assert fs.total_bytes == pytest.approx(tokens * 2 * m.layers * m.hidden * 2 * 8 * 2 * 7 / 8)


def test_moe_expert_all_to_all_bytes(cluster: ClusterConfig) -> None:
    wl = build_workload({"model": "qwen3-30b-a3b", "train": {"ep": 8, "tp": 8, "etp": 8}}, cluster, seed=0)
    m = load_model("qwen3-30b-a3b")
    tr = wl.phase("train")
    fs = tr.flows
    ep = by_tag(fs, "ep/all_to_all")
    T = tr.meta["tokens"]  # tokens of one mini-batch update
    tokens_per_gpu = T / 8 / 8  # dp = 8, sequence-parallel over tp = 8
    # dispatch + combine, forward + backward, per MoE layer: tokens x top-k x hidden x 2 B x (1 - 1/EP)
    per_gpu = 4 * m.moe_layers * tokens_per_gpu * m.top_k * m.hidden * 2 * (1 - 1 / 8)
    assert fs.size_bytes[ep].sum() == pytest.approx(64 * per_gpu)
    assert np.all(fs.src[ep] // 8 != fs.dst[ep] // 8)  # expert-TP = TP: EP groups span servers
    edp = by_tag(fs, "edp/all_reduce")
    assert not edp.any()  # dp = ep = 8: every expert is held once, nothing to reduce


def test_rollout_ep_and_dispatch(cluster: ClusterConfig) -> None:
    spec = {"model": "qwen3-30b-a3b", "rollout": {"length_distribution": "fixed", "response_tokens_mean": 64,
                                                  "batch_per_replica": 8, "prompt_tokens": 16},
            "rl": {"weak_scaling": True}}
    wl = build_workload(spec, cluster, seed=0)
    m = load_model("qwen3-30b-a3b")
    fs = wl.phase("rollout").flows
    ep = by_tag(fs, "ep/all_to_all")
    tokens = 8 * 8 * (64 + 16)
    per_gpu = 2 * m.moe_layers * tokens / 64 * m.top_k * m.hidden * 2 * (1 - 1 / 8)
    # the in-server all-to-all is carried by shift flows of multiplicity ep - 1 (traffic.collectives.all_to_all)
    assert (fs.size_bytes * fs.multiplicity)[ep].sum() == pytest.approx(64 * per_gpu)
    assert set(fs.multiplicity[ep].tolist()) == {7}


def test_parallelism_switch_makes_a_second_rollout_step(cluster: ClusterConfig) -> None:
    spec = {**DEFAULT, "rollout": {"switch": {"tp": 4, "after_finished": 0.5}}}
    wl = build_workload(spec, cluster, seed=0)
    check_invariants(wl)
    first, second = wl.phase("rollout"), wl.phase("rollout.switched")
    assert first.meta["tp"] == 8 and second.meta["tp"] == 4 and second.meta["replicas"] == 16
    assert first.meta["decode_iterations"][1] == second.meta["decode_iterations"][0]
    tp = by_tag(second.flows, "tp/all_reduce")
    assert np.all(second.flows.src[tp] // 4 == second.flows.dst[tp] // 4)  # TP4 groups
    reshard = by_tag(second.flows, "rollout/reshard")
    assert reshard.any() and np.all(second.flows.stage[reshard] == 0)
    # decoded tokens are split, not duplicated, between the two shapes
    plain = build_workload(DEFAULT, cluster, seed=0).phase("rollout")
    assert first.meta["decoded_tokens"] + second.meta["decoded_tokens"] == plain.meta["decoded_tokens"]


def test_sync_every_unrolls_a_sync_period(cluster: ClusterConfig) -> None:
    wl = build_workload({**DEFAULT, "sync_every": 3, "score": {"enabled": True}}, cluster, seed=0)
    names = [p.name for p in wl.phases]
    assert names == [f"{ph}.step{i}" for i in range(3) for ph in ("rollout", "score", "logprob", "train")] + [
        "weight_sync"]
    assert wl.meta["rl_steps"] == 3
    r = [wl.phase(f"rollout.step{i}").meta["decoded_tokens"] for i in range(3)]
    assert len(set(r)) == 3  # each step draws its own lengths


def test_pipeline_and_context_parallel_flows(cluster: ClusterConfig) -> None:
    spec = {**DEFAULT, "train": {"tp": 4, "pp": 2, "cp": 2, "dp_collective": "reduce_scatter", "micro_batches": 8}}
    wl = build_workload(spec, cluster, seed=0)
    check_invariants(wl)
    tr = wl.phase("train")
    fs = tr.flows
    assert set(fs.tags) == {"dp/reduce_scatter", "dp/all_gather", "tp/all_reduce", "pp/p2p", "cp/ring"}
    pp = by_tag(fs, "pp/p2p")
    # PP stage 0 = GPUs 0..31, stage 1 = 32..63 (pp slowest): every PP flow crosses that line
    assert np.all((fs.src[pp] < 32) != (fs.dst[pp] < 32))
    m = load_model("qwen2.5-14b")
    rs, ag = by_tag(fs, "dp/reduce_scatter"), by_tag(fs, "dp/all_gather")
    n = 4 * 2  # dp * cp
    shard = m.params / (4 * 2)
    assert fs.size_bytes[rs].sum() == pytest.approx(64 * (n - 1) / n * shard * 4)  # fp32 gradients
    assert fs.size_bytes[ag].sum() == pytest.approx(64 * (n - 1) / n * shard * 2)  # bf16 parameters
    assert tr.meta["micro_batches"] == 8 and tr.meta["bubble"] == pytest.approx((8 + 1) / 8)
    # PP: activations forward and gradients backward, per micro-batch and TP rank (sequence-parallel shard)
    tok_mb_cp = tr.meta["tokens"] / 4 / 8 / 2
    assert fs.size_bytes[pp].sum() == pytest.approx(2 * 8 * 32 * tok_mb_cp * m.hidden * 2 / 4)


@st.composite
def valid_specs(draw: st.DrawFn) -> dict[str, Any]:
    model = draw(st.sampled_from(["qwen2.5-14b", "qwen3-30b-a3b"]))
    tp = draw(st.sampled_from([1, 2, 4, 8]))
    pp = draw(st.sampled_from([1, 2]))
    cp = draw(st.sampled_from([1, 2]))
    dp = 64 // (tp * pp * cp)
    ep = draw(st.sampled_from([e for e in (1, 2, 4, 8) if dp % e == 0])) if model != "qwen2.5-14b" else 1
    algo = draw(st.sampled_from(["ring", "double_binary_tree"] + (["halving_doubling"] if dp * cp & (dp * cp - 1) == 0
                                                                   else [])))
    rtp = draw(st.sampled_from([1, 2, 4, 8]))
    return {"model": model, "train": {"tp": tp, "pp": pp, "cp": cp, "ep": ep, "etp": tp, "dp_algorithm": algo,
                                      "zero_stage": 0, "recompute": "full", "micro_batch_tokens": 4096,
                                      "layers_per_stage": 12},
            "gpu": {"memory_gb": 1000},
            "rollout": {"tp": rtp, "batch_per_replica": 8, "response_tokens_mean": 200, "response_tokens_max": 1000},
            "weight_sync": {"method": draw(st.sampled_from(["p2p", "broadcast"]))},
            "collective_stages": draw(st.sampled_from(["coalesced", "exact"]))}


@given(valid_specs(), st.integers(0, 1000))
@settings(max_examples=25, deadline=None)
def test_property_random_valid_parallelism(spec: dict[str, Any], seed: int) -> None:
    cluster = ClusterConfig()
    parse_spec(spec, cluster)
    wl = build_workload(spec, cluster, seed=seed)
    check_invariants(wl)
    m = load_model(spec["model"])
    ws = wl.phase("weight_sync")
    into_rollout = ws.flows.src < 64
    if spec["weight_sync"]["method"] == "p2p":
        n_rep = ws.meta["replicas"]
        assert ws.flows.size_bytes[into_rollout].sum() == pytest.approx(n_rep * m.weight_bytes)
    tr = wl.phase("train")
    t = spec["train"]
    dp_tag = by_tag(tr.flows, "dp/all_reduce")
    n = 64 // (t["tp"] * t["pp"] * t["cp"]) * t["cp"]
    dense = m.dense_params if m.kind == "moe" else m.params
    expect = 64 * 2 * (n - 1) / n * dense / (t["tp"] * t["pp"]) * 4
    assert tr.flows.size_bytes[dp_tag].sum() == pytest.approx(expect)
    assert isinstance(wl.phases[0], PhaseStep)


def test_aggregation_conserves_bytes(cluster: ClusterConfig) -> None:
    import topologies

    topo = topologies.build("fat_tree", {"switch_radix": 16}, cluster)
    wl = build_workload({"model": "qwen3-30b-a3b"}, cluster, seed=0)
    for p in wl.phases:
        tm = p.traffic
        for level in ("server", "tor", "pod"):
            agg = tm.aggregate(topo, level, keep_diagonal=True)
            assert agg.sum() == pytest.approx(tm.total_bytes)
            assert tm.aggregate(topo, level).sum() <= tm.total_bytes * (1 + 1e-12)


def test_segments_attention_ffn_and_score(cluster: ClusterConfig) -> None:
    spec = {"model": "qwen3-30b-a3b", "rollout": {"tp": 4, "ffn_gpus": 4, "ep": 4, "segments": 3,
                                                  "length_distribution": "fixed", "response_tokens_mean": 30,
                                                  "batch_per_replica": 4, "prompt_tokens": 10},
            "score": {"enabled": True}, "rl": {"weak_scaling": True}}
    wl = build_workload(spec, cluster, seed=0)
    check_invariants(wl)
    ro = wl.phase("rollout")
    fs = ro.flows
    # prefill + one decode stage: fixed lengths keep the live count constant, so all 30 iterations are one run
    # (``segments`` caps the stages per replica; it no longer cuts a constant run)
    assert int(fs.stage.max()) + 1 == 1 + 1 and ro.meta["runs"] == 8
    afd = by_tag(fs, "afd/p2p")
    local = (fs.src - 64) % 8
    # attention GPUs are the first 4 of each 8-GPU replica, FFN GPUs the last 4: every AFD flow crosses
    assert np.all((local[afd] < 4) != ((fs.dst[afd] - 64) % 8 < 4))
    m = load_model("qwen3-30b-a3b")
    tokens = 8 * 4 * (30 + 10)
    # per token and MoE layer: top-k copies of the hidden state out and back (no dense layers in Qwen3 MoE)
    assert fs.size_bytes[afd].sum() == pytest.approx(tokens * m.moe_layers * m.top_k * m.hidden * 2 * 2)
    assert not by_tag(fs, "ep/all_to_all").any()
    sc = wl.phase("score")
    assert sc.phase == "score" and sc.meta["tokens"] == tokens
    assert [p.name for p in wl.phases] == ["rollout", "score", "logprob", "train", "weight_sync"]
