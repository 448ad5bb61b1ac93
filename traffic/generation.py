"""Generation (rollout) as an inference engine runs it: roofline iterations, continuous batching, alpha.

Roofline
    One decode iteration of a replica costs, on its busiest GPU, ``max(bytes / (HBM * MBU), FLOPs /
    (peak * MFU))`` (the roofline model, Williams, Waterman & Patterson, CACM 52(4), 2009; applied to LLM
    decoding e.g. by Yuan et al., "LLM Inference Unveiled", arXiv 2402.16363). Bytes are the weights the
    iteration touches plus the KV cache it attends to; FLOPs are ``2 * active params`` per token plus
    ``4 * layers * attn_dim`` per attended token (calibration.md, "Attention FLOPs").
Experts touched
    A MoE layer only reads the experts some live token routes to. With ``T`` tokens in an expert-parallel
    group, each picking ``k`` distinct experts out of ``E`` uniformly and independently, an expert is missed
    by one token with probability ``1 - k/E``, so by linearity of expectation an EP rank holding ``E/ep``
    experts touches ``E/ep * (1 - (1 - k/E)^T)`` of them in expectation (the classical occupancy problem,
    Feller, *An Introduction to Probability Theory and Its Applications*, vol. 1, ch. II.11 and IV.2).
    Uniform routing is the load-balanced limit the auxiliary losses of these models aim for.
Continuous batching
    Each replica holds at most ``max_running`` sequences; when one finishes, the next queued sequence of
    the replica's share of the batch takes its slot at the next iteration (vLLM, Kwon et al., SOSP 2023;
    Orca, Yu et al., OSDI 2022). Its prompt is prefilled inside that iteration (chunked prefill mixed with
    decode, as vLLM and SGLang do by default). The iteration time follows the live count.
Grouping (per-iteration collectives)
    Every decode iteration runs its collectives (TP all-reduces, MoE dispatch + combine, attention--FFN
    exchanges) once, after its compute. Between two changes of a replica's live set every iteration has
    the same live count: such a *run* of ``g`` iterations is summed exactly (the roofline of iteration
    ``i`` is the maximum of lines in ``i``, summed piecewise). Consecutive runs with the same live count
    (continuous batching refills a freed slot, so the count stays put until the queue is empty) form a
    *group*, played as one stage: its flows carry the group's bytes (``g x`` the per-iteration bytes, plus
    the prompts prefilled in it) and wait for the group's compute plus ``g * alpha`` (``delay_s``). For
    flows that share the same links this is exact for max-min: ``g`` back-to-back transfers of ``b`` bytes
    at a rate that does not change take as long as one of ``g b``. The stages of a replica are then as many
    as its live count changes (not a fixed budget). When materialising every group would pass
    :data:`ROLLOUT_FLOW_BUDGET` flows, groups ``1 ..`` of every replica are *replays* of its group 0
    (:func:`group_replays`, :class:`rfabric.workload.StageReplay`): the same flows with sizes scaled by the
    group's tokens and its own compute as delay, played by the engine on group 0's routes -- still one stage
    per group, in the memory of one (``meta['replayed_blocks']``). Only when even that would not fit (or
    ``rollout.segments`` is set, or ``step_latency_s > 0`` gives a block's first-stage flows different
    delays) do neighbouring groups share a stage (bytes, compute and alpha stay exact; the interleaving of
    compute and transfers is coarsened, and ``meta['stages'] < meta['live_count_groups']`` says so). The in-server part of every MoE all-to-all is
    carried by shift flows with multiplicity (``nvlink_shift`` of :func:`traffic.collectives.all_to_all`,
    exact on the NVLink star), which keeps a 16,384-GPU Qwen3-30B-A3B rollout at one stage per group.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from rfabric.workload import FlowSet, StageReplay
from traffic.collectives import point_to_point, then
from traffic.latency import Latency
from traffic.models import ModelSpec
from traffic.parallelism import RolloutLayout, interval_overlap

#: DeepEP FP8 dispatch: 1 byte per element plus one fp32 scale per 128 channels (deepseek-ai/DeepEP README)
FP8_DISPATCH_BYTES_PER_ELEMENT = 1.0 + 4.0 / 128.0


def expected_experts_touched(tokens: Any, experts: int, top_k: int, experts_per_rank: float | None = None) -> np.ndarray:
    """Expected number of distinct experts (of ``experts_per_rank``, default all) that ``tokens`` tokens touch.

    Each token picks ``top_k`` distinct experts of ``experts`` uniformly; the answer is
    ``experts_per_rank * (1 - (1 - top_k/experts) ** tokens)`` (see the module notes). ``tokens`` may be an
    array (any shape, >= 0, not necessarily integer: a mean over groups).

    >>> round(float(expected_experts_touched(1, 256, 8)), 12)  # one token touches its k experts
    8.0
    >>> round(float(expected_experts_touched(32, 256, 8, experts_per_rank=4)), 4)  # 4 (1 - (31/32)^32)
    2.5518
    """
    t = np.asarray(tokens, dtype=np.float64)
    per = float(experts if experts_per_rank is None else experts_per_rank)
    return per * -np.expm1(t * np.log1p(-top_k / experts)) if top_k < experts else np.where(t > 0, per, 0.0)


def sum_of_max_lines(a: np.ndarray, b: np.ndarray, g: np.ndarray) -> np.ndarray:
    """``sum_{i=0}^{g-1} max_j (a[j] + b[j] * i)`` exactly, for ``a``, ``b`` of shape ``(K, N)`` and ``g`` (N,).

    The maximum of lines is convex, so each line wins on one interval of ``i``; ties go to the lowest ``j``.

    >>> import numpy as np
    >>> float(sum_of_max_lines(np.array([[0.0], [5.0]]), np.array([[1.0], [0.0]]), np.array([10]))[0])  # 6*5 + 6+7+8+9
    60.0
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    g = np.asarray(g, dtype=np.float64)
    K = a.shape[0]
    total = np.zeros(a.shape[1:])
    for j in range(K):
        lo = np.zeros(a.shape[1:])
        hi = g - 1.0
        for m in range(K):
            if m == j:
                continue
            da, db = a[j] - a[m], b[j] - b[m]
            strict = m < j
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                x = -da / db
            # db > 0: i >= x (strict: i > x); db < 0: i <= x (strict: i < x); db == 0: all or nothing
            lo_m = np.where(db > 0, np.where(strict, np.floor(x) + 1, np.ceil(x)), -np.inf)
            hi_m = np.where(db < 0, np.where(strict, np.ceil(x) - 1, np.floor(x)), np.inf)
            none = (db == 0) & ((da < 0) | (strict & (da <= 0)))
            lo = np.maximum(lo, lo_m)
            hi = np.where(none, -1.0, np.minimum(hi, hi_m))
        cnt = np.maximum(hi - lo + 1, 0.0)
        with np.errstate(invalid="ignore"):  # unselected branch: lo may be +inf where cnt == 0
            total += np.where(cnt > 0, cnt * a[j] + b[j] * cnt * (lo + hi) / 2, 0.0)
    return total


