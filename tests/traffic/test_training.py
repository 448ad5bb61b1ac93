"""The trainer's per-layer graph: a hand-computed timeline, bytes per formula, FLOPs, RL passes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import topologies
from rfabric.config import ClusterConfig, SimConfig
from rfabric.sim import simulate_flows
from rfabric.workload import FlowSet
from traffic import build_workload, parse_spec
from traffic.models import load_model
from traffic.training import op_orders, schedule, token_weighted_position

TINY = """
name: tiny-moe
kind: moe
source: test model (2 layers)
layers: 2
hidden: 1024
ffn: 4096
heads: 8
kv_heads: 8
head_dim: 128
vocab: 1000
experts: 2
top_k: 2
moe_ffn: 512
"""


def by_tag(fs: FlowSet, tag: str) -> np.ndarray:
    return fs.tag == fs.tags.index(tag) if tag in fs.tags else np.zeros(len(fs), dtype=bool)


def ps_finish(sizes: list[float], rate: float) -> list[float]:
    """Finish times of flows sharing one link fairly (processor sharing), all starting at 0, in input order."""
    order = np.argsort(sizes)
    out = np.zeros(len(sizes))
    t, done, n = 0.0, 0.0, len(sizes)
    for k, i in enumerate(order):
        t += (sizes[i] - done) * (n - k) / rate
        done = sizes[i]
        out[i] = t
    return out.tolist()


@pytest.fixture
def tiny(tmp_path: Path) -> str:
    p = tmp_path / "tiny-moe.yaml"
    p.write_text(TINY)
    return str(p)


def test_hand_computed_timeline_tp2_pp2_ep2_dp2(tiny: str) -> None:
    """2 layers, TP2 x PP2 x DP2 with EP2 folded over the TP ranks; 2 micro-batches in 1F1B; every stage's
    start and finish, the bubble (m + p - 1) / m, and DP buckets overlapping the backward, to 1e-9."""
    C_nv, C_nic = 800e9, 100e9  # bits/s
    cl = ClusterConfig(trainer_gpus=8, rollout_gpus=8, gpus_per_server=2, nvlink_bps=C_nv, nic_bps=C_nic,
                       nic_latency_s=0.0)
    S, N = 1000, 16  # tokens per sequence (fixed), sequences per step
    spec: dict[str, Any] = {
        "model": tiny, "gpu": {"peak_tflops": 100, "mfu": 0.5},
        "rl": {"prompts_per_step": N, "samples_per_prompt": 1},
        "rollout": {"length_distribution": "fixed", "response_tokens_mean": S - 100, "prompt_tokens": 100},
        "train": {"tp": 2, "pp": 2, "ep": 2, "etp": 1, "micro_batches": 2, "recompute": "none", "zero_stage": 0,
                  "mini_batches": 1, "logprob_passes": 0, "layers_per_stage": 1},
        "weight_sync": {"enabled": False}, "latency": {"enabled": False}}
    wl = build_workload(spec, cl, seed=0)
    assert [p.name for p in wl.phases if p.phase == "train"] == ["train"]
    ph = wl.phase("train")
    m = load_model(tiny)
    T = N * S
    tok_mb = T / (2 * 2)  # per DP rank and micro-batch
    H, b = m.hidden, 2
    # compute unit: one layer's forward of one micro-batch on one GPU (TP2)
    f_layer = (2 * m.active_params + 4 * m.layers * m.attn_dim * S / 2) / m.layers
    u = tok_mb * f_layer / (2 * 100e12 * 0.5)
    assert ph.meta["compute_s"] == pytest.approx(9 * u, rel=1e-12)  # (m + p - 1)(1 + 2) units
    assert ph.meta["bubble"] == pytest.approx((2 + 2 - 1) / 2)
    # flow sizes (bytes): TP ring of 2 sends S_tp each way; EP all-to-all sends half of what a rank routes
    s_tp = tok_mb * H * b  # one attention all-reduce per MoE layer
    s_ep = 2 * (tok_mb / 2) * 2 * H * b / 2  # dispatch + combine of tok/tp tokens x top-2, half off-rank
    s_pp = tok_mb * H * b / 2
    expert = m.routed_expert_params
    g_d = (m.params - expert) / 2 / 2 * 4  # one layer's dense weights, TP shard, fp32
    g_e = expert / 2 / 2 * 4  # one layer's experts over EP2 (expert TP 1), fp32
    fs = ph.flows
    for tag, size in (("tp/all_reduce", s_tp), ("ep/all_to_all", s_ep), ("pp/p2p", s_pp),
                      ("dp/all_reduce", g_d), ("edp/all_reduce", g_e)):
        assert np.allclose(fs.size_bytes[by_tag(fs, tag)], size, rtol=1e-12), tag
    # 1F1B: stage 0 runs F0 F1 B0 B1, stage 1 F0 B0 F1 B1; group ends at units 1, 2, 4, 5, 6, 7, 9
    nv = (s_tp + s_ep) * 8 / C_nv  # TP and EP share the NVLink 0 -> 1 of every pair
    pp_t = s_pp * 8 / C_nic
    main = fs.chain < 2
    assert np.unique(fs.chain[main]).size == 2  # two DP blocks {0,1,4,5}, {2,3,6,7}
    delays = [1, 1, 2, 1, 1, 1, 2]
    pp_in = [True, True, True, False, False, True, False]
    starts, ends = [], []
    t = 0.0
    est = 0.0
    for k, (d, pp_) in enumerate(zip(delays, pp_in, strict=True)):
        t += d * u
        starts.append(t)
        if k == 5:  # stage 1's last backward: its PP send shares the NIC with its two gradient buckets
            ready7 = sum(delays[:6]) * u + est
            assert ready7 == pytest.approx(t, rel=1e-12)
            pp_fin = ps_finish([s_pp * 8, g_d * 8, g_e * 8], C_nic)
            dur = max(nv, pp_fin[0])
            dp1_end = t + max(pp_fin[1:])
        else:
            dur = max(nv, pp_t) if pp_ else nv
        est += max(nv, pp_t) if pp_ else nv
        t += dur
        ends.append(t)
    e9 = sum(delays) * u + est - nv  # stage 0's buckets: ready estimate (estimated comm before it)
    dp0_end = e9 + max(ps_finish([g_d * 8, g_e * 8], C_nic))
    topo = topologies.build("fat_tree", {}, cl)
    tr = simulate_flows(topo, fs, options=SimConfig(link_latency=False), start_s=ph.compute_before_s)
    assert ph.compute_before_s == pytest.approx(u, rel=1e-12)
    for k in range(7):
        sel = main & (fs.stage == k)
        assert tr.start_s[sel] == pytest.approx(starts[k], rel=1e-9), k
        assert tr.finish_s[sel].max() == pytest.approx(ends[k], rel=1e-9), k
    dp = ~main
    gpu_stage = np.where(fs.src[dp] >= 4, 1, 0)
    assert tr.start_s[dp][gpu_stage == 1] == pytest.approx(starts[5], rel=1e-9)
    assert tr.finish_s[dp][gpu_stage == 1].max() == pytest.approx(dp1_end, rel=1e-9)
    assert tr.start_s[dp][gpu_stage == 0] == pytest.approx(e9, rel=1e-9)
    assert tr.finish_s[dp][gpu_stage == 0].max() == pytest.approx(dp0_end, rel=1e-9)
    # stage 1's gradients are reduced while stage 0 still runs its last backward; stage 0's start before
    # its last TP / EP exchange is over
    assert ends[5] < dp1_end < starts[6] and e9 < ends[6]
    assert tr.end_s == pytest.approx(max(ends[6], dp0_end, dp1_end), rel=1e-9)


def test_one_f_one_b_bubble_and_interleaving() -> None:
    for p, m in ((2, 2), (4, 8), (3, 5), (8, 8)):
        orders = op_orders(p, 1, m, backward=True)
        units = {(k, r, 0): (1 if k == "F" else 2) for k in "FB" for r in range(p)}
        done = schedule(orders, units, p, 1)
        assert max(e for _, e in done.values()) == 3 * (m + p - 1)
    for p, v, m in ((2, 2, 4), (4, 2, 8), (4, 4, 8)):
        orders = op_orders(p, v, m, backward=True)
        units = {(k, r, c): (1 if k == "F" else 2) for k in "FB" for r in range(p) for c in range(v)}
        done = schedule(orders, units, p, v)
        # interleaved 1F1B: the bubble shrinks by v (Narayanan et al. 2021, sec. 2.2.2)
        assert max(e for _, e in done.values()) == 3 * (m * v + p - 1)


def test_token_weighted_attention_flops() -> None:
    m = load_model("qwen2.5-14b")
    S = np.array([512, 1024, 8192, 300])
    t_bar = token_weighted_position(S)
    assert t_bar == pytest.approx((S.astype(float) ** 2).mean() / (2 * S.mean()))
    brute = sum(np.arange(s).sum() for s in S) / S.sum()  # mean number of earlier tokens, token by token
    assert t_bar == pytest.approx(brute, rel=2e-3)
    fwd = m.flops_per_token(t_bar, training=False) - 2 * m.active_params
    assert fwd == pytest.approx(4 * m.layers * m.heads * m.head_dim * t_bar)


def _dp_bytes(spec: dict[str, Any], cl: ClusterConfig) -> tuple[dict[str, float], Any]:
    wl = build_workload(spec, cl, seed=0)
    tr = wl.phase("train")
    fs = tr.flows
    return {t: float((fs.size_bytes * fs.multiplicity)[by_tag(fs, t)].sum()) * tr.repeat for t in fs.tags}, wl


@pytest.mark.parametrize("zero,dtype,mini", [(0, "fp32", 4), (0, "bf16", 1), (1, "fp32", 2), (3, "bf16", 3)])
def test_gradient_bytes_per_rl_step_follow_the_formula(zero: int, dtype: str, mini: int) -> None:
    cl = ClusterConfig(trainer_gpus=32, rollout_gpus=32)
    spec = {"model": "qwen2.5-14b", "train": {"tp": 8, "zero_stage": zero, "grad_reduce_dtype": dtype,
                                              "mini_batches": mini, "recompute": "full"}}
    got, wl = _dp_bytes(spec, cl)
    m = load_model("qwen2.5-14b")
    n, gb = 4, {"fp32": 4, "bf16": 2}[dtype]
    shard = m.params / 8  # per TP rank
    ranks = 32
    if zero == 0:
        assert got["dp/all_reduce"] == pytest.approx(mini * ranks * 2 * (n - 1) / n * shard * gb)
    else:
        assert got["dp/reduce_scatter"] == pytest.approx(mini * ranks * (n - 1) / n * shard * gb)
        ag = got["dp/all_gather"]
        if zero <= 2:  # updated bf16 parameters once per update
            assert ag == pytest.approx(mini * ranks * (n - 1) / n * shard * 2)
        else:  # ZeRO-3: every layer group's parameters before each forward and each backward
            per_op = ranks * (n - 1) / n * shard * 2
            ops = 2 * 2  # merged block + last micro-batch, forward + backward
            assert ag == pytest.approx(mini * per_op * ops)


def test_moe_bytes_per_update_follow_the_formula() -> None:
    cl = ClusterConfig(trainer_gpus=64, rollout_gpus=64)
    spec = {"model": "qwen3-30b-a3b", "train": {"tp": 4, "ep": 8, "etp": 1, "zero_stage": 1, "mini_batches": 2}}
    got, wl = _dp_bytes(spec, cl)
    m = load_model("qwen3-30b-a3b")
    tr = wl.phase("train")
    T = tr.meta["tokens"] * 2 * tr.repeat / 2  # tokens of the step (repeat = mini-batches)
    # EP all-to-all per update: forward and backward, dispatch and combine: tokens / tp x top-k x hidden
    per_gpu = 4 * m.moe_layers * (T / 2 / 16 / 4) * m.top_k * m.hidden * 2 * (1 - 1 / 8)
    assert got["ep/all_to_all"] == pytest.approx(2 * 64 * per_gpu)
    ep = by_tag(tr.flows, "ep/all_to_all")
    assert np.all(tr.flows.src[ep] // 8 == tr.flows.dst[ep] // 8)  # TP4 x EP8 folded inside one server
    # expert gradients: each expert shard is held by edp = 64 / 8 = 8 ranks, reduce-scattered in fp32
    edp_n = 8
    exp_shard = m.routed_expert_params / 8
    assert got["edp/reduce_scatter"] == pytest.approx(2 * 64 * (edp_n - 1) / edp_n * exp_shard * 4)


def test_logprob_passes_minibatches_epochs_and_critic() -> None:
    cl = ClusterConfig(trainer_gpus=16, rollout_gpus=16)
    base = {"model": "qwen2.5-14b", "train": {"tp": 8, "zero_stage": 1}}
    wl = build_workload(base, cl, seed=0)
    names = {p.name: p for p in wl.phases}
    assert names["logprob"].repeat == 1 and names["train"].repeat == 4
    lp, up = names["logprob"], names["train"]
    assert up.meta["tokens"] * 4 == pytest.approx(lp.meta["tokens"])
    assert not any(t.startswith("dp/") for t in lp.flows.tags)  # forward only: no gradients
    wl = build_workload({**base, "algorithm": {"kl": True}, "train": {**base["train"], "ppo_epochs": 2,
                                                                      "critic": True}}, cl, seed=0)
    names = {p.name: p for p in wl.phases}
    assert names["logprob"].repeat == 3  # old policy + reference + critic values
    assert names["train"].repeat == 4 * 2 * 2  # mini-batches x epochs x (actor + critic)


def test_fixed_global_batch_and_weak_scaling() -> None:
    small = ClusterConfig(trainer_gpus=64, rollout_gpus=64)
    big = ClusterConfig(trainer_gpus=256, rollout_gpus=256)
    spec = {"model": "qwen2.5-14b", "train": {"tp": 8, "zero_stage": 1}}
    a = build_workload(spec, small, seed=0).phase("logprob").meta["tokens"]
    b = build_workload(spec, big, seed=0).phase("logprob").meta["tokens"]
    assert a == pytest.approx(b, rel=0.05)  # the same 2,048 sequences (lengths re-drawn)
    ro = build_workload(spec, big, seed=0).phase("rollout")
    assert ro.meta["sequences"] == 256 * 8
    weak = {**spec, "rl": {"weak_scaling": True}}
    assert build_workload(weak, big, seed=0).phase("rollout").meta["sequences"] == 32 * 256


def test_dp_overlap_flag_moves_buckets_after_backward(tiny: str) -> None:
    cl = ClusterConfig(trainer_gpus=8, rollout_gpus=8, gpus_per_server=2)
    spec: dict[str, Any] = {"model": tiny, "train": {"tp": 2, "pp": 2, "ep": 2, "etp": 1, "zero_stage": 0,
                                                     "micro_batches": 2, "layers_per_stage": 1}}
    on = build_workload(spec, cl, seed=0).phase("train")
    spec["train"]["overlap_dp"] = False
    off = build_workload(spec, cl, seed=0).phase("train")
    d_on = on.flows.delay_s[by_tag(on.flows, "dp/all_reduce")]
    d_off = off.flows.delay_s[by_tag(off.flows, "dp/all_reduce")]
    assert d_on.min() < d_off.min() and np.allclose(d_off, d_off.max())


def test_plan_reports_layout_and_memory() -> None:
    plan = parse_spec({"model": "qwen3-30b-a3b", "train": {"tp": 4, "ep": 8, "etp": 1}},
                      ClusterConfig(trainer_gpus=8, rollout_gpus=8))
    d = plan.describe()["train"]
    assert (d["tp"], d["ep"], d["etp"], d["dp"]) == (4, 8, 1, 2)
    assert 0 < d["memory"]["total_gb"] <= 80


def test_latency_adds_each_blocking_message_alpha(tiny: str) -> None:
    from traffic.latency import Latency

    cl = ClusterConfig(trainer_gpus=8, rollout_gpus=8, gpus_per_server=2)
    spec: dict[str, Any] = {"model": tiny, "train": {"tp": 2, "pp": 2, "ep": 2, "etp": 1, "zero_stage": 0,
                                                     "micro_batches": 2, "layers_per_stage": 1, "logprob_passes": 0}}
    on = build_workload(spec, cl, seed=0).phase("train")
    off = build_workload({**spec, "latency": {"enabled": False}}, cl, seed=0).phase("train")
    lat = Latency.from_table("ll")
    main_on, main_off = on.flows.chain < 2, off.flows.chain < 2
    d_on = [on.flows.delay_s[main_on & (on.flows.stage == k)].max() for k in range(7)]
    d_off = [off.flows.delay_s[main_off & (off.flows.stage == k)].max() for k in range(7)]
    # a forward of stage 0: one TP all-reduce (2 ranks, 1 server), dispatch + combine, one cross-server PP send
    first = lat.all_reduce_s(2, 1) + 2 * lat.all_to_all_s + lat.p2p_s(True)
    assert on.compute_before_s - off.compute_before_s == pytest.approx(first)
    assert d_on[1] - d_off[1] == pytest.approx(first)
    # the last backward of stage 0 (no PP send): TP all-reduce + dispatch + combine
    assert d_on[6] - d_off[6] == pytest.approx(lat.all_reduce_s(2, 1) + 2 * lat.all_to_all_s)
