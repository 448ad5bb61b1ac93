"""Weight sync as RL frameworks run it: gather on the trainer -> bucketed broadcast -> engine reload.

``weight_sync.method`` (``p2p`` and ``broadcast`` live in :func:`traffic.phases.weight_sync_phase`):

``gather_broadcast`` -- slime (THUDM/slime, ``update_weight_from_distributed``) and verl: per pipeline
    stage, the TP (and EP) shards of trainer DP replica 0 are gathered to one rank (the stage's source);
    the source flattens the stage's weights into buckets of ``bucket_bytes`` and broadcasts each bucket to
    every rollout GPU through one NCCL group (every engine rank receives the whole bucket and keeps its
    shard); the engines load the bucket (``reload_bytes_per_s``) before the next bucket is gathered. One
    bucket at a time: gather, broadcast, reload are serial.
``checkpoint_engine`` -- MoonshotAI/checkpoint-engine: the same three steps pipelined over buckets (double
    buffers): while bucket ``i`` is broadcast, bucket ``i+1`` is gathered and bucket ``i-1`` is loaded.

Flows: one chain per pipeline stage (its source and broadcast chain run independently of the other
stages'). The broadcast is NCCL's pipelined ring (chain) source -> rollout GPU 0 -> 1 -> ...: each edge
carries every byte once (in the fluid limit all edges stream at once). Each bucket pays the alpha of
its gather and of its broadcast (:mod:`traffic.latency`). Buckets are equal (the stage's bytes over
``ceil(bytes / bucket_bytes)``). When a stage has more buckets than ``MAX_STAGES`` allows, consecutive
buckets share a flow stage: for the serial method this is exact in the fluid model (times add up); for the
pipelined method the fill (one bucket gathered first, one loaded last) stays exact and the reload's
excess over the network is charged per bucket as ``max(0, bucket / reload - bucket / nic)`` (an estimate:
the network time of a bucket is taken at line rate).

Source for the 3-step structure and its cost: calibration.md ("Weight sync"), slime's blog (Qwen3-30B-A3B
weight update 60 s -> 7 s by gathering, bucketing and broadcasting).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rfabric.workload import FlowSet
from traffic.collectives import point_to_point
from traffic.latency import Latency

#: most flow stages per source chain (buckets are grouped beyond it; see the module notes)
MAX_STAGES = 32


def _stage_shards(plan: Any, p: int) -> tuple[np.ndarray, np.ndarray]:
    """Trainer GPUs of DP replica 0 (and its expert group) holding PP stage ``p``'s weights, and their bytes;
    the stage's source rank first."""
    m, lay = plan.model, plan.train
    expert = m.routed_expert_params * m.dtype_bytes if m.kind == "moe" else 0.0
    dense = m.weight_bytes - expert
    gpus = [lay.grid[p, 0, 0, :]]
    sizes = [np.full(lay.tp, dense / lay.pp / lay.tp)]
    if expert > 0:
        etp = lay.etp or lay.tp
        # the stage's first expert-DP group: ep x etp ranks (Megatron MoE parallel folding, see TrainLayout)
        g = lay.grid.reshape(lay.pp, lay.edp, lay.ep, etp)[p, 0].ravel()
        gpus.append(g)
        sizes.append(np.full(g.size, expert / lay.pp / (lay.ep * etp)))
    g_all = np.concatenate(gpus)
    s_all = np.concatenate(sizes)
    u, inv = np.unique(g_all, return_inverse=True)  # a GPU holding dense and expert shards sends both
    w = np.bincount(inv, weights=s_all)
    first = np.argsort(u != g_all[0], kind="stable")  # the source (TP rank 0 of DP replica 0) first
    return u[first], w[first]