@dataclass(frozen=True, slots=True)
class Roofline:
    """Per-iteration cost of one replica layout on its busiest GPU (seconds), linear in the attended context.

    ``lines(tokens, ctx_attn, ctx_kv)`` returns a ``(K, N)`` array whose column-wise maximum is the
    iteration time: memory and compute of the GPUs holding attention and (with attention--FFN
    disaggregation) of the FFN GPUs. ``tokens``: tokens the iteration processes in the replica (live
    sequences, plus prompt tokens prefilled in it); ``ctx_attn``: attended tokens summed over them
    (attention FLOPs); ``ctx_kv``: KV-cache tokens read.
    """

    model: ModelSpec
    layout: RolloutLayout
    hbm_bytes_per_s: float  # effective: HBM bandwidth x MBU
    flops_per_s: float  # effective: peak x MFU

    def lines(self, tokens: Any, ctx_attn: Any, ctx_kv: Any) -> np.ndarray:
        m, lay = self.model, self.layout
        tok = np.asarray(tokens, dtype=np.float64)
        ca = np.asarray(ctx_attn, dtype=np.float64)
        ck = np.asarray(ctx_kv, dtype=np.float64)
        b = m.dtype_bytes
        A = lay.tp * lay.dp_attention  # GPUs running attention
        if m.kind == "moe":
            Lm, k, Pe = m.moe_layers, m.top_k, m.expert_params_per_expert
            holders = lay.ffn_gpus or lay.replica_gpus
            groups = holders // lay.ep  # EP groups per replica: tokens split evenly over them
            touched = expected_experts_touched(tok / groups, m.experts, k, m.experts / lay.ep)
            ffn_bytes = Lm * touched * Pe * b
            ffn_flops = 2.0 * Lm * k * Pe * tok / holders
            shared_bytes = m.weight_bytes - m.routed_expert_params * b
            shared_params = m.active_params - Lm * k * Pe
        else:
            holders = lay.ffn_gpus
            mlp = m.layers * m.dense_mlp_params
            if holders:
                ffn_bytes = np.broadcast_to(mlp * b / holders, tok.shape).astype(np.float64)
                ffn_flops = 2.0 * mlp * tok / holders
                shared_bytes, shared_params = m.weight_bytes - mlp * b, m.active_params - mlp
            else:
                ffn_bytes, ffn_flops = np.zeros(tok.shape), np.zeros(tok.shape)
                shared_bytes, shared_params = m.weight_bytes, m.active_params
        att_bytes = shared_bytes / lay.tp + m.kv_cache_bytes_per_token * ck / A
        att_flops = 2.0 * shared_params * tok / A + 4.0 * m.layers * m.attn_dim * ca / A
        hbm, fl = self.hbm_bytes_per_s, self.flops_per_s
        if lay.ffn_gpus:
            return np.stack(np.broadcast_arrays(att_bytes / hbm, att_flops / fl, ffn_bytes / hbm, ffn_flops / fl))
        return np.stack(np.broadcast_arrays((att_bytes + ffn_bytes) / hbm, (att_flops + ffn_flops) / fl))

    def iteration_s(self, tokens: Any, ctx_attn: Any, ctx_kv: Any) -> np.ndarray:
        """Seconds of one iteration: the roofline maximum."""
        return np.asarray(self.lines(tokens, ctx_attn, ctx_kv).max(axis=0))

    def run_s(self, live: np.ndarray, ctx0: np.ndarray, iters: np.ndarray, prefill_tokens: np.ndarray,
              prefill_ctx: np.ndarray) -> np.ndarray:
        """Seconds of ``iters`` decode iterations with ``live`` sequences whose attended context starts at
        ``ctx0`` and grows by ``live`` per iteration; the first iteration also prefills ``prefill_tokens``
        prompt tokens (attending ``prefill_ctx`` tokens in total). Exact sum of per-iteration maxima."""
        live = np.asarray(live, dtype=np.float64)
        a = self.lines(live, ctx0, ctx0)
        slope = self.lines(live, live, live) - self.lines(live, 0.0, 0.0)
        total = sum_of_max_lines(a, slope, iters)
        first = a.max(axis=0)
        first_mixed = self.lines(live + prefill_tokens, ctx0 + prefill_ctx, ctx0).max(axis=0)
        return np.asarray(total + np.where(iters > 0, first_mixed - first, 0.0))


