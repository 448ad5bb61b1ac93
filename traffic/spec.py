"""Workload specifications: the ``workload:`` section of a run config, validated into frozen plans.

Two kinds (``workload.kind``), registered in :data:`traffic.REGISTRY`:

``rl_step`` (:class:`RlStepSpec`)
    One disaggregated RL step of a model: rollout (generation) on the rollout GPUs, optional scoring,
    training on the trainer GPUs, weight sync trainer -> every rollout replica.
``collective`` (:class:`CollectiveSpec`)
    One collective (kind, algorithm, size) on groups of GPUs: micro-benchmarks, simulator hand tests,
    packet-level cross-checks and sweeps.

Every parameter is checked here, before any traffic is generated; mistakes raise ``ConfigError`` naming
the dotted key (``workload.train.tp``). ``0`` means "choose automatically" for parallelism degrees;
the resolved values are in the plan (and in each phase's ``meta``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rfabric.config import ClusterConfig, bounded, choice, non_negative, positive
from rfabric.errors import ConfigError
from rfabric.workload import Schedule
from traffic.collectives import ALGORITHMS, STAGES
from traffic.models import ModelSpec, load_model
from traffic.parallelism import RolloutLayout, TrainLayout, parse_order

PHASES = ("train", "rollout", "weight_sync", "score")

#: hard limit on the flows one phase may have (the simulator's comfortable range is <= ~1e6)
MAX_FLOWS = 5_000_000


@dataclass(frozen=True, kw_only=True, slots=True)
class GpuSpec:
    """The roofline of one GPU (default: H800-class).

    ``peak_flops`` (YAML ``peak_tflops``) dense bf16; ``mfu`` the fraction reached in training and
    prefill; ``hbm_bytes_per_s`` memory bandwidth and ``decode_mbu`` the fraction of it reached in decode;
    ``memory_bytes`` (YAML ``memory_gb``) HBM per GPU, used to size rollout replicas of MoE models.
    """

    peak_flops: float = positive(989e12)
    mfu: float = bounded(0.4, gt=0.0, le=1.0)
    hbm_bytes_per_s: float = positive(3.35e12)
    decode_mbu: float = bounded(0.6, gt=0.0, le=1.0)
    memory_bytes: float = positive(80e9)


@dataclass(frozen=True, kw_only=True, slots=True)
class TrainSpec:
    """Trainer parallelism and gradient synchronisation.

    ``tp``, ``ep``: 0 = automatic (TP: the largest degree <= GPUs per server dividing the heads; EP: 1 for
    dense models, else the largest divisor of the experts <= 8 dividing DP). ``pp``, ``cp``: pipeline and
    context parallelism. DP is what is left: ``trainer_gpus / (tp * pp * cp)``. ``order``: rank layout,
    fastest-varying axis first. ``micro_batches``: 0 = 1 without PP, else ``4 * pp``.
    ``dp_collective``: ``all_reduce`` of gradients, or ``reduce_scatter`` (ZeRO / distributed optimizer:
    reduce-scatter gradients, then all-gather updated bf16 parameters). ``buckets``: gradient buckets, each
    reduced as soon as its share of the last backward pass is done. ``pieces``: how many chunks the
    per-micro-batch TP / PP / EP / CP traffic is spread over (at most ``micro_batches``).
    """

    tp: int = non_negative(0)
    pp: int = positive(1)
    cp: int = positive(1)
    ep: int = non_negative(0)
    order: str = "tp-cp-dp-pp"
    micro_batches: int = non_negative(0)
    dp_collective: str = choice("all_reduce", choices=("all_reduce", "reduce_scatter"))
    dp_algorithm: str = "ring"
    tp_algorithm: str = "ring"
    ep_algorithm: str = "direct"
    buckets: int = positive(4)
    grad_bytes_per_param: int = bounded(2, ge=1, le=4)
    optimizer_s: float = non_negative(0.0)
    pieces: int = positive(4)


@dataclass(frozen=True, kw_only=True, slots=True)
class SwitchSpec:
    """Mid-step parallelism switch: once ``after_finished`` of the sequences are done, every replica is
    re-shaped (e.g. TP8 -> two TP4 replicas); the new replica size must divide the old one."""

    after_finished: float = bounded(0.5, gt=0.0, lt=1.0)
    tp: int = positive()
    dp_attention: int = positive(1)
    ep: int = non_negative(0)


@dataclass(frozen=True, kw_only=True, slots=True)
class MigrationSpec:
    """Request migration between replicas (straggler mitigation): once ``after_finished`` of the sequences
    are done, the longest-running requests of the busiest replicas move, with their KV cache, to replicas
    with free slots, until no replica runs more than ``ceil(live / replicas)`` + ``slack`` of them."""

    after_finished: float = bounded(0.9, gt=0.0, lt=1.0)
    slack: int = non_negative(0)


@dataclass(frozen=True, kw_only=True, slots=True)
class LatencySpec:
    """Per-message latency (alpha) of collectives, added as delay before their bytes (see
    :mod:`traffic.latency`). ``protocol`` picks NCCL's table row (``ll`` for small decode messages);
    ``base_s`` / ``nvlink_hop_s`` / ``net_hop_s`` (YAML ``*_us``) override it; ``all_to_all_s`` is the
    fixed cost of one expert-parallel dispatch or combine kernel (DeepEP low-latency fit: 21 us)."""

    enabled: bool = True
    protocol: str = choice("ll", choices=("ll", "ll128", "simple"))
    base_s: float | None = None
    nvlink_hop_s: float | None = None
    net_hop_s: float | None = None
    all_to_all_s: float | None = None

    def __post_init__(self) -> None:
        for k in ("base_s", "nvlink_hop_s", "net_hop_s", "all_to_all_s"):
            v = getattr(self, k)
            if v is not None and v < 0:
                raise ConfigError(k.removesuffix("_s") + "_us", "must be >= 0", v * 1e6)


@dataclass(frozen=True, kw_only=True, slots=True)
class RolloutSpec:
    """Generation: replica shape, batch, sequence lengths.

    A replica runs attention as ``dp_attention`` TP groups of ``tp`` GPUs; a MoE model's experts are
    spread over EP groups of ``ep`` GPUs (0 = the whole replica); ``ffn_gpus > 0`` disaggregates
    attention and FFN (the FFN / experts run on ``ffn_gpus`` extra GPUs of the replica). ``tp`` and
    ``dp_attention`` 0 = automatic (TP as for the trainer; ``dp_attention`` grows in powers of two until
    the weights take at most half a GPU's memory). Each replica decodes ``batch_per_replica`` sequences of
    ``prompt_tokens`` plus a long-tailed response length (lognormal with ``response_tokens_mean`` and
    ``length_sigma``, clipped to ``response_tokens_max``; ``fixed``: every response has the mean length).
    Each replica runs at most ``max_running`` sequences at once (0 = its whole share: a static batch) and
    refills a freed slot from its queue at the next iteration (continuous batching, see
    :mod:`traffic.generation`). Decode is played as runs of iterations with an unchanged live count, at
    most ``segments`` stages per replica (0 = automatic: up to 64, fewer when a phase would pass a million
    flows -- large MoE replicas). ``dispatch_dtype``: ``fp8`` sends MoE dispatch in FP8 (DeepEP), combine
    stays bf16. ``migration``: request migration between replicas (:class:`MigrationSpec`).
    """

    tp: int = non_negative(0)
    dp_attention: int = non_negative(0)
    ep: int = non_negative(0)
    ffn_gpus: int = non_negative(0)
    batch_per_replica: int = positive(256)
    prompt_tokens: int = positive(512)
    response_tokens_mean: float = positive(2048.0)
    response_tokens_max: int = positive(16384)
    length_distribution: str = choice("lognormal", choices=("lognormal", "fixed"))
    length_sigma: float = non_negative(1.0)
    segments: int = non_negative(0)
    ep_algorithm: str = "direct"
    switch: SwitchSpec | None = None
    max_running: int = non_negative(0)
    dispatch_dtype: str = choice("bf16", choices=("bf16", "fp8"))
    migration: MigrationSpec | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class WeightSyncSpec:
    """Trainer -> rollout weights (bf16), every ``sync_every`` RL steps (see :class:`RlStepSpec`).

    ``p2p``: every rollout replica pulls its shards straight from the trainer shards (resharded from the
    trainer's TP/PP/EP layout to the replica's). ``broadcast``: ``roots`` replicas (0 = as many as trainer
    DP replicas) pull from the trainer, the rest receive from a parent replica along binary trees.
    ``gather_broadcast`` (slime / verl): per pipeline stage the trainer gathers its TP/EP shards to one rank,
    which broadcasts buckets of ``bucket_bytes`` (YAML ``bucket_mb`` ...) along a pipelined NCCL chain to
    every rollout GPU; the engines load each bucket at ``reload_bytes_per_s`` before the next is sent.
    ``checkpoint_engine`` (MoonshotAI checkpoint-engine): the same three steps pipelined over buckets.
    See :mod:`traffic.weight_sync`.
    """

    enabled: bool = True
    method: str = choice("p2p", choices=("p2p", "broadcast"))
    roots: int = non_negative(0)
    bucket_bytes: float = positive(1e9)
    reload_bytes_per_s: float = positive(20e9)


@dataclass(frozen=True, kw_only=True, slots=True)
class ScoreSpec:
    """Optional scoring pass (reference / reward model forward) on the rollout GPUs after generation."""

    enabled: bool = False
    model: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class RlStepSpec:
    """A disaggregated RL step (``kind: rl_step``).

    ``sync_every``: weights are synced every k RL steps. With ``k > 1`` the workload is *one sync
    period*: k rollout/train steps (phases suffixed ``.step0`` .. ``.step{k-1}``, each with its own seeded
    lengths) followed by one weight sync -- the sync is neither dropped nor scaled, so circuits and
    timings stay honest; per-step figures are the workload's divided by ``meta['rl_steps']``.
    ``collective_stages``: ``coalesced`` (default) or ``exact`` (see :mod:`traffic.collectives`);
    ``step_latency_s``: per-step latency added back to coalesced multi-step collectives.
    ``schedule``: how consecutive steps overlap (:class:`rfabric.workload.Schedule`: ``mode: sync |
    one_step_off | async``, ``staleness``, ``sync: blocking | streamed``); default ``one_step_off`` with a
    blocking sync, the setting of verl's one-step-off recipe and of the OrchestrRL paper.
    """

    kind: str = "rl_step"
    schedule: Schedule = field(default_factory=lambda: Schedule(mode="one_step_off"))
    model: str = "qwen2.5-14b"
    gpu: GpuSpec = field(default_factory=GpuSpec)
    train: TrainSpec = field(default_factory=TrainSpec)
    rollout: RolloutSpec = field(default_factory=RolloutSpec)
    weight_sync: WeightSyncSpec = field(default_factory=WeightSyncSpec)
    score: ScoreSpec = field(default_factory=ScoreSpec)
    sync_every: int = positive(1)
    latency: LatencySpec = field(default_factory=LatencySpec)
    collective_stages: str = choice("coalesced", choices=STAGES)
    step_latency_s: float = non_negative(0.0)


@dataclass(frozen=True, kw_only=True, slots=True)
class CollectiveSpec:
    """One collective on groups of GPUs (``kind: collective``).

    ``gpus``: which GPUs (``all``, ``trainer``, ``rollout``); ``group_size`` ranks per instance (0 = all of
    them); ``group_layout``: ``contiguous`` (instance i = GPUs ``i*n .. i*n+n-1``) or ``strided`` (member k
    of instance i = GPU ``i + k*G``, e.g. one GPU per server). ``size_bytes`` (YAML ``size_mb`` / ``size_gb``
    ...) as in :mod:`traffic.collectives`. ``p2p``: every rank sends ``size_bytes`` to the rank
    ``peer_offset`` further in its group. ``broadcast``: from rank ``root``.
    """

    kind: str = "collective"
    collective: str = choice("all_reduce", choices=("all_reduce", "reduce_scatter", "all_gather", "all_to_all",
                                                    "broadcast", "p2p"))
    algorithm: str = ""
    size_bytes: float = positive(1e9)
    gpus: str = choice("all", choices=("all", "trainer", "rollout"))
    group_size: int = non_negative(0)
    group_layout: str = choice("contiguous", choices=("contiguous", "strided"))
    root: int = non_negative(0)
    peer_offset: int = positive(1)
    collective_stages: str = choice("coalesced", choices=STAGES)
    step_latency_s: float = non_negative(0.0)
    phase: str = choice("train", choices=PHASES)
    repeat: int = positive(1)
    compute_before_s: float = non_negative(0.0)
    compute_after_s: float = non_negative(0.0)


# --------------------------------------------------------------------------------------------------
# plans: validated specs with every automatic choice resolved


@dataclass(frozen=True, slots=True, eq=False)
class RlStepPlan:
    spec: RlStepSpec
    model: ModelSpec
    score_model: ModelSpec | None
    train: TrainLayout
    micro_batches: int
    rollout: RolloutLayout
    switch: RolloutLayout | None
    path: str

    def describe(self) -> dict[str, Any]:
        t, r = self.train, self.rollout
        out: dict[str, Any] = {"model": self.model.name, "train": {"tp": t.tp, "pp": t.pp, "dp": t.dp, "cp": t.cp,
                                                                  "ep": t.ep, "micro_batches": self.micro_batches},
                               "rollout": {"replicas": r.num_replicas, "replica_gpus": r.replica_gpus, "tp": r.tp,
                                           "dp_attention": r.dp_attention, "ep": r.ep, "ffn_gpus": r.ffn_gpus}}
        if self.switch is not None:
            s = self.switch
            out["rollout_switch"] = {"replicas": s.num_replicas, "replica_gpus": s.replica_gpus, "tp": s.tp,
                                     "dp_attention": s.dp_attention, "ep": s.ep}
        return out


@dataclass(frozen=True, slots=True, eq=False)
class CollectivePlan:
    spec: CollectiveSpec
    groups: np.ndarray
    algorithm: str
    path: str


def _divisors_desc(n: int, limit: int) -> list[int]:
    return [d for d in range(min(n, limit), 0, -1) if n % d == 0]


def _tp_ok(tp: int, model: ModelSpec) -> str | None:
    if model.heads % tp:
        return f"must divide the model's {model.heads} attention heads"
    if model.attention == "gqa" and model.kv_heads % tp and tp % model.kv_heads:
        return f"must divide, or be a multiple of, the model's {model.kv_heads} KV heads"
    return None


def _auto_tp(model: ModelSpec, gpus: int, gps: int) -> int:
    for t in _divisors_desc(gps, gps):
        if gpus % t == 0 and _tp_ok(t, model) is None:
            return t
    return 1


def _check_algorithm(op: str, algo: str, key: str) -> None:
    if algo not in ALGORITHMS[op]:
        from rfabric.config import suggest

        raise ConfigError(key, f"unknown {op} algorithm; {suggest(algo, ALGORITHMS[op])} "
                          f"(known: {', '.join(ALGORITHMS[op])})", algo)


def _check_group_algorithm(op: str, algo: str, n: int, key: str) -> None:
    if algo == "halving_doubling" and n > 1 and n & (n - 1):
        raise ConfigError(key, f"halving_doubling needs a power-of-two group; the {op} groups have {n} ranks", algo)


def _check_hierarchical(groups: np.ndarray, gps: int, key: str, algo: str) -> None:
    from traffic.collectives import _by_server

    if groups.size and _by_server(groups[:1], gps) is None:
        raise ConfigError(key, "hierarchical needs the same number of group members in every server", algo)


def resolve_rl_step(spec: RlStepSpec, cluster: ClusterConfig, path: str) -> RlStepPlan:
    """Validate an ``rl_step`` spec against the cluster and resolve the automatic choices."""
    gps = cluster.gpus_per_server
    model = load_model(spec.model, key=f"{path}.model")
    score_model = None
    if spec.score.enabled:
        score_model = load_model(spec.score.model, key=f"{path}.score.model") if spec.score.model else model
    if cluster.trainer_gpus < 1:
        raise ConfigError("cluster.trainer_gpus", "an rl_step needs trainer GPUs", cluster.trainer_gpus)
    if cluster.rollout_gpus < 1:
        raise ConfigError("cluster.rollout_gpus", "an rl_step needs rollout GPUs (disaggregated RL)",
                          cluster.rollout_gpus)
    # ---- trainer
    tr = spec.train
    tp_key = f"{path}.train.tp"
    try:
        parse_order(tr.order)
    except ValueError as e:
        raise ConfigError(f"{path}.train.order", str(e), tr.order) from None
    if tr.pp > model.layers:
        raise ConfigError(f"{path}.train.pp", f"more pipeline stages than the model's {model.layers} layers", tr.pp)
    per_tp = cluster.trainer_gpus // (tr.pp * tr.cp) if cluster.trainer_gpus % (tr.pp * tr.cp) == 0 else 0
    if not per_tp:
        raise ConfigError(f"{path}.train.pp", f"pp * cp = {tr.pp * tr.cp} must divide the "
                          f"{cluster.trainer_gpus} trainer GPUs", tr.pp)
    tp = tr.tp or _auto_tp(model, per_tp, gps)
    if tr.tp:
        msg = _tp_ok(tp, model)
        if msg:
            raise ConfigError(tp_key, msg, tp)
        if gps % tp and tp % gps:
            raise ConfigError(tp_key, f"must divide gpus_per_server ({gps}) or be a multiple of it", tp)
        if per_tp % tp:
            raise ConfigError(tp_key, f"tp * pp * cp = {tp * tr.pp * tr.cp} must divide the "
                              f"{cluster.trainer_gpus} trainer GPUs", tp)
    dp = per_tp // tp
    if model.kind == "dense":
        if tr.ep > 1:
            raise ConfigError(f"{path}.train.ep", f"{model.name} is dense: expert parallelism needs a MoE model", tr.ep)
        ep = 1
    elif tr.ep:
        ep = tr.ep
        if model.experts % ep:
            raise ConfigError(f"{path}.train.ep", f"must divide the model's {model.experts} experts", ep)
        if dp % ep:
            raise ConfigError(f"{path}.train.ep", f"must divide the data-parallel size {dp} "
                              f"(= trainer GPUs / (tp * pp * cp))", ep)
    else:
        ep = next(d for d in _divisors_desc(model.experts, 8) if dp % d == 0)
    for key, op, algo in ((f"{path}.train.dp_algorithm", "all_reduce" if tr.dp_collective == "all_reduce"
                           else "reduce_scatter", tr.dp_algorithm),
                          (f"{path}.train.tp_algorithm", "all_reduce", tr.tp_algorithm),
                          (f"{path}.train.ep_algorithm", "all_to_all", tr.ep_algorithm)):
        _check_algorithm(op, algo, key)
    train = TrainLayout.build(offset=0, gpus=cluster.trainer_gpus, tp=tp, pp=tr.pp, cp=tr.cp, ep=ep, order=tr.order)
    _check_group_algorithm("dp", tr.dp_algorithm, dp * tr.cp, f"{path}.train.dp_algorithm")
    if ep > 1:
        _check_group_algorithm("dp", tr.dp_algorithm, dp // ep * tr.cp, f"{path}.train.dp_algorithm")
    _check_group_algorithm("tp", tr.tp_algorithm, tp, f"{path}.train.tp_algorithm")
    if tr.dp_algorithm == "hierarchical":
        _check_hierarchical(train.dp_groups(), gps, f"{path}.train.dp_algorithm", tr.dp_algorithm)
    if tr.tp_algorithm == "hierarchical":
        _check_hierarchical(train.groups("tp"), gps, f"{path}.train.tp_algorithm", tr.tp_algorithm)
    if tr.ep_algorithm == "hierarchical" and ep > 1:
        _check_hierarchical(train.ep_groups(), gps, f"{path}.train.ep_algorithm", tr.ep_algorithm)
    micro = tr.micro_batches or (1 if tr.pp == 1 else 4 * tr.pp)
    # ---- rollout
    ro = spec.rollout
    rpath = f"{path}.rollout"
    _check_algorithm("all_to_all", ro.ep_algorithm, f"{rpath}.ep_algorithm")
    if ro.response_tokens_mean > ro.response_tokens_max:
        raise ConfigError(f"{rpath}.response_tokens_mean", f"must be <= response_tokens_max "
                          f"({ro.response_tokens_max})", ro.response_tokens_mean)
    rollout = _rollout_layout(model, spec, cluster, ro.tp, ro.dp_attention, ro.ep, ro.ffn_gpus, rpath)
    if ro.ep_algorithm == "hierarchical" and rollout.ep > 1:
        _check_hierarchical(rollout.ep_groups(), gps, f"{rpath}.ep_algorithm", ro.ep_algorithm)
    switch = None
    if ro.switch is not None:
        sw = ro.switch
        spath = f"{rpath}.switch"
        if ro.ffn_gpus:
            raise ConfigError(spath, "a parallelism switch with attention-FFN disaggregation is not supported",
                              has_value=False)
        switch = _rollout_layout(model, spec, cluster, sw.tp, sw.dp_attention, sw.ep, 0, spath)
        if rollout.replica_gpus % switch.replica_gpus:
            raise ConfigError(f"{spath}.tp", f"the new replica ({switch.replica_gpus} GPUs) must divide the old "
                              f"one ({rollout.replica_gpus} GPUs)", sw.tp)
    if score_model is not None and score_model is not model:
        _rollout_layout(score_model, spec, cluster, rollout.tp, rollout.dp_attention,
                        rollout.ep if score_model.kind == "moe" else 0, 0, f"{path}.score")
    return RlStepPlan(spec=spec, model=model, score_model=score_model, train=train, micro_batches=micro,
                      rollout=rollout, switch=switch, path=path)


def _rollout_layout(model: ModelSpec, spec: RlStepSpec, cluster: ClusterConfig, tp: int, dp_att: int, ep: int,
                    ffn: int, rpath: str) -> RolloutLayout:
    gps = cluster.gpus_per_server
    n = cluster.rollout_gpus
    if tp:
        msg = _tp_ok(tp, model)
        if msg:
            raise ConfigError(f"{rpath}.tp", msg, tp)
    else:
        tp = _auto_tp(model, n, gps)
    if model.kind == "dense" and ep > 1:
        raise ConfigError(f"{rpath}.ep", f"{model.name} is dense: expert parallelism needs a MoE model", ep)
    if not dp_att:
        dp_att = 1
        if model.kind == "moe" and not ffn:
            while (model.weight_bytes / (tp * dp_att) > 0.5 * spec.gpu.memory_bytes
                   and n % (tp * dp_att * 2) == 0):
                dp_att *= 2
    size = tp * dp_att + ffn
    if n % size:
        key = f"{rpath}.ffn_gpus" if ffn else (f"{rpath}.dp_attention" if dp_att > 1 else f"{rpath}.tp")
        raise ConfigError(key, f"a replica of {size} GPUs (tp * dp_attention + ffn_gpus) must divide the "
                          f"{n} rollout GPUs", {"tp": tp, "dp_attention": dp_att, "ffn_gpus": ffn}[key.rsplit(".", 1)[1]])
    expert_gpus = ffn or size
    if model.kind == "moe":
        ep = ep or expert_gpus
        if expert_gpus % ep:
            raise ConfigError(f"{rpath}.ep", f"must divide the {expert_gpus} GPUs holding experts in a replica", ep)
        if model.experts % ep:
            raise ConfigError(f"{rpath}.ep", f"must divide the model's {model.experts} experts", ep)
    else:
        ep = 1
    return RolloutLayout.build(offset=cluster.trainer_gpus, gpus=n, tp=tp, dp_attention=dp_att, ep=ep, ffn_gpus=ffn)


def resolve_collective(spec: CollectiveSpec, cluster: ClusterConfig, path: str) -> CollectivePlan:
    lo, hi = {"all": (0, cluster.gpus), "trainer": (0, cluster.trainer_gpus),
              "rollout": (cluster.trainer_gpus, cluster.gpus)}[spec.gpus]
    total = hi - lo
    if total < 1:
        raise ConfigError(f"{path}.gpus", "selects no GPUs in this cluster", spec.gpus)
    n = spec.group_size or total
    if total % n:
        raise ConfigError(f"{path}.group_size", f"must divide the {total} selected GPUs", spec.group_size)
    ids = np.arange(lo, hi, dtype=np.int64)
    groups = ids.reshape(-1, n) if spec.group_layout == "contiguous" else ids.reshape(n, -1).T.copy()
    op = spec.collective
    algo = spec.algorithm or ALGORITHMS[op][0]
    key = f"{path}.algorithm"
    _check_algorithm(op, algo, key)
    _check_group_algorithm(op, algo, n, key)
    if algo == "hierarchical":
        _check_hierarchical(groups, cluster.gpus_per_server, key, algo)
    if op == "broadcast" and spec.root >= n:
        raise ConfigError(f"{path}.root", f"must be a rank of the group (0..{n - 1})", spec.root)
    if op == "p2p" and spec.peer_offset % n == 0:
        raise ConfigError(f"{path}.peer_offset", f"must not be a multiple of the group size {n} "
                          "(a GPU would send to itself)", spec.peer_offset)
    flows = _estimate_flows(op, algo, groups.shape[0], n, spec.collective_stages, cluster.gpus_per_server)
    if flows > MAX_FLOWS:
        raise ConfigError(f"{path}.group_size", f"this collective would make {flows:,} flows (limit "
                          f"{MAX_FLOWS:,}); use smaller groups, 'coalesced' stages or a hierarchical algorithm", n)
    return CollectivePlan(spec=spec, groups=groups, algorithm=algo, path=path)


def _estimate_flows(op: str, algo: str, G: int, n: int, stages: str, gps: int) -> int:
    exact = stages == "exact"
    log = int(np.ceil(np.log2(max(n, 2))))
    per = {
        ("all_reduce", "ring"): n * (2 * (n - 1) if exact else 1),
        ("all_reduce", "double_binary_tree"): 4 * (n - 1),
        ("all_reduce", "halving_doubling"): 2 * n * log,
        ("all_reduce", "hierarchical"): 3 * n * (n if exact else 1),
        ("all_to_all", "direct"): n * (n - 1),
        ("all_to_all", "hierarchical"): n * (gps + n // max(1, min(gps, n))),
        ("broadcast", "tree"): n - 1,
    }.get((op, algo), n * ((n - 1) if exact else 1) if algo == "ring" else n * log)
    return G * per


def is_mapping(x: Any) -> bool:
    return isinstance(x, Mapping)
