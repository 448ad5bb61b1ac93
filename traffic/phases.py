"""The phases of a disaggregated RL step as flows: rollout, score, train, weight sync.

How each phase becomes chains of flows (see :mod:`rfabric.workload` for the chain/stage semantics):

``rollout`` -- built by :mod:`traffic.generation` (roofline iterations with the expected experts touched,
continuous batching, runs of constant live count as stages, per-iteration alpha of the decode collectives,
KV-cache migration on a parallelism switch) from :func:`replica_traffic` below: per layer, TP all-reduce of
the attention output and of dense MLPs; MoE dispatch + combine all-to-all; with attention--FFN
disaggregation, activations attention -> FFN GPUs and back.

``score`` -- a forward pass (prefill) of prompts + responses on the rollout replicas.

``train`` -- see :mod:`traffic.training` (per-layer graph of the trainer's passes).

``weight_sync`` -- the whole model in bf16 to every rollout replica: each replica's shards are cut from the
trainer's shards by interval overlap of the two layouts (TP slices, PP stages, expert groups), pulled from
one trainer DP replica (replicas spread over the DP replicas); then copied inside the replica to its other
attention-DP / expert groups. ``broadcast``: only ``roots`` replicas pull from the trainer; the others
receive the same bytes from a parent replica along binary trees.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from rfabric.errors import InvalidArgumentError
from rfabric.workload import FlowSet, PhaseStep, StageReplay
from traffic.collectives import all_reduce, all_to_all, point_to_point
from traffic.models import ModelSpec
from traffic.parallelism import RolloutLayout, interval_overlap
from traffic.spec import RlStepPlan, global_batch

# --------------------------------------------------------------------------------------------------
# flow-set plumbing


def remap_chains(fs: FlowSet, mapping: np.ndarray) -> FlowSet:
    """The same flows with chain ``c`` renamed ``mapping[c]`` (to put several groups in one chain)."""
    if not len(fs):
        return fs
    rp = fs.replay
    if rp is not None:
        rp = replace(rp, chain=np.asarray(mapping, np.int64)[rp.chain])
    return FlowSet(src=fs.src, dst=fs.dst, size_bytes=fs.size_bytes, chain=np.asarray(mapping, np.int32)[fs.chain],
                   stage=fs.stage, delay_s=fs.delay_s, multiplicity=fs.multiplicity, tag=fs.tag, tags=fs.tags,
                   replay=rp)


def merge(parts: Sequence[FlowSet]) -> FlowSet:
    """Concatenate flow sets that share one chain numbering (unlike ``FlowSet.concat``); their replays are
    concatenated in part order (replays of one chain keep their order)."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return FlowSet.empty()
    tags: list[str] = []
    for p in parts:
        tags += [t for t in p.tags if t not in tags]
    tag = [np.array([tags.index(t) for t in p.tags], dtype=np.int16)[p.tag] for p in parts]
    replays = [p.replay for p in parts if p.replay is not None and len(p.replay)]
    return FlowSet(**{k: np.concatenate([getattr(p, k) for p in parts])
                      for k in ("src", "dst", "size_bytes", "chain", "stage", "delay_s", "multiplicity")},
                   tag=np.concatenate(tag), tags=tuple(tags), replay=StageReplay.concat(replays) if replays else None)


def compact(fs: FlowSet) -> FlowSet:
    """Renumber chains 0..C-1 and each chain's stages 0..S-1 densely (no empty stage inside a chain),
    in a deterministic flow order (chain, stage, src, dst). Replays follow the renumbering (a template
    block's stages must stay contiguous: no empty stage inside it)."""
    if not len(fs):
        return fs
    uc, chain = np.unique(fs.chain, return_inverse=True)
    span = int(fs.stage.max()) + 1
    key = chain.astype(np.int64) * span + fs.stage
    uk, inv = np.unique(key, return_inverse=True)
    uchain = uk // span
    first = np.r_[0, np.flatnonzero(np.diff(uchain)) + 1]
    start = np.repeat(first, np.diff(np.r_[first, uk.size]))
    stage = (np.arange(uk.size) - start)[inv]
    order = np.lexsort((fs.dst, fs.src, stage, chain))
    rp = fs.replay
    if rp is not None and len(rp):
        fs.replay_weight()  # every template stage exists
        rc = np.searchsorted(uc, rp.chain)
        lo = np.searchsorted(uk, rc * span + rp.first_stage)
        hi = np.searchsorted(uk, rc * span + rp.first_stage + rp.stages - 1)
        if np.any(hi - lo != rp.stages - 1):
            raise InvalidArgumentError("compact: a replay's template block has an empty stage inside")
        rp = replace(rp, chain=rc.astype(np.int64), first_stage=(np.arange(uk.size) - start)[lo].astype(np.int64))
    return FlowSet(src=fs.src[order], dst=fs.dst[order], size_bytes=fs.size_bytes[order],
                   chain=chain[order].astype(np.int32), stage=stage[order].astype(np.int32),
                   delay_s=fs.delay_s[order], multiplicity=fs.multiplicity[order], tag=fs.tag[order], tags=fs.tags,
                   replay=rp)


