"""The trainer's RL step as a per-layer compute/communication graph.

One RL step on the trainer (verl / Megatron-style PPO and GRPO trainers):

1. ``logprob_passes`` forward passes over every sample (old-policy log-probs; the frozen reference
   policy's when a KL term is used; the critic's values with a critic), phase step ``logprob``
   repeated once per pass;
2. ``ppo_epochs x mini_batches`` optimizer updates (twice as many with a critic of the same shape), each a
   forward + backward pass over its mini-batch followed by its gradient reduction and optimizer step:
   phase step ``train`` repeated once per update.

Inside a pass (one :class:`~rfabric.workload.PhaseStep`):

* **Compute.** Each pipeline stage runs its micro-batches in Megatron's 1F1B order (interleaved 1F1B with
  ``interleave`` chunks per stage; Narayanan et al. 2021, arXiv 2104.04473, sec. 2.2). Forward FLOPs per
  token are ``2 x active params + 4 L d t`` (matmuls; causal QK^T and AV, ``d`` = heads x head dim, ``t`` the
  token-weighted mean position ``E[S^2] / (2 E[S])``; Kaplan et al. 2020, arXiv 2001.08361, Table 1,
  with the causal half), spread evenly over layers; backward is twice the forward (three times with full
  recomputation). A layer's time is ``tokens x FLOPs / (tp x cp x peak x MFU)``. The schedule is computed
  exactly in integer units of one layer's forward time, so the pipeline bubble is exactly
  ``(m + p - 1) / m`` (``1 + (p - 1) / (v m)`` interleaved) for equal stages.
* **Communication per layer group** (``layers_per_stage`` layers), issued when the group's compute ends:
  TP all-reduce of the activations (2 per layer forward, 2 backward: attention and dense MLP; a MoE layer's
  MLP exchanges over expert-TP instead; with sequence parallelism the reduce-scatter + all-gather pair moves
  the same bytes as the ring all-reduce), EP dispatch + combine all-to-all (``tokens / tp x top_k x hidden``
  per GPU and direction), CP ring exchange of K/V (forward) and of K/V and their gradients (backward), PP
  activations forward and their gradients backward at the ends of a stage's chunk. Each DP-block of
  ranks coupled by TP / CP / EP / PP is one chain of stages: the communication of a step waits for the
  step's compute and the next step waits for it (no overlap, Megatron's default), unless ``overlap_tp`` /
  ``overlap_ep`` put that traffic in side chains that start at the same instant and block nothing.
* **Data parallel.** Gradients of a layer group are reduced over DP (dense weights, ``dp x cp`` ranks) and
  expert-DP (expert weights) as soon as the group's backward of the last micro-batch is done
  (``overlap_dp``, Megatron ``overlap_grad_reduce``), in ``grad_reduce_dtype``. The ready time of a bucket
  is its compute time plus the blocking communication before it, estimated as the largest ``size / link
  rate`` of each blocking step (NVLink inside a server, the NIC across): exact for NVLink-only TP. ZeRO-1/2
  reduce-scatter the gradients and all-gather the updated bf16 parameters after ``optimizer_s``; ZeRO-3
  also all-gathers each layer group's bf16 parameters when its forward and its backward start.
  Without ``overlap_dp`` the buckets start when the whole backward is done.
* **Latency.** Each message's alpha (``workload.latency``, NCCL's per-algorithm constants and DeepEP's
  per-kernel cost, :mod:`traffic.latency`) is added before its bytes: a layer group's blocking messages
  are paid one after another (TP all-reduce per layer, two EP kernels per MoE layer, ``cp - 1`` ring hops
  per layer, one PP send), gradient buckets pay one collective's alpha.

Without pipeline parallelism micro-batches ``0 .. m-2`` run as one block (same ops, ``m - 1`` times the
bytes and compute) followed by the last micro-batch, whose backward the gradient reduction overlaps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from rfabric.config import ClusterConfig
from rfabric.errors import ConfigError, InternalError
from rfabric.workload import FlowSet, PhaseStep
from traffic.collectives import all_gather, all_reduce, all_to_all, point_to_point, reduce_scatter
from traffic.models import ModelSpec
from traffic.parallelism import TrainLayout
from traffic.spec import MAX_FLOWS, RlStepPlan

#: flows one training phase step is kept under when ``layers_per_stage`` is automatic
TRAIN_FLOW_BUDGET = 150_000
#: automatic layer grouping: compute/communication steps per pipeline chunk (Megatron's default gradient
#: bucket of 40M parameters gives a few dozen buckets per stage; 8 keeps simulations fast)
GROUPS_PER_STAGE = 8

GRAD_BYTES = {"fp32": 4, "bf16": 2}


# --------------------------------------------------------------------------------------------------
# token statistics and FLOPs


def token_weighted_position(seq_lengths: np.ndarray) -> float:
    """Mean context position of a token, ``E[S^2] / (2 E[S])``, over sequences of ``seq_lengths`` tokens.

    A token at position ``t`` of a causal sequence attends to ``t`` keys; averaged over every token of a
    batch this weights each sequence by its length (not ``E[S] / 2``).

    >>> token_weighted_position(np.array([1000, 3000]))
    1250.0
    """
    s = np.asarray(seq_lengths, dtype=np.float64)
    return float((s * s).sum() / (2.0 * s.sum())) if s.size and s.sum() > 0 else 0.0


def forward_flops_per_token(model: ModelSpec, mean_position: float) -> float:
    """Forward FLOPs of one token: ``2 x active params + 4 L d t`` (QK^T and AV over ``t`` keys per layer)."""
    return model.flops_per_token(mean_position, training=False)


# --------------------------------------------------------------------------------------------------
# the pipeline schedule


@dataclass(frozen=True, slots=True)
class Op:
    """One forward (``"F"``) or backward (``"B"``) of micro-batch ``mb`` on virtual stage ``vs``."""

    kind: str
    stage: int
    chunk: int
    mb: int
    scale: int  # micro-batches this op stands for (the merged block without PP)


def op_orders(pp: int, v: int, m: int, *, backward: bool) -> list[list[tuple[str, int, int]]]:
    """Per pipeline stage, its ops ``(kind, chunk, micro-batch)`` in Megatron's (interleaved) 1F1B order."""
    out = []
    for r in range(pp):
        if not backward:
            out.append([("F", (k // pp) % v, (k // (pp * v)) * pp + k % pp) for k in range(m * v)])
            continue
        fw = [("F", (k // pp) % v, (k // (pp * v)) * pp + k % pp) for k in range(m * v)]
        bw = [("B", v - 1 - (k // pp) % v, (k // (pp * v)) * pp + k % pp) for k in range(m * v)]
        warm = min(pp - r - 1, m) if v == 1 else min((pp - r - 1) * 2 + (v - 1) * pp, m * v)
        seq = fw[:warm]
        for i in range(m * v - warm):
            seq += [fw[warm + i], bw[i]]
        seq += bw[m * v - warm:]
        out.append(seq)
    return out


def schedule(orders: Sequence[Sequence[tuple[str, int, int]]], units: dict[tuple[str, int, int], int],
             pp: int, v: int) -> dict[tuple[str, int, int, int], tuple[int, int]]:
    """Start and end (integer time units) of every op ``(kind, stage, chunk, mb)``: an op starts when its
    stage is free and its input is there (forward: the previous virtual stage's forward of the micro-batch;
    backward: the next virtual stage's backward, or the same stage's forward on the last virtual stage).
    ``units[(kind, stage, chunk)]`` is the op's duration."""
    V = pp * v
    done: dict[tuple[str, int, int, int], tuple[int, int]] = {}
    pos = [0] * pp
    free = [0] * pp
    remaining = sum(len(o) for o in orders)
    while remaining:
        progressed = False
        for r in range(pp):
            while pos[r] < len(orders[r]):
                kind, c, j = orders[r][pos[r]]
                vs = c * pp + r
                if kind == "F":
                    dep = None if vs == 0 else ("F", (vs - 1) % pp, (vs - 1) // pp, j)
                else:
                    dep = ("F", r, c, j) if vs == V - 1 else ("B", (vs + 1) % pp, (vs + 1) // pp, j)
                if dep is not None and dep not in done:
                    break
                start = max(free[r], done[dep][1] if dep is not None else 0)
                end = start + units[(kind, r, c)]
                done[(kind, r, c, j)] = (start, end)
                free[r] = end
                pos[r] += 1
                remaining -= 1
                progressed = True
        if not progressed:
            raise InternalError("pipeline schedule deadlocked")  # pragma: no cover - orders are consistent
    return done


# --------------------------------------------------------------------------------------------------
# the graph


@dataclass(frozen=True, slots=True)
class Pass:
    """What one phase step computes: ``tokens`` in ``micro_batches`` per DP rank, backward or not."""

    name: str
    tokens: float
    mean_position: float
    backward: bool
    repeat: int


def _chain_of(lay: TrainLayout, model: ModelSpec) -> tuple[np.ndarray, int]:
    """Chain id per trainer GPU (offset-free index): connected components of the TP, CP, PP, EP and
    expert-TP groups -- the ranks whose compute steps wait for each other."""
    n = lay.gpus
    off = int(lay.grid.min())
    rows: list[np.ndarray] = [lay.groups("tp"), lay.groups("cp"), lay.groups("pp")]
    if model.kind == "moe":
        rows += [lay.ep_groups(), lay.etp_groups()]
    src, dst = [], []
    for g in rows:
        if g.shape[1] > 1:
            src.append(g[:, :-1].ravel() - off)
            dst.append(g[:, 1:].ravel() - off)
    if not src:
        return np.arange(n), n
    a = np.concatenate(src)
    b = np.concatenate(dst)
    k, lab = connected_components(coo_matrix((np.ones(a.size), (a, b)), shape=(n, n)), directed=False)
    return lab, int(k)


class _Builder:
    """Collects the flows of one pass: main chains (stages at compute boundaries) and side chains."""

    def __init__(self, plan: RlStepPlan, cluster: ClusterConfig) -> None:
        self.plan = plan
        self.lay = plan.train
        self.model = plan.model
        self.tr = plan.spec.train
        self.gps = cluster.gpus_per_server
        self.nvlink = cluster.nvlink_bps
        self.nic = cluster.nic_bps
        self.kw: dict[str, Any] = {"stages": plan.spec.collective_stages, "step_latency_s": plan.spec.step_latency_s}
        self.chain_of, self.n_chains = _chain_of(self.lay, self.model)
        self.off = int(self.lay.grid.min())
        # groups of pipeline stage r: rows [r * k, (r + 1) * k) of each group array (pp is the slowest axis)
        self.tp_g = self.lay.groups("tp")
        self.cp_g = self.lay.groups("cp")
        self.ep_g = self.lay.ep_groups() if self.model.kind == "moe" else None
        self.etp_g = self.lay.etp_groups() if self.model.kind == "moe" else None
        self.side: list[FlowSet] = []
        self.next_side_chain = self.n_chains
        from traffic.generation import latency_of

        self.lat = latency_of(plan.spec)

    def nodes(self, groups: np.ndarray) -> int:
        """Servers spanned by one group (the first row; groups of one kind are alike)."""
        return int(np.unique(groups[0] // self.gps).size) if groups.size else 1

    def rows(self, groups: np.ndarray, r: int) -> np.ndarray:
        k = groups.shape[0] // self.lay.pp
        return groups[r * k:(r + 1) * k]

    def est_s(self, fs: FlowSet) -> float:
        """How long flows that start together take if each GPU port (NVLink inside a server, the NIC across)
        is their only bottleneck: the largest bytes through one port (sent or received) / its rate. Exact
        for NVLink and a non-blocking fabric; a lower bound under congestion."""
        if not len(fs):
            return 0.0
        nv = (fs.src // self.gps) == (fs.dst // self.gps)
        w = fs.size_bytes * fs.multiplicity
        out = 0.0
        for mask, rate in ((nv, self.nvlink), (~nv, self.nic)):
            if mask.any():
                for ends in (fs.src[mask], fs.dst[mask]):
                    _, inv = np.unique(ends, return_inverse=True)
                    out = max(out, float(np.bincount(inv, weights=w[mask]).max()) * 8.0 / rate)
        return out

    def to_main(self, fs: FlowSet) -> FlowSet:
        """Chain of every flow = the chain of its source GPU (a collective's group lies in one chain)."""
        return FlowSet(src=fs.src, dst=fs.dst, size_bytes=fs.size_bytes,
                       chain=self.chain_of[fs.src - self.off].astype(np.int32), stage=np.zeros(len(fs), np.int32),
                       delay_s=np.zeros(len(fs)), multiplicity=fs.multiplicity, tag=fs.tag, tags=fs.tags)

    def add_side(self, fs: FlowSet, at_s: float) -> None:
        """Independent chains (one per collective instance) whose first stage starts at ``at_s``."""
        if not len(fs):
            return
        _, inv = np.unique(fs.chain, return_inverse=True)
        chain = (self.next_side_chain + inv).astype(np.int32)
        self.next_side_chain += int(inv.max()) + 1
        delay = fs.delay_s + np.where(fs.stage == 0, at_s, 0.0)
        self.side.append(FlowSet(src=fs.src, dst=fs.dst, size_bytes=fs.size_bytes, chain=chain, stage=fs.stage,
                                 delay_s=delay, multiplicity=fs.multiplicity, tag=fs.tag, tags=fs.tags))


def _layer_chunks(L: int, V: int, lps: int) -> list[list[np.ndarray]]:
    """Layers of each virtual stage (contiguous, earlier stages take the remainder), cut into groups of at
    most ``lps`` layers."""
    out = []
    for chunk in np.array_split(np.arange(L), V):
        n = max(1, -(-chunk.size // lps))
        out.append([g for g in np.array_split(chunk, n) if g.size])
    return out


def build_pass(plan: RlStepPlan, cluster: ClusterConfig, p: Pass, *, num_gpus: int, lps: int,
               phase_name: str) -> PhaseStep:
    """One pass (forward-only or forward + backward with the gradient reduction) as a phase step."""
    B = _Builder(plan, cluster)
    lay, m_, tr, g = B.lay, B.model, B.tr, plan.spec.gpu
    H, b = m_.hidden, m_.dtype_bytes
    pp, v = lay.pp, (tr.interleave if lay.pp > 1 else 1)
    m = plan.micro_batches
    L = m_.layers
    moe_layer = np.zeros(L, dtype=bool)
    if m_.kind == "moe":
        moe_layer[m_.dense_layers:] = True
    chunks = _layer_chunks(L, pp * v, lps)
    beta = 3 if tr.recompute == "full" else 2
    # time unit: forward of one layer for one micro-batch on one GPU
    tok_mb = p.tokens / (lay.dp * m)  # tokens of one micro-batch of one DP rank
    f_layer = forward_flops_per_token(m_, p.mean_position) / L
    unit_s = tok_mb * f_layer / (lay.tp * lay.cp * g.peak_flops * g.mfu)
    # ---- ops per stage
    if pp == 1:
        blocks = [(0, m - 1), (1, 1)] if m > 1 and p.backward else [(0, m)]
        orders = [[(k, 0, j) for j, _ in blocks for k in (("F", "B") if p.backward else ("F",))]]
        scale = dict(blocks)
    else:
        orders = op_orders(pp, v, m, backward=p.backward)
        scale = {j: 1 for j in range(m)}
    units = {}
    for r in range(pp):
        for c in range(v):
            n = sum(x.size for x in chunks[c * pp + r])
            units[("F", r, c)] = n
            units[("B", r, c)] = beta * n
    if pp == 1:  # blocks have their own durations: fold the scale into the unit table per micro-batch
        times: dict[tuple[str, int, int, int], tuple[int, int]] = {}
        t = 0
        for kind, c, j in orders[0]:
            d = units[(kind, 0, c)] * scale[j]
            times[(kind, 0, c, j)] = (t, t + d)
            t += d
    else:
        times = schedule(orders, units, pp, v)
    makespan = max(e for _, e in times.values())
    last_mb = max(scale)
    j_of = {sc: j for j, sc in scale.items()}  # a micro-batch with each scale (flows depend on the scale only)
    # ---- events: (time unit, stage, op kind, chunk, mb, group index within chunk)
    events: list[tuple[int, int, str, int, int, int]] = []
    for (kind, r, c, j), (s, _) in times.items():
        grp = chunks[c * pp + r]
        sc = scale[j]
        if kind == "F":
            t = s
            for gi, layers in enumerate(grp):
                t += layers.size * sc
                events.append((t, r, kind, c, j, gi))
        else:
            t = s
            for gi in range(len(grp) - 1, -1, -1):
                t += beta * grp[gi].size * sc
                events.append((t, r, kind, c, j, gi))
    events.sort()
    cache: dict[tuple[Any, ...], tuple[FlowSet, FlowSet, float]] = {}

    def step_flows(r: int, kind: str, c: int, j: int, gi: int) -> tuple[FlowSet, FlowSet, float]:
        """(blocking, overlapped) flows issued at the end of one group's compute, and the per-message latency
        (alpha, :mod:`traffic.latency`) of the blocking messages, paid one after another."""
        layers = chunks[c * pp + r][gi]
        sc = scale[j]
        vs = c * pp + r
        first, last = gi == 0, gi == len(chunks[vs]) - 1
        send = (kind == "F" and last and vs < pp * v - 1) or (kind == "B" and first and vs > 0)
        key = (r, kind, layers.size, int(moe_layer[layers].sum()), sc, send, vs if send else -1)
        if key in cache:
            return cache[key]
        blocking: list[FlowSet] = []
        overlapped: list[FlowSet] = []
        alpha = 0.0
        lat = B.lat
        n_moe = int(moe_layer[layers].sum())
        n_dense = layers.size - n_moe
        tok_cp = tok_mb * sc / lay.cp  # tokens of one CP rank (all TP ranks see them)
        if lay.tp > 1:
            size = (layers.size + n_dense) * tok_cp * H * b  # attention (+ dense MLP) per layer
            grp = B.rows(B.tp_g, r)
            fs = all_reduce(grp, size, algorithm=tr.tp_algorithm, gpus_per_server=B.gps, tag="tp/all_reduce", **B.kw)
            (overlapped if tr.overlap_tp else blocking).append(fs)
            if not tr.overlap_tp:
                alpha += (layers.size + n_dense) * lat.all_reduce_s(lay.tp, B.nodes(grp), tr.tp_algorithm)
        if n_moe and lay.ep > 1 and B.ep_g is not None:
            size = 2 * n_moe * (tok_cp / lay.tp) * m_.top_k * H * b  # dispatch + combine
            fs = all_to_all(B.rows(B.ep_g, r), size, algorithm=tr.ep_algorithm, gpus_per_server=B.gps,
                            tag="ep/all_to_all", **B.kw)
            (overlapped if tr.overlap_ep else blocking).append(fs)
            if not tr.overlap_ep:
                alpha += 2 * n_moe * lat.all_to_all_s
        if n_moe and lay.etp > 1 and B.etp_g is not None:
            size = n_moe * (tok_cp / lay.tp) * m_.top_k * H * b
            grp = B.rows(B.etp_g, r)
            fs = all_reduce(grp, size, algorithm=tr.tp_algorithm, gpus_per_server=B.gps, tag="etp/all_reduce", **B.kw)
            (overlapped if tr.overlap_tp else blocking).append(fs)
            if not tr.overlap_tp:
                alpha += n_moe * lat.all_reduce_s(lay.etp, B.nodes(grp), tr.tp_algorithm)
        if lay.cp > 1:
            kv_layer = m_.kv_cache_bytes_per_token / L
            per = (1 if kind == "F" else 2) * layers.size * (lay.cp - 1) * tok_cp * kv_layer / lay.tp
            grp = B.rows(B.cp_g, r)
            nxt = np.roll(grp, -1, axis=1)
            ch = np.broadcast_to(np.arange(grp.shape[0])[:, None], grp.shape)
            blocking.append(point_to_point(grp, nxt, per, chain=ch, tag="cp/ring"))
            hops = (1 if kind == "F" else 2) * layers.size * (lay.cp - 1)
            alpha += hops * lat.p2p_s(B.nodes(grp) > 1)
        if send:
            act = tok_cp * H * b / lay.tp
            here = lay.grid[r].reshape(-1)
            if kind == "F":
                there = lay.grid[(r + 1) % pp].reshape(-1)
            else:
                there = lay.grid[(r - 1) % pp].reshape(-1)
            blocking.append(point_to_point(here, there, act, chain=np.arange(here.size), tag="pp/p2p"))
            alpha += lat.p2p_s(bool(np.any(here // B.gps != there // B.gps)))
        out = (FlowSet.concat(blocking), FlowSet.concat(overlapped), alpha)
        cache[key] = out
        return out

    # ---- main chains: one stage per event instant with blocking flows
    main: list[FlowSet] = []
    stage = 0
    last_t = 0
    est_extra = 0.0  # estimated blocking communication so far (seconds)
    ready: dict[tuple[int, int, int], float] = {}  # (stage, chunk, group) -> gradient ready time (s)
    ev = np.array([e[0] for e in events])
    bounds = np.r_[0, np.flatnonzero(np.diff(ev)) + 1, len(events)]
    combined: dict[tuple[Any, ...], tuple[FlowSet, float]] = {}
    for a, z in zip(bounds[:-1], bounds[1:], strict=True):
        t = events[a][0]
        now_s = t * unit_s + est_extra
        keys: list[tuple[int, str, int, int, int]] = []
        alpha = 0.0
        for _, r, kind, c, j, gi in events[a:z]:
            bl, ov, al = step_flows(r, kind, c, j, gi)
            if len(bl):
                keys.append((r, kind, c, scale[j], gi))
                alpha = max(alpha, al)
            if len(ov):
                B.add_side(ov, now_s)
            if kind == "B" and j == last_mb:
                ready[(r, c, gi)] = now_s
        if not keys:
            continue
        sig = tuple(keys)
        if sig not in combined:
            fs = B.to_main(FlowSet.concat([step_flows(r, kind, c, j_of[sc], gi)[0] for r, kind, c, sc, gi in keys]))
            combined[sig] = (fs, B.est_s(fs))
        fs, est = combined[sig]
        delay = (t - last_t) * unit_s + alpha
        n = len(fs)
        main.append(FlowSet(src=fs.src, dst=fs.dst, size_bytes=fs.size_bytes, chain=fs.chain,
                            stage=np.full(n, stage, np.int32), delay_s=np.full(n, delay),
                            multiplicity=fs.multiplicity, tag=fs.tag, tags=fs.tags))
        est_extra += est + alpha
        stage += 1
        last_t = t
    end_s = makespan * unit_s + est_extra
    # ---- data parallel: gradient buckets per layer group of the last micro-batch's backward
    zero = plan.zero_stage
    if p.backward:
        gb = GRAD_BYTES[tr.grad_reduce_dtype]
        expert_total = float(m_.routed_expert_params) if m_.kind == "moe" else 0.0
        dense_total = float(m_.params) - expert_total
        L_moe = max(int(moe_layer.sum()), 1)
        for (r, c, gi), t_ready in sorted(ready.items(), key=lambda kv: kv[1]):
            layers = chunks[c * pp + r][gi]
            at = t_ready if tr.overlap_dp else end_s
            dense = dense_total * layers.size / L / lay.tp
            expert = expert_total * int(moe_layer[layers].sum()) / L_moe / (lay.etp * lay.ep)
            for groups, params, tag in ((lay.dp_groups(), dense, "dp"), (lay.expert_dp_groups(), expert, "edp")):
                if params <= 0 or groups.shape[1] < 2:
                    continue
                rows = B.rows(groups, r)
                n, nodes = rows.shape[1], B.nodes(rows)
                if zero == 0:
                    fs = all_reduce(rows, params * gb, algorithm=tr.dp_algorithm, gpus_per_server=B.gps,
                                    tag=f"{tag}/all_reduce", **B.kw)
                    alpha = B.lat.all_reduce_s(n, nodes, tr.dp_algorithm)
                else:
                    rs = reduce_scatter(rows, params * gb, algorithm=tr.dp_algorithm, tag=f"{tag}/reduce_scatter",
                                        **B.kw)
                    alpha = B.lat.gather_s(n, nodes)
                    if zero <= 2:
                        ag = all_gather(rows, params * b, algorithm=tr.dp_algorithm, tag=f"{tag}/all_gather", **B.kw)
                        rs = _then(rs, ag, tr.optimizer_s + B.lat.gather_s(n, nodes))
                    fs = rs
                B.add_side(fs, at + alpha)
    # ---- ZeRO-3: each group's bf16 parameters all-gathered when its forward / backward compute starts
    if zero == 3:
        for (kind, r, c, j), (s, _) in times.items():
            grp = chunks[c * pp + r]
            order = range(len(grp)) if kind == "F" else range(len(grp) - 1, -1, -1)
            t = s
            for gi in order:
                layers = grp[gi]
                params = (float(m_.params) * layers.size / L) / lay.tp
                rows = B.rows(lay.dp_groups(), r)
                B.add_side(all_gather(rows, params * b, algorithm=tr.dp_algorithm, tag="dp/all_gather", **B.kw),
                           t * unit_s + B.lat.gather_s(rows.shape[1], B.nodes(rows)))
                t += layers.size * scale[j] * (1 if kind == "F" else beta)
    from traffic.phases import make_phase, merge

    fs = merge(main + B.side)
    compute_s = makespan * unit_s
    extra = tr.optimizer_s if (p.backward and zero == 0) else 0.0
    ideal = sum(units[(k, 0, c)] for k in (("F", "B") if p.backward else ("F",)) for c in range(v)) * m
    meta = {"tokens": p.tokens, "micro_batches": m, "tp": lay.tp, "pp": pp, "dp": lay.dp, "cp": lay.cp, "ep": lay.ep,
            "etp": lay.etp, "interleave": v, "zero_stage": zero, "bubble": makespan / ideal if ideal else 1.0,
            "layers_per_stage": lps, "mean_position": p.mean_position, "backward": p.backward,
            "flops_per_token": forward_flops_per_token(m_, p.mean_position) * (1 + beta if p.backward else 1)}
    step = make_phase(phase_name, "train", fs, num_gpus, compute_s=compute_s, extra_after_s=extra, meta=meta)
    if p.repeat > 1:
        step = PhaseStep(name=step.name, phase=step.phase, flows=step.flows, num_gpus=step.num_gpus,
                         compute_before_s=step.compute_before_s, compute_after_s=step.compute_after_s,
                         repeat=p.repeat, collective=step.collective, axis=step.axis, meta=step.meta)
    return step


def _then(first: FlowSet, second: FlowSet, delay_s: float) -> FlowSet:
    from traffic.collectives import then

    return then(first, second, delay_s=delay_s)


def passes(plan: RlStepPlan, seq_lengths: np.ndarray) -> list[Pass]:
    """The trainer's passes of one RL step over sequences of ``seq_lengths`` tokens (prompt + response)."""
    tr = plan.spec.train
    T = float(np.asarray(seq_lengths, dtype=np.float64).sum())
    t_bar = token_weighted_position(seq_lengths)
    lp = plan.logprob_passes + (1 if tr.critic else 0)
    updates = tr.mini_batches * tr.ppo_epochs * (2 if tr.critic else 1)
    out = []
    if lp:
        out.append(Pass(name="logprob", tokens=T, mean_position=t_bar, backward=False, repeat=lp))
    out.append(Pass(name="train", tokens=T / tr.mini_batches, mean_position=t_bar, backward=True, repeat=updates))
    return out


def auto_layers_per_stage(plan: RlStepPlan) -> int:
    """Layers per compute/communication step: at most :data:`GROUPS_PER_STAGE` steps per pipeline chunk,
    doubled until the estimated flows of the update pass stay under :data:`TRAIN_FLOW_BUDGET`. Blocking
    TP / EP / CP bytes and compute are the same whatever the grouping; it decides how finely gradient
    buckets interleave with backward compute."""
    tr, lay, m = plan.spec.train, plan.train, plan.model
    if tr.layers_per_stage:
        return tr.layers_per_stage
    per_layer = 0
    gpus = lay.gpus
    if lay.tp > 1:
        per_layer += gpus
    if m.kind == "moe" and lay.ep > 1:
        per_layer += gpus * (lay.ep - 1)
    if lay.cp > 1:
        per_layer += gpus
    dp_flows = gpus * (2 if m.kind == "moe" else 1) * (1 if plan.zero_stage == 0 else 2)
    mb = plan.micro_batches if lay.pp > 1 else 2
    lps = max(1, -(-m.layers // (lay.pp * tr.interleave * GROUPS_PER_STAGE)))
    while lps < m.layers:
        steps = -(-m.layers // (lay.pp * lps)) * lay.pp
        est = 2 * mb * steps * per_layer / lay.pp + steps * dp_flows / lay.pp
        if est <= TRAIN_FLOW_BUDGET:
            break
        lps *= 2
    return min(lps, m.layers)


def train_phases(plan: RlStepPlan, seq_lengths: np.ndarray, cluster: ClusterConfig, *, num_gpus: int,
                 suffix: str = "") -> list[PhaseStep]:
    """The trainer's phase steps of one RL step: ``logprob`` (if any) and ``train``."""
    lps = auto_layers_per_stage(plan)
    out = []
    for p in passes(plan, seq_lengths):
        step = build_pass(plan, cluster, p, num_gpus=num_gpus, lps=lps, phase_name=p.name + suffix)
        _check_repeats(plan, step, p)
        out.append(step)
    return out


#: Most repetitions of one trainer pass per RL step (optimizer updates x PPO epochs, log-prob passes); each is
#: an instance of the simulated timeline. verl's defaults make 4 updates; 10,000 is a guard, not a limit
#: of the model.
MAX_PASS_REPEATS = 10_000


def _check_repeats(plan: RlStepPlan, step: PhaseStep, p: Pass) -> None:
    """A pass repeated ``r`` times is simulated as ``r`` copies of its flows: refuse more than
    :data:`traffic.spec.MAX_FLOWS` in all (``mini_batches: 1000000`` would otherwise run for minutes and
    exhaust memory), naming the key that multiplies it."""
    played = max(1, len(step.flows)) * p.repeat
    if played <= MAX_FLOWS and p.repeat <= MAX_PASS_REPEATS:
        return
    tr = plan.spec.train
    tpath = f"{plan.path}.train"
    if p.name == "logprob":
        key, val = f"{tpath}.logprob_passes", tr.logprob_passes
    else:
        key, val = ((f"{tpath}.mini_batches", tr.mini_batches) if tr.mini_batches >= tr.ppo_epochs
                    else (f"{tpath}.ppo_epochs", tr.ppo_epochs))
    if p.repeat > MAX_PASS_REPEATS:
        raise ConfigError(key, f"the {p.name} pass would be repeated {p.repeat:,} times in one RL step (limit "
                          f"{MAX_PASS_REPEATS:,}: each repetition is simulated)", val)
    raise ConfigError(key, f"the {p.name} pass ({len(step.flows):,} flows) repeated {p.repeat:,} times would be "
                      f"simulated as {played:,} flows (limit {MAX_FLOWS:,})", val)