# --------------------------------------------------------------------------------------------------
# continuous batching


def admission_schedule(lengths: np.ndarray, max_running: int) -> np.ndarray:
    """Iteration at which each sequence enters its replica: ``(R, B)`` int64 for ``lengths`` ``(R, B)``.

    Sequences are admitted in index order into ``max_running`` slots; a slot is free again at the
    iteration its sequence finishes (a sequence admitted at ``s`` decodes at iterations ``s .. s+L-1``).
    Sequences of length 0 (padding) take no slot.
    """
    R, B = lengths.shape
    M = max(1, min(max_running or B, B))
    start = np.zeros((R, B), dtype=np.int64)
    if M >= B:
        return start
    free = np.zeros((R, M), dtype=np.int64)
    rows = np.arange(R)
    for j in range(B):  # B iterations of vectorised work over replicas
        slot = np.argmin(free, axis=1)
        s = free[rows, slot]
        L = lengths[:, j]
        start[:, j] = s
        free[rows, slot] = np.where(L > 0, s + L, s)
    return start


@dataclass(frozen=True, slots=True)
class Runs:
    """Runs of iterations with a constant live set, per replica, in time order (flat arrays of length N)."""

    replica: np.ndarray  # int64
    t0: np.ndarray  # first iteration
    iters: np.ndarray  # iterations in the run
    live: np.ndarray  # live sequences
    ctx0: np.ndarray  # attended tokens summed over live sequences at the first iteration
    admitted: np.ndarray  # sequences admitted (prefilled) at t0


def decode_runs(start: np.ndarray, lengths: np.ndarray, t_lo: int, t_hi: int, prompt_tokens: int, *,
                skip_admission_at: int | None = 0) -> Runs:
    """Cut iterations ``[t_lo, t_hi)`` of every replica into runs of constant live set.

    ``start``/``lengths``: ``(R, B)``; sequence ``j`` is live at iterations ``start .. start+L-1`` and attends
    ``prompt_tokens + (t - start)`` tokens at iteration ``t``. Admissions at ``skip_admission_at`` are not
    counted (their prompts are prefilled in a separate stage).
    """
    R, B = lengths.shape
    live_seq = lengths > 0
    s = start[live_seq]
    e = (start + lengths)[live_seq]
    r = np.broadcast_to(np.arange(R)[:, None], (R, B))[live_seq]
    t_a = np.clip(s, t_lo, t_hi)
    t_b = np.clip(e, t_lo, t_hi)
    bound = np.arange(R)
    times = np.concatenate([t_a, t_b, np.full(R, t_lo), np.full(R, t_hi)])
    reps = np.concatenate([r, r, bound, bound])
    delta = np.concatenate([np.ones(s.size), -np.ones(s.size), np.zeros(2 * R)])
    wsum = np.concatenate([s, -s, np.zeros(2 * R)]).astype(np.float64)
    order = np.lexsort((times, reps))
    times, reps, delta, wsum = times[order], reps[order], delta[order], wsum[order]
    n = np.cumsum(delta)
    S = np.cumsum(wsum)
    key = reps.astype(np.int64) * (int(t_hi) + 2) + times
    last = np.r_[key[1:] != key[:-1], True]
    kt, kr, kn, kS = times[last], reps[last], n[last], S[last]
    nxt_same = np.r_[kr[1:] == kr[:-1], False]
    t1 = np.r_[kt[1:], 0]
    keep = nxt_same & (kn > 0.5)
    t0 = kt[keep]
    live = np.rint(kn[keep])
    ctx0 = live * (prompt_tokens + t0) - kS[keep]
    sel = (s >= t_lo) & (s < t_hi)
    if skip_admission_at is not None:
        sel &= s != skip_admission_at
    run_key = kr[keep].astype(np.int64) * (int(t_hi) + 2) + t0
    uk, cnt = np.unique(r[sel].astype(np.int64) * (int(t_hi) + 2) + s[sel], return_counts=True)
    admitted = np.zeros(run_key.size)
    if uk.size:
        pos = np.minimum(np.searchsorted(uk, run_key), uk.size - 1)
        admitted = np.where(uk[pos] == run_key, cnt[pos], 0).astype(np.float64)
    return Runs(replica=kr[keep].astype(np.int64), t0=t0.astype(np.int64), iters=(t1[keep] - t0).astype(np.int64),
                live=live, ctx0=ctx0, admitted=admitted)