def _lane(p: int, g_src: np.ndarray, src: int, g_bytes: np.ndarray, b_src: np.ndarray, b_dst: np.ndarray, b: float,
          nb: int, *, a_gather: float, a_bcast: float, reload_s: float, stall_s: float | None) -> list[FlowSet]:
    """Flows of one source chain ``p``: ``g_bytes`` per bucket from each holder ``g_src`` to ``src``, then ``b``
    per bucket along the broadcast chain ``b_src -> b_dst``; serial (``stall_s`` None) or pipelined."""
    parts: list[FlowSet] = []

    def gather(nbk: float, stage: int, delay: float) -> FlowSet:
        return point_to_point(g_src, np.full(g_src.size, src), g_bytes * nbk, chain=np.full(g_src.size, p),
                              stage=stage, delay_s=delay, tag="sync/gather")

    def bcast(nbk: float, stage: int, delay: float) -> FlowSet:
        return point_to_point(b_src, b_dst, np.full(b_dst.size, b * nbk), chain=np.full(b_dst.size, p),
                              stage=stage, delay_s=delay, tag="sync/broadcast")

    if stall_s is None:
        # serial per bucket: [gather j] -> [broadcast j] -> reload j (delay of the next gather)
        prev = 0
        for k, grp in enumerate(np.array_split(np.arange(nb), min(nb, MAX_STAGES // 2))):
            n_k = float(grp.size)
            # reload of the previous group's last bucket, and the (n_k - 1) reloads inside this group
            wait = prev * reload_s + (n_k - 1) * reload_s + n_k * a_gather + (n_k - 1) * a_bcast
            if g_src.size:
                parts.append(gather(n_k, 2 * k, wait))
                parts.append(bcast(n_k, 2 * k + 1, a_bcast))
            else:
                parts.append(bcast(n_k, 2 * k, wait + a_bcast))
            prev = 1
        return parts
    # software pipeline: [gather 0] -> [gather i+1 || broadcast i] ... -> [broadcast nb-1] -> reload
    st = 0
    if g_src.size:
        parts.append(gather(1.0, st, a_gather))
        st += 1
    if nb > 1:
        for grp in np.array_split(np.arange(nb - 1), min(nb - 1, MAX_STAGES - 2)):
            n_k = float(grp.size)
            d = n_k * (max(a_gather, a_bcast) + stall_s)
            if g_src.size:
                parts.append(gather(n_k, st, d))
            parts.append(bcast(n_k, st, d))
            st += 1
    parts.append(bcast(1.0, st, a_bcast + (stall_s if nb > 1 else 0.0)))
    return parts


def gather_broadcast_phase(plan: Any, *, name: str, num_gpus: int, rollout_gpus: tuple[int, int], gps: int,
                           nic_bytes_per_s: float, latency: Latency) -> Any:
    """The ``gather_broadcast`` or ``checkpoint_engine`` weight sync as a phase step (see the module notes)."""
    from traffic.phases import make_phase, merge

    m, lay = plan.model, plan.train
    ws = plan.spec.weight_sync
    pipelined = ws.method == "checkpoint_engine"
    targets = np.arange(rollout_gpus[0], rollout_gpus[1], dtype=np.int64)
    stage_bytes = m.weight_bytes / lay.pp
    nb = max(1, int(np.ceil(stage_bytes / ws.bucket_bytes - 1e-9)))
    b = stage_bytes / nb
    reload_s = b / ws.reload_bytes_per_s
    parts: list[FlowSet] = []
    tail_s = reload_s  # the engines load the last bucket after the last broadcast
    meta_alpha = 0.0
    for p in range(lay.pp):
        holders, sizes = _stage_shards(plan, p)
        src = int(holders[0])
        keep = holders != src
        a_gather = latency.gather_s(holders.size, np.unique(holders // gps).size) if keep.any() else 0.0
        a_bcast = latency.broadcast_s(np.unique(np.r_[src, targets] // gps).size)
        meta_alpha = a_gather + a_bcast
        stall = max(0.0, reload_s - b / nic_bytes_per_s)
        parts += _lane(p, holders[keep], src, sizes[keep] / stage_bytes * b, np.r_[src, targets[:-1]], targets, b, nb,
                       a_gather=a_gather, a_bcast=a_bcast, reload_s=reload_s, stall_s=stall if pipelined else None)
    fs = merge(parts)
    meta = {"method": ws.method, "bytes_per_replica": m.weight_bytes, "buckets_per_stage": nb,
            "bucket_bytes": b, "reload_s_per_bucket": reload_s, "alpha_per_bucket_s": meta_alpha,
            "receivers": int(targets.size), "sources": lay.pp}
    return make_phase(name, "weight_sync", fs, num_gpus, compute_s=0.0, extra_after_s=tail_s, meta=meta)