def chain_delay_max(fs: FlowSet) -> float:
    """The largest sum over a chain's stages of the stage's largest ``delay_s`` (its compute time), replayed
    stages included (a replayed block's first stage waits the replay's ``delay_s``)."""
    if not len(fs):
        return 0.0
    span = int(fs.stage.max()) + 1
    key = fs.chain.astype(np.int64) * span + fs.stage
    uk, inv = np.unique(key, return_inverse=True)
    per_stage = np.zeros(uk.size)
    np.maximum.at(per_stage, inv, fs.delay_s)
    per_chain = np.bincount(uk // span, weights=per_stage)
    rp = fs.replay
    if rp is not None and len(rp):
        # later stages of each block keep the template's delays; the first waits the replay's own
        blocks = np.cumsum(per_stage)
        lo = np.searchsorted(uk, rp.chain * span + rp.first_stage)
        later = blocks[lo + rp.stages - 1] - blocks[lo]
        per_chain = per_chain + np.bincount(rp.chain, weights=rp.delay_s + later, minlength=per_chain.size)
    return float(per_chain.max())


def make_phase(name: str, phase: str, flows: FlowSet, num_gpus: int, *, compute_s: float, extra_after_s: float = 0.0,
               meta: dict[str, Any] | None = None) -> PhaseStep:
    """A PhaseStep from chains whose delays carry the compute.

    ``compute_s`` is the longest compute path of the phase; what the chains' delays do not cover becomes
    ``compute_after_s`` (plus ``extra_after_s``). The common idle time before the first flow of every chain
    is moved into ``compute_before_s`` -- the window in which circuits can be re-pointed.
    """
    flows = compact(flows)
    before = 0.0
    if len(flows):
        first = flows.stage == 0
        chains_first = np.full(int(flows.chain.max()) + 1, np.inf)
        np.minimum.at(chains_first, flows.chain[first], flows.delay_s[first])
        before = float(chains_first.min())
        if before > 0:
            d = flows.delay_s.copy()
            d[first] -= before
            flows = FlowSet(src=flows.src, dst=flows.dst, size_bytes=flows.size_bytes, chain=flows.chain,
                            stage=flows.stage, delay_s=np.maximum(d, 0.0), multiplicity=flows.multiplicity,
                            tag=flows.tag, tags=flows.tags, replay=flows.replay)
    covered = before + chain_delay_max(flows)
    after = max(0.0, compute_s - covered) + extra_after_s
    if not len(flows):
        before, after = 0.0, compute_s + extra_after_s
    tags = {t.split("/")[-1] for t in flows.tags} if len(flows) else set()
    axes = {t.split("/")[0] for t in flows.tags} if len(flows) else set()
    return PhaseStep(name=name, phase=phase, flows=flows, num_gpus=num_gpus, compute_before_s=before,
                     compute_after_s=after, collective=tags.pop() if len(tags) == 1 else "mixed",
                     axis=axes.pop() if len(axes) == 1 else "mixed", meta=dict(meta or {}, compute_s=compute_s))


# --------------------------------------------------------------------------------------------------
# rollout


def response_lengths(plan: RlStepPlan, rng: np.random.Generator) -> np.ndarray:
    """Output tokens of each sequence, ``(replicas, per_replica)`` int64 (0 = no sequence), from the seeded
    generator. The global batch (:func:`traffic.spec.global_batch`) is shared by the replicas in
    contiguous runs, the first ``batch % replicas`` replicas taking one more sequence."""
    ro = plan.spec.rollout
    R = plan.rollout.num_replicas
    B = global_batch(plan.spec, R)
    if ro.length_distribution == "fixed" or ro.length_sigma == 0:
        x = np.full(B, ro.response_tokens_mean)
    else:
        mu = np.log(ro.response_tokens_mean) - ro.length_sigma**2 / 2
        x = rng.lognormal(mu, ro.length_sigma, size=B)
    x = np.clip(np.rint(x), 1, ro.response_tokens_max).astype(np.int64)
    per = -(-B // R)
    counts = B // R + (np.arange(R) < B % R)
    start = np.r_[0, np.cumsum(counts)[:-1]]
    j = np.arange(per)
    take = j[None, :] < counts[:, None]
    out = np.zeros((R, per), dtype=np.int64)
    out[take] = x[(start[:, None] + j[None, :])[take]]
    return out


def replica_traffic(model: ModelSpec, layout: RolloutLayout, tokens: np.ndarray, delay_s: np.ndarray, *,
                    stages: str, step_latency_s: float, gps: int, ep_algorithm: str,
                    ep_bytes_factor: float = 1.0, nvlink_shift: bool = False) -> FlowSet:
    """One forward pass of ``tokens[r]`` tokens through every replica r, after ``delay_s[r]`` of compute:
    TP all-reduces, MoE all-to-all (bytes x ``ep_bytes_factor``, e.g. FP8 dispatch; ``nvlink_shift``: its
    in-server part as shift flows with multiplicity, :func:`traffic.collectives.all_to_all`) or
    attention--FFN exchange. Chain r = replica r."""
    H, b = model.hidden, model.dtype_bytes
    Lm = model.moe_layers
    Ld = model.layers - Lm
    afd = layout.ffn_gpus > 0
    rg = layout.replica_gpus
    kw: dict[str, Any] = {"stages": stages, "step_latency_s": step_latency_s}
    parts = []
    if layout.tp > 1:
        dpa = layout.dp_attention
        n_ar = model.layers + (0 if afd else Ld)
        size = n_ar * np.repeat(tokens / dpa, dpa) * H * b
        fs = all_reduce(layout.tp_groups(), size, algorithm="ring", delay_s=np.repeat(delay_s, dpa),
                        tag="tp/all_reduce", **kw)
        parts.append(remap_chains(fs, np.arange(layout.num_replicas * dpa) // dpa))
    if model.kind == "moe" and not afd and layout.ep > 1:
        per = rg // layout.ep
        size = 2 * Lm * np.repeat(tokens / rg, per) * model.top_k * H * b * ep_bytes_factor
        fs = all_to_all(layout.ep_groups(), size, algorithm=ep_algorithm, delay_s=np.repeat(delay_s, per),
                        gpus_per_server=gps, tag="ep/all_to_all", nvlink_shift=nvlink_shift, **kw)
        parts.append(remap_chains(fs, np.arange(layout.num_replicas * per) // per))
    if afd:
        att, ffn = layout.attention_part(), layout.ffn_part()
        R, a = att.shape
        f = ffn.shape[1]
        fan = (Lm * model.top_k / f + Ld) if model.kind == "moe" else float(model.layers)
        pair = (tokens / a) * H * b * fan  # per attention GPU -> FFN GPU pair, each direction
        src = np.broadcast_to(att[:, :, None], (R, a, f))
        dst = np.broadcast_to(ffn[:, None, :], (R, a, f))
        sz = np.broadcast_to(pair[:, None, None], (R, a, f))
        ch = np.broadcast_to(np.arange(R)[:, None, None], (R, a, f))
        dl = np.broadcast_to(delay_s[:, None, None], (R, a, f))
        parts.append(point_to_point(src, dst, sz, chain=ch, delay_s=dl, tag="afd/p2p"))
        parts.append(point_to_point(dst, src, sz, chain=ch, delay_s=dl, tag="afd/p2p"))
    return merge(parts)


def prefill_seconds(plan: RlStepPlan, model: ModelSpec, rg: int, tokens: np.ndarray, ctx_sum: np.ndarray) -> np.ndarray:
    g = plan.spec.gpu
    return (2.0 * model.active_params * tokens + 4.0 * model.layers * model.attn_dim * ctx_sum) / (rg * g.peak_flops * g.mfu)


def _reshard_within(plan: RlStepPlan, old: RolloutLayout, new: RolloutLayout) -> FlowSet:
    """Weights moved inside each old replica so that every new (smaller) replica holds its new shards."""
    m = plan.model
    k = old.replica_gpus // new.replica_gpus
    A = m.weight_bytes - (m.routed_expert_params * m.dtype_bytes if m.kind == "moe" else 0.0)
    F = m.weight_bytes - A
    M = interval_overlap(old.tp, new.tp)
    src_list, dst_list, size_list, chain_list = [], [], [], []
    ro, rn = old.replicas, new.replicas.reshape(old.num_replicas, k, new.replica_gpus)
    for i in range(k):  # k new replicas per old one (small)
        grp = i % old.dp_attention
        t, tn = np.nonzero(M)
        src_list.append(ro[:, grp * old.tp + t])
        dst_list.append(rn[:, i, tn])
        size_list.append(np.broadcast_to(A * M[t, tn], (old.num_replicas, t.size)))
        chain_list.append(np.broadcast_to(np.arange(old.num_replicas)[:, None], (old.num_replicas, t.size)))
        if F > 0:
            E = interval_overlap(old.ep, new.ep)
            e, en = np.nonzero(E)
            src_list.append(ro[:, e])
            dst_list.append(rn[:, i, en])
            size_list.append(np.broadcast_to(F * E[e, en], (old.num_replicas, e.size)))
            chain_list.append(np.broadcast_to(np.arange(old.num_replicas)[:, None], (old.num_replicas, e.size)))
    src = np.concatenate([x.ravel() for x in src_list])
    dst = np.concatenate([x.ravel() for x in dst_list])
    keep = src != dst
    return point_to_point(src[keep], dst[keep], np.concatenate([x.ravel() for x in size_list])[keep],
                          chain=np.concatenate([x.ravel() for x in chain_list])[keep], tag="rollout/reshard")


def score_phase(plan: RlStepPlan, lengths: np.ndarray, *, name: str, num_gpus: int, gps: int) -> PhaseStep:
    model = plan.score_model or plan.model
    ro = plan.spec.rollout
    lay = plan.rollout
    seq = (lengths + ro.prompt_tokens).astype(np.float64)
    tok = seq.sum(axis=1)
    c = prefill_seconds(plan, model, lay.replica_gpus, tok, (seq**2 / 2).sum(axis=1))
    fs = replica_traffic(model, lay, tok, c, stages=plan.spec.collective_stages, step_latency_s=plan.spec.step_latency_s,
                         gps=gps, ep_algorithm=ro.ep_algorithm)
    return make_phase(name, "score", fs, num_gpus, compute_s=float(c.max()),
                      meta={"model": model.name, "tokens": float(tok.sum())})


# --------------------------------------------------------------------------------------------------
# weight sync


def _sync_targets(plan: RlStepPlan) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """What every replica pulls from the trainer, as entries independent of the replica:
    ``rows[e] = (pp stage, 0 for dense weights or 1 + position in the EP group, tp rank)`` of the trainer
    shard, ``slots[e]`` the GPU index inside the replica, ``sizes[e]`` bytes, ``kinds[e]`` 0 dense / 1 expert.
    Each replica receives exactly the model's bytes."""
    m, lay, ro = plan.model, plan.train, plan.rollout
    expert = m.routed_expert_params * m.dtype_bytes if m.kind == "moe" else 0.0
    dense = m.weight_bytes - expert
    # dense / attention weights: (p, t) -> attention-group-0 slot t'
    M = interval_overlap(lay.tp, ro.tp)
    t, tn = np.nonzero(M)
    p = np.repeat(np.arange(lay.pp), t.size)
    rows = [np.stack([p, np.zeros_like(p), np.tile(t, lay.pp)], axis=1)]
    slots = [np.tile(tn, lay.pp)]
    sizes = [np.tile(dense / lay.pp * M[t, tn], lay.pp)]
    kinds = [np.zeros(p.size, dtype=np.int64)]
    if expert > 0:
        # expert weights: (p, t, e) -> expert-group-0 slot e' (experts split over ep, each expert over etp)
        ffn0 = ro.attention_gpus if ro.ffn_gpus else 0
        etp = lay.etp or lay.tp
        E = interval_overlap(lay.ep, ro.ep)
        e, en = np.nonzero(E)
        grid_p, grid_t, grid_e = np.meshgrid(np.arange(lay.pp), np.arange(etp), np.arange(e.size), indexing="ij")
        pp_, tt, ee = grid_p.ravel(), grid_t.ravel(), grid_e.ravel()
        rows.append(np.stack([pp_, 1 + e[ee], tt], axis=1))
        slots.append(ffn0 + en[ee])
        sizes.append(expert / lay.pp / etp * E[e[ee], en[ee]])
        kinds.append(np.ones(pp_.size, dtype=np.int64))
    return np.concatenate(rows), np.concatenate(slots), np.concatenate(sizes), np.concatenate(kinds)


def _replicate_within(plan: RlStepPlan, layout: RolloutLayout) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Copies inside a replica from the slots that received weights to the other attention-DP / expert groups:
    (src slot, dst slot, bytes)."""
    src, dst, size = [], [], []
    tp, dpa = layout.tp, layout.dp_attention
    expert = plan.model.routed_expert_params * plan.model.dtype_bytes if plan.model.kind == "moe" else 0.0
    for k in range(1, dpa):  # attention groups 1.. copy attention-group-0's dense shards
        src.append(np.arange(tp))
        dst.append(k * tp + np.arange(tp))
        size.append(np.full(tp, (plan.model.weight_bytes - expert) / tp))
    if plan.model.kind == "moe":
        base = layout.attention_gpus if layout.ffn_gpus else 0
        holders = (layout.ffn_gpus or layout.replica_gpus)
        per = expert / layout.ep
        for k in range(1, holders // layout.ep):
            src.append(base + np.arange(layout.ep))
            dst.append(base + k * layout.ep + np.arange(layout.ep))
            size.append(np.full(layout.ep, per))
    if not src:
        z = np.zeros(0, dtype=np.int64)
        return z, z, np.zeros(0)
    return np.concatenate(src), np.concatenate(dst), np.concatenate(size)


def weight_sync_phase(plan: RlStepPlan, *, name: str, num_gpus: int) -> PhaseStep:
    m, lay, ro = plan.model, plan.train, plan.rollout
    ws = plan.spec.weight_sync
    R, rg = ro.num_replicas, ro.replica_gpus
    rows, slots, sizes, kinds = _sync_targets(plan)
    j = np.arange(R)
    # replicas spread over the trainer's DP ranks (dense shards) and expert-DP groups (expert shards, laid
    # out by MoE parallel folding: grid of a stage re-read as (edp, ep, etp), see TrainLayout)
    dense_src = lay.grid[rows[None, :, 0], (j % lay.dp)[:, None], 0, np.minimum(rows[None, :, 2], lay.tp - 1)]
    if m.kind == "moe":
        xg = lay.grid.reshape(lay.pp, lay.edp, lay.ep, lay.etp or lay.tp)
        e_idx = np.maximum(rows[None, :, 1] - 1, 0)
        t_idx = np.minimum(rows[None, :, 2], xg.shape[3] - 1)
        expert_src = xg[rows[None, :, 0], (j % lay.edp)[:, None], e_idx, t_idx]
        src_tr = np.where(kinds[None, :] == 0, dense_src, expert_src)  # (R, E)
    else:
        src_tr = dense_src
    received = np.bincount(slots, weights=sizes, minlength=rg)
    cs, cd, csz = _replicate_within(plan, ro)
    if ws.method == "p2p" or R == 1:
        roots = np.arange(R)
        depth = np.zeros(R, dtype=np.int64)
        parent = np.full(R, -1)
        tree = np.arange(R)
    else:
        K = min(R, ws.roots or lay.dp)
        parent = np.where(j < K, -1, (j - K) // 2)
        depth = np.zeros(R, dtype=np.int64)
        tree = j.copy()
        for r in range(K, R):  # R replicas; cheap scalar recursion over replica ids (not flows)
            depth[r] = depth[parent[r]] + 1
            tree[r] = tree[parent[r]]
        roots = np.arange(K)
    exact = plan.spec.collective_stages == "exact"
    # trainer -> root replicas
    src = src_tr[roots].ravel()
    dst = ro.replicas[roots][:, slots].ravel()
    size = np.broadcast_to(sizes, (roots.size, sizes.size)).ravel()
    chain = np.repeat(tree[roots], sizes.size)
    stage = np.zeros(src.size, dtype=np.int64)
    parts = [point_to_point(src, dst, size, chain=chain, stage=stage, tag="sync/p2p")]
    if roots.size < R:  # parent replica -> child replica, slot by slot
        kids = np.arange(roots.size, R)
        recv_slots = np.flatnonzero(received > 0)
        ps = ro.replicas[parent[kids]][:, recv_slots].ravel()
        cd_ = ro.replicas[kids][:, recv_slots].ravel()
        st = (depth[kids] if exact else np.ones(kids.size, dtype=np.int64))
        parts.append(point_to_point(ps, cd_, np.tile(received[recv_slots], kids.size),
                                    chain=np.repeat(tree[kids], recv_slots.size), stage=np.repeat(st, recv_slots.size),
                                    tag="sync/broadcast"))
    if cs.size:  # replicate inside every replica once it has its shards
        st = (depth + 1) if exact else np.where(depth > 0, 2, 1)
        parts.append(point_to_point(ro.replicas[:, cs].ravel(), ro.replicas[:, cd].ravel(), np.tile(csz, R),
                                    chain=np.repeat(tree, cs.size), stage=np.repeat(st, cs.size), tag="sync/replicate"))
    fs = merge(parts)
    meta = {"method": ws.method, "bytes_per_replica": m.weight_bytes, "replicas": R,
            "roots": int(roots.size)}
    return make_phase(name, "weight_sync", fs, num_gpus, compute_s=0.0, meta=meta)