def live_count_groups(runs: Runs, num_replicas: int) -> tuple[np.ndarray, np.ndarray]:
    """Group consecutive runs of a replica with the same live count: ``(group, groups)``.

    ``group[i]`` is run ``i``'s group index within its replica (0, 1, ...), ``groups[r]`` how many groups
    replica ``r`` has. A new group starts where the live count changes (or the runs are not contiguous);
    a refill that keeps the count (a finished sequence replaced by a queued one) stays in the group.
    """
    n = runs.replica.size
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(num_replicas, dtype=np.int64)
    same = ((runs.replica[1:] == runs.replica[:-1]) & (runs.live[1:] == runs.live[:-1])
            & (runs.t0[1:] == runs.t0[:-1] + runs.iters[:-1]))
    gid = np.cumsum(np.r_[True, ~same]) - 1
    first = np.searchsorted(runs.replica, np.arange(num_replicas))
    has = first < n
    base = np.zeros(num_replicas, dtype=np.int64)
    base[has] = gid[first[has]]
    group = gid - base[runs.replica]
    groups = np.zeros(num_replicas, dtype=np.int64)
    np.maximum.at(groups, runs.replica, group + 1)
    return group.astype(np.int64), groups


def stage_of_runs(runs: Runs, num_replicas: int, max_stages: int) -> np.ndarray:
    """Stage index of every run: one stage per group of runs with the same live count
    (:func:`live_count_groups`) while a replica has at most ``max_stages`` groups; else consecutive groups
    share stages, ``max_stages`` of them (group ``j`` of ``G`` goes to stage ``floor(j * max_stages / G)``)."""
    group, groups = live_count_groups(runs, num_replicas)
    if not runs.replica.size:
        return group
    G = groups[runs.replica]
    return np.where(G <= max_stages, group, group * max_stages // np.maximum(G, 1))


# --------------------------------------------------------------------------------------------------
# alpha per iteration


def decode_alpha_s(model: ModelSpec, layout: RolloutLayout, lat: Latency, gps: int) -> float:
    """Per-message latency of one forward iteration of a replica: its TP all-reduces (per layer: attention
    output, and the dense MLP's), MoE dispatch + combine kernels, or attention--FFN exchanges."""
    afd = layout.ffn_gpus > 0
    Lm = model.moe_layers
    Ld = model.layers - Lm
    out = 0.0
    if layout.tp > 1:
        n_ar = model.layers + (0 if afd else Ld)
        nodes = -(-layout.tp // gps)
        out += n_ar * lat.all_reduce_s(layout.tp, nodes)
    if model.kind == "moe" and not afd and layout.ep > 1:
        out += 2 * Lm * lat.all_to_all_s
    if afd:
        cross = layout.replica_gpus > gps
        out += 2 * model.layers * lat.p2p_s(cross)
    return out


# --------------------------------------------------------------------------------------------------
# KV-cache migration


def kv_migration(model: ModelSpec, old: RolloutLayout, new: RolloutLayout, kv_tokens: np.ndarray) -> FlowSet:
    """KV cache of running sequences moved when every old replica splits into ``k`` new ones.

    ``kv_tokens[r, i]``: cached tokens (prompt + generated) of the sequences of old replica ``r`` that new
    replica ``i`` (of the ``k`` carved from it) takes over. Each old attention group holds its sequences' KV
    sharded over its TP ranks by heads; the bytes go to the new TP ranks by interval overlap of the two
    head splits (``kv_cache_bytes_per_token`` per token). Chain ``r`` per old replica, tag ``rollout/kv_migration``.
    """
    k = old.replica_gpus // new.replica_gpus
    M = interval_overlap(old.tp, new.tp)
    t, tn = np.nonzero(M)
    rn = new.replicas.reshape(old.num_replicas, k, new.replica_gpus)
    src, dst, size, chain = [], [], [], []
    for i in range(k):
        grp = i % old.dp_attention
        src.append(old.replicas[:, grp * old.tp + t])
        dst.append(rn[:, i, tn])
        size.append(kv_tokens[:, i:i + 1] * model.kv_cache_bytes_per_token * M[t, tn][None, :])
        chain.append(np.broadcast_to(np.arange(old.num_replicas)[:, None], (old.num_replicas, t.size)))
    s = np.concatenate([x.ravel() for x in src])
    d = np.concatenate([x.ravel() for x in dst])
    z = np.concatenate([x.ravel() for x in size])
    c = np.concatenate([x.ravel() for x in chain])
    keep = (s != d) & (z > 0)
    return point_to_point(s[keep], d[keep], z[keep], chain=c[keep], tag="rollout/kv_migration")


def chain_stages(parts: list[FlowSet]) -> FlowSet:
    """Stage lists joined in order within their chains (``then``)."""
    fs = FlowSet.empty()
    for p in parts:
        fs = then(fs, p)
    return fs


# --------------------------------------------------------------------------------------------------
# the rollout phase

#: flows a rollout phase may carry when ``rollout.segments`` is 0 (automatic): the decode materialises one stage
#: per group of iterations with the same live count unless that would pass this many flows; then groups 1..
#: replay group 0's flows (one stage per group still), or, if group 0 alone does not fit, groups share
#: stages (``meta['stages'] < meta['live_count_groups']``); a memory bound, about 0.5 kB per flow in the engine
ROLLOUT_FLOW_BUDGET = 3_000_000


def stack_stages(parts: list[FlowSet]) -> FlowSet:
    """Flow sets sharing one chain numbering, played one after another: part ``i``'s stages follow part
    ``i-1``'s (a one-shot n-ary :func:`traffic.collectives.then`)."""
    from traffic.phases import merge

    parts = [p for p in parts if len(p)]
    shifted, off = [], 0
    for p in parts:
        shifted.append(FlowSet(src=p.src, dst=p.dst, size_bytes=p.size_bytes, chain=p.chain, stage=p.stage + off,
                               delay_s=p.delay_s, multiplicity=p.multiplicity, tag=p.tag, tags=p.tags))
        off += int(p.stage.max()) + 1
    return merge(shifted)


def latency_of(spec: Any) -> Latency:
    """The :class:`Latency` of an ``rl_step`` spec's ``latency`` section."""
    ls = spec.latency
    if not ls.enabled:
        return Latency.zero()
    return Latency.from_table(ls.protocol, base_s=ls.base_s, nvlink_hop_s=ls.nvlink_hop_s, net_hop_s=ls.net_hop_s,
                              all_to_all_s=ls.all_to_all_s)


def roofline_of(plan: Any, layout: RolloutLayout, model: ModelSpec | None = None) -> Roofline:
    """The decode :class:`Roofline` of ``layout`` under the plan's GPU (HBM x ``decode_mbu``, peak x ``mfu``)."""
    g = plan.spec.gpu
    return Roofline(model=model or plan.model, layout=layout, hbm_bytes_per_s=g.hbm_bytes_per_s * g.decode_mbu,
                    flops_per_s=g.peak_flops * g.mfu)


def ep_bytes_factor(model: ModelSpec, dispatch_dtype: str) -> float:
    """MoE all-to-all bytes relative to bf16 dispatch + bf16 combine (FP8 dispatch: DeepEP's format)."""
    if dispatch_dtype != "fp8":
        return 1.0
    return (FP8_DISPATCH_BYTES_PER_ELEMENT + model.dtype_bytes) / (2.0 * model.dtype_bytes)


def node_limited_factor(model: ModelSpec, ep: int, gps: int, max_nodes: int) -> float:
    """Cross-server EP bytes of a hierarchical all-to-all relative to one copy per (token, remote expert).

    An EP group spans ``N = ep / gps`` servers of ``E / N`` experts each. A token's ``k`` experts (uniform,
    distinct) lie among ``M' = min(max_nodes, N)`` servers chosen by node-limited routing (all ``N`` if
    ``max_nodes`` is 0); the expected number of those servers it touches is ``M' (1 - C(E_M - E/N, k) /
    C(E_M, k))`` with ``E_M = M' E / N`` (occupancy over servers). Forwarding once per touched server
    (DeepEP normal kernels) instead of once per expert divides the cross-server copies by ``k / touched``.
    Node-limited routing with at most 4 nodes per token: DeepSeek-V3 technical report, arXiv 2412.19437, §2.1.2.

    >>> from traffic.models import load_model
    >>> round(node_limited_factor(load_model("deepseek-v3"), 64, 8, 4), 4)
    0.4536
    """
    n = ep // gps
    if n < 2 or model.kind != "moe":
        return 1.0
    E, k = model.experts, model.top_k
    m = min(max_nodes or n, n)
    em = m * E // n
    per = E // n
    miss = 1.0
    for i in range(k):  # C(em - per, k) / C(em, k) as a product
        miss *= max(em - per - i, 0) / (em - i)
    return m * (1.0 - miss) / k


def _replica_of(layout: RolloutLayout, num_gpus: int) -> np.ndarray:
    out = np.full(num_gpus, -1, dtype=np.int64)
    out[layout.replicas] = np.arange(layout.num_replicas)[:, None]
    return out


def rollout_phase(plan: Any, layout: RolloutLayout, lengths: np.ndarray, start: np.ndarray, t_lo: int, t_hi: int, *,
                  name: str, num_gpus: int, gps: int, prefill: bool, reshard_from: RolloutLayout | None = None,
                  kv_tokens: np.ndarray | None = None, first: FlowSet | None = None,
                  meta_extra: dict[str, Any] | None = None) -> Any:
    """Decode iterations ``[t_lo, t_hi)`` (plus the prefill of the sequences admitted at ``t_lo`` if
    ``prefill``) of every replica of ``layout``, as a phase step.

    ``lengths`` / ``start``: ``(replicas, sequences)`` output tokens (0 = no sequence) and admission iteration
    (:func:`admission_schedule`). ``reshard_from``: the phase starts by resharding weights inside each old
    replica (and, given ``kv_tokens``, migrating the KV cache of running sequences, :func:`kv_migration`).
    ``first``: flows (chain = replica) that run before anything else, e.g. :func:`request_migration`.
    Chain ``r`` = replica ``r``; stage 0 prefill (or reshard), then one stage per run of constant live count
    (or per bin of runs). Each stage's flows wait (``delay_s``) for the runs' roofline compute plus their
    per-iteration alpha.
    """
    from traffic.phases import make_phase
    from traffic.phases import replica_traffic as _replica_traffic

    spec, model = plan.spec, plan.model
    ro = spec.rollout
    P = ro.prompt_tokens
    R = layout.num_replicas
    roof = roofline_of(plan, layout)
    alpha = decode_alpha_s(model, layout, latency_of(spec), gps)
    kw: dict[str, Any] = {"stages": spec.collective_stages, "step_latency_s": spec.step_latency_s, "gps": gps,
                          "ep_algorithm": ro.ep_algorithm, "ep_bytes_factor": ep_bytes_factor(model, ro.dispatch_dtype),
                          "nvlink_shift": True}
    segs: list[FlowSet] = []
    compute = np.zeros(R)
    if ro.max_nodes_per_token and model.kind == "moe" and layout.ep > gps:
        f = node_limited_factor(model, layout.ep, gps, ro.max_nodes_per_token)

        def replica_traffic(*a: Any, **k: Any) -> FlowSet:  # noqa: F811 -- scale cross-server EP flows
            fs = _replica_traffic(*a, **k)
            ep_tag = np.array([t == "ep/all_to_all" for t in fs.tags], dtype=bool)
            remote = ep_tag[fs.tag] & (fs.src // gps != fs.dst // gps)
            return FlowSet(src=fs.src, dst=fs.dst, size_bytes=np.where(remote, fs.size_bytes * f, fs.size_bytes),
                           chain=fs.chain, stage=fs.stage, delay_s=fs.delay_s, multiplicity=fs.multiplicity,
                           tag=fs.tag, tags=fs.tags)
    else:
        replica_traffic = _replica_traffic
    if reshard_from is not None:
        from traffic.phases import _reshard_within, merge

        rep = _replica_of(layout, num_gpus)
        moves = [_reshard_within(plan, reshard_from, layout)]
        if kv_tokens is not None:
            moves.append(kv_migration(model, reshard_from, layout, kv_tokens))
        segs.append(merge([_chain_by_dst(m, rep) for m in moves if len(m)]))
    if first is not None and len(first):
        segs.append(first)
    if prefill:
        adm = ((start == t_lo) & (lengths > 0)).sum(axis=1).astype(np.float64)
        tok = adm * P
        c = np.where(adm > 0, roof.iteration_s(tok, adm * P * P / 2.0, 0.0) + alpha, 0.0)
        compute += c
        segs.append(replica_traffic(model, layout, tok, c, **kw))
    runs = decode_runs(start, lengths, t_lo, t_hi, P, skip_admission_at=t_lo if prefill else None)
    run_s = roof.run_s(runs.live, runs.ctx0, runs.iters, runs.admitted * P, runs.admitted * P * P / 2.0)
    run_s = run_s + runs.iters * alpha
    run_tok = runs.live * runs.iters + runs.admitted * P
    _, n_groups = live_count_groups(runs, R)
    G = int(n_groups.max()) if n_groups.size else 1
    S = ro.segments
    replay = False
    if not S:
        probe = replica_traffic(model, layout, np.ones(R), np.zeros(R), **kw)
        done = sum(len(x) for x in segs)
        per = max(len(probe), 1)
        S = int(max(1, (ROLLOUT_FLOW_BUDGET - done) // per))
        # over the budget: one stage per group all the same, groups 1.. replaying group 0's flows (exact when
        # every first-stage flow of a block waits the block's compute: no per-step latency offsets)
        replay = S < G and done + per <= ROLLOUT_FLOW_BUDGET and spec.step_latency_s == 0
        S = G if replay else S
    S = max(1, min(S, G))
    stage = stage_of_runs(runs, R, S)
    key = runs.replica * S + stage
    tok_rs = np.bincount(key, weights=run_tok, minlength=R * S).reshape(R, S)
    c_rs = np.bincount(key, weights=run_s, minlength=R * S).reshape(R, S)
    compute += c_rs.sum(axis=1)
    for k in range(1 if replay else S):
        segs.append(replica_traffic(model, layout, tok_rs[:, k], c_rs[:, k], **kw))
    fs = stack_stages(segs)
    if replay:
        fs = replace(fs, replay=group_replays(fs, segs[-1], tok_rs, c_rs))
    meta = {"replicas": R, "replica_gpus": layout.replica_gpus, "tp": layout.tp, "dp_attention": layout.dp_attention,
            "ep": layout.ep, "ffn_gpus": layout.ffn_gpus, "decode_iterations": [int(t_lo), int(t_hi)],
            "decoded_tokens": float((runs.live * runs.iters).sum()), "sequences": int(((lengths > 0) & (start < t_hi)
                                                                                        & (start + lengths > t_lo)).sum()),
            "max_running": int(ro.max_running or lengths.shape[1]), "runs": int(runs.iters.size), "stages": int(S),
            "live_count_groups": G, "replayed_blocks": len(fs.replay) if fs.replay is not None else 0,
            "alpha_per_iteration_s": alpha, "iterations_max": int(np.bincount(runs.replica, weights=runs.iters,
                                                                             minlength=R).max()) if R else 0}
    meta.update(meta_extra or {})
    return make_phase(name, "rollout", fs, num_gpus, compute_s=float(compute.max()) if compute.size else 0.0,
                      meta=meta)


def group_replays(fs: FlowSet, block0: FlowSet, tok_rs: np.ndarray, c_rs: np.ndarray) -> StageReplay:
    """Groups ``1 ..`` of every replica as replays of its group-0 block (:class:`rfabric.workload.StageReplay`).

    ``fs``: the phase's flows, ending with ``block0`` (the flows of group 0, chain = replica, as
    :func:`stack_stages` placed them: its stages are the last of every chain); ``tok_rs`` / ``c_rs``
    ``(R, S)``: tokens and compute of every replica's groups. The flows of a group are those of group 0
    with sizes times ``tok / tok0`` (every size of :func:`traffic.phases.replica_traffic` is linear in the
    tokens) and first-stage delays ``c``; groups without tokens are empty (no flows, as materialised).
    """
    R, S = tok_rs.shape
    if not len(block0):
        return StageReplay.build([], [], [], [], [])
    off = int(fs.stage.max()) - int(block0.stage.max())  # stack_stages's shift of the last part
    lo = np.full(R, np.iinfo(np.int64).max)
    hi = np.full(R, -1)
    np.minimum.at(lo, block0.chain, block0.stage.astype(np.int64) + off)
    np.maximum.at(hi, block0.chain, block0.stage.astype(np.int64) + off)
    r, k = np.nonzero((tok_rs[:, 1:] > 0) & (hi[:, None] >= 0))
    k = k + 1
    return StageReplay.build(chain=r, first_stage=lo[r], stages=hi[r] - lo[r] + 1, scale=tok_rs[r, k] / tok_rs[r, 0],
                             delay_s=c_rs[r, k])


def _chain_by_dst(fs: FlowSet, replica_of_gpu: np.ndarray) -> FlowSet:
    """Put every flow in the chain of the new replica it delivers to (that replica waits for it)."""
    return FlowSet(src=fs.src, dst=fs.dst, size_bytes=fs.size_bytes, chain=replica_of_gpu[fs.dst].astype(np.int32),
                   stage=fs.stage, delay_s=fs.delay_s, multiplicity=fs.multiplicity, tag=fs.tag, tags=fs.tags)


def rollout_phases(plan: Any, lengths: np.ndarray, *, sfx: str, num_gpus: int, gps: int) -> list[Any]:
    """The rollout of one RL step: one phase step, or two around a mid-step parallelism switch.

    Sequences are admitted by :func:`admission_schedule`. With ``rollout.switch``, the switch happens at the
    iteration by which ``after_finished`` of the sequences have finished; each old replica splits into
    ``k`` new ones (sequence ``b`` goes to the ``b mod k``-th), which first receive their weight shards and
    the KV cache of their running sequences (``prompt + generated`` tokens each) -- then decode on. With
    ``rollout.migration`` (and no switch) the step splits the same way at ``migration.after_finished``; the
    second step starts by moving requests and their KV cache (:func:`plan_migration`, :func:`request_migration`).
    """
    ro = plan.spec.rollout
    start = admission_schedule(lengths, ro.max_running)
    finish = start + lengths
    t_max = int(finish.max())
    name = f"rollout{sfx}"
    mig = ro.migration
    if mig is not None and plan.switch is None:
        t_m = int(np.quantile(finish[lengths > 0], mig.after_finished, method="lower"))
        t_m = min(max(t_m, 1), t_max)
        out = [rollout_phase(plan, plan.rollout, lengths, start, 0, t_m, name=name, num_gpus=num_gpus, gps=gps,
                             prefill=True)]
        if t_m < t_max:
            L2, S2, src_r, dst_r, gen = plan_migration(lengths, start, t_m, max_running=ro.max_running,
                                                       slack=mig.slack)
            moves = request_migration(plan.model, plan.rollout, src_r, dst_r, gen + ro.prompt_tokens)
            out.append(rollout_phase(plan, plan.rollout, L2, S2, t_m, t_max, name=f"rollout.migrated{sfx}",
                                     num_gpus=num_gpus, gps=gps, prefill=False, first=moves,
                                     meta_extra={"migrated_requests": int(src_r.size),
                                                 "migrated_kv_bytes": moves.total_bytes}))
        return out
    if plan.switch is None:
        return [rollout_phase(plan, plan.rollout, lengths, start, 0, t_max, name=name, num_gpus=num_gpus, gps=gps,
                              prefill=True)]
    sw = ro.switch
    t_s = int(np.quantile(finish[lengths > 0], sw.after_finished, method="lower"))
    t_s = min(max(t_s, 1), t_max)
    out = [rollout_phase(plan, plan.rollout, lengths, start, 0, t_s, name=name, num_gpus=num_gpus, gps=gps,
                         prefill=True)]
    if t_s < t_max:
        kk = plan.rollout.replica_gpus // plan.switch.replica_gpus
        R, B = lengths.shape
        pad = (-B) % kk

        def split(x: np.ndarray) -> np.ndarray:
            x = np.pad(x, ((0, 0), (0, pad)))
            return x.reshape(R, -1, kk).transpose(0, 2, 1).reshape(R * kk, -1)

        live = (lengths > 0) & (start <= t_s) & (finish > t_s)
        cached = np.where(live, ro.prompt_tokens + t_s - start, 0)
        kv = split(cached).sum(axis=1).reshape(R, kk).astype(np.float64)
        out.append(rollout_phase(plan, plan.switch, split(lengths), split(start), t_s, t_max,
                                 name=f"rollout.switched{sfx}", num_gpus=num_gpus, gps=gps, prefill=False,
                                 reshard_from=plan.rollout, kv_tokens=kv))
    return out


# --------------------------------------------------------------------------------------------------
# request migration


def plan_migration(lengths: np.ndarray, start: np.ndarray, t_m: int, *, max_running: int, slack: int
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Which running requests move at iteration ``t_m``, and the per-replica arrays after the move.

    Every replica keeps at most ``cap = ceil(live / replicas) + slack`` running requests; the surplus, the
    longest-running first (earliest admitted), moves to the replicas with the most room below ``cap`` (and
    below ``max_running``), in replica order. Returns ``(lengths2, start2, src_replica, dst_replica,
    cached_tokens_without_prompt)``: the new ``(R, B2)`` arrays (a moved request keeps its admission
    iteration, so its attended context carries on) and, per moved request, where from and to and how many
    tokens it had generated. Queued requests stay where they are.
    """
    R, B = lengths.shape
    M = max_running or B
    live = (lengths > 0) & (start <= t_m) & (start + lengths > t_m)
    n = live.sum(axis=1)
    cap = int(-(-int(n.sum()) // R)) + slack
    key = np.where(live, start, np.iinfo(np.int64).max)
    order = np.argsort(key, axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(B)[None, :].repeat(R, axis=0), axis=1)
    excess = np.maximum(n - cap, 0)
    mover = live & (rank < excess[:, None])
    room = np.maximum(min(cap, M) - n, 0)
    src_r, src_b = np.nonzero(mover)
    by_age = np.lexsort((src_r, start[src_r, src_b]))  # longest-running first overall
    slots = np.repeat(np.arange(R), room)
    k = min(slots.size, src_r.size)
    src_r, src_b = src_r[by_age][:k], src_b[by_age][:k]
    dst_r = slots[:k]
    rep = np.broadcast_to(np.arange(R)[:, None], (R, B)).copy()
    rep[src_r, src_b] = dst_r
    keep = lengths > 0
    r_all, s_all, l_all = rep[keep], start[keep], lengths[keep]
    o = np.argsort(r_all, kind="stable")
    r_all, s_all, l_all = r_all[o], s_all[o], l_all[o]
    first = np.searchsorted(r_all, np.arange(R))
    pos = np.arange(r_all.size) - first[r_all]
    B2 = int(pos.max()) + 1 if pos.size else 1
    L2 = np.zeros((R, B2), dtype=np.int64)
    S2 = np.zeros((R, B2), dtype=np.int64)
    L2[r_all, pos] = l_all
    S2[r_all, pos] = s_all
    return L2, S2, src_r, dst_r, (t_m - start[src_r, src_b]).astype(np.float64)


def request_migration(model: ModelSpec, layout: RolloutLayout, src_r: np.ndarray, dst_r: np.ndarray,
                      cached_tokens: np.ndarray) -> FlowSet:
    """KV cache of migrated requests: ``cached_tokens[i]`` tokens from replica ``src_r[i]``'s first attention
    group to ``dst_r[i]``'s, TP rank to TP rank (``kv_cache_bytes_per_token / tp`` each). Chain = destination."""
    tp = layout.tp
    t = np.arange(tp)
    src = layout.replicas[src_r][:, t]
    dst = layout.replicas[dst_r][:, t]
    size = np.broadcast_to((cached_tokens * model.kv_cache_bytes_per_token / tp)[:, None], src.shape)
    chain = np.broadcast_to(dst_r[:, None], src.shape)
    return point_to_point(src.ravel(), dst.ravel(), size.ravel(), chain=chain.ravel(), tag="rollout/request_migration")
