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

from rfabric.config import ClusterConfig
from rfabric.errors import ConfigError
from rfabric.parsing import bounded, choice, non_negative, positive
from rfabric.workload import Schedule
from traffic.collectives import ALGORITHMS, STAGES
from traffic.memory import MemoryEstimate, estimate
from traffic.models import ModelSpec, load_model
from traffic.parallelism import RolloutLayout, TrainLayout, parse_order

PHASES = ("train", "rollout", "weight_sync", "score")

#: hard limit on the flows one phase may have (the simulator's comfortable range is <= ~1e6)
MAX_FLOWS = 5_000_000


@dataclass(frozen=True, kw_only=True, slots=True)
class GpuSpec:
    """The roofline of one GPU (default: the H800 entry of :mod:`traffic.gpus`).

    ``workload.gpu`` is a catalogue name (``h800``, ``h100``, ``h200``, ``h20``, ``b200``, ``a100``) or a
    mapping (with ``name``: that entry, overridden key by key). ``peak_flops`` (YAML ``peak_tflops``) dense
    bf16; ``mfu`` the fraction reached in training and prefill (default 0.4: Llama 3 405B reaches 38--43 % MFU
    on 8k--16k H100s, arXiv 2407.21783 Table 4); ``hbm_bytes_per_s`` memory bandwidth and ``decode_mbu`` the
    fraction of it reached in decode (default 0.6: model bandwidth utilisation as defined by Databricks/MosaicML,
    "LLM Inference Performance Engineering: Best Practices", 2023 -- a modelling choice, not a fit);
    ``memory_bytes`` (YAML ``memory_gb``) HBM per GPU (trainer memory check, rollout replica sizing);
    ``nvlink_bps`` (YAML ``nvlink_gbps``) NVLink per GPU and direction, as published (the fabric's NVLink
    speed is ``cluster.nvlink_gbps``).
    """

    name: str = "h800"
    source: str = ""
    """Public source of the GPU's figures (a URL), for the record."""
    peak_flops: float = positive(989e12)
    mfu: float = bounded(0.4, gt=0.0, le=1.0)
    hbm_bytes_per_s: float = positive(3.35e12)
    decode_mbu: float = bounded(0.6, gt=0.0, le=1.0)
    memory_bytes: float = positive(80e9)
    nvlink_bps: float = positive(1600e9)


@dataclass(frozen=True, kw_only=True, slots=True)
class TrainSpec:
    """Trainer parallelism, the RL trainer's passes and gradient synchronisation (see :mod:`traffic.training`).

    Layout: ``tp``, ``pp``, ``ep`` (0 = automatic: the fastest layout that fits in memory, see
    :mod:`traffic.memory`; automatic EP x expert-TP stays within one server), ``cp``; DP is what is left, ``trainer_gpus / (tp * pp * cp)``. ``etp``: expert
    tensor parallelism (0 = ``tp``); experts are laid out by Megatron's MoE parallel folding, ``etp * ep``
    consecutive ranks of the ``tp * cp * dp`` ranks of a pipeline stage, so EP may span TP ranks.
    ``order``: rank layout, fastest-varying axis first. ``interleave``: virtual pipeline chunks per stage
    (interleaved 1F1B). ``micro_batches``: per DP rank and optimizer update (0 = enough micro-batches of at
    most ``micro_batch_tokens`` tokens, at least ``pp``).
    ``zero_stage``: 0 all-reduce of gradients; 1/2 distributed optimizer (reduce-scatter gradients,
    all-gather the updated bf16 parameters); 3 also all-gathers each layer's parameters in forward and
    backward (FSDP). Unset: 1 if ``dp_collective`` is ``reduce_scatter``, else the smallest stage that fits.
    ``recompute``: ``none`` | ``selective`` | ``full`` activation recomputation.
    RL trainer: ``logprob_passes`` forward passes before the update (unset: 1 for the old policy, plus 1
    for the reference policy when ``workload.algorithm.kl``); ``mini_batches`` optimizer updates per PPO
    epoch and ``ppo_epochs`` epochs, each update with its own gradient reduction; ``critic``: a value model
    of the same shape trained alongside (PPO; +1 forward pass and one more update per actor update).
    ``grad_reduce_dtype`` ``fp32`` (Megatron's default) or ``bf16``.
    Overlap: ``overlap_tp`` / ``overlap_ep`` (TP / EP communication hidden under compute, default off),
    ``overlap_dp`` (gradient buckets reduced while backward continues, default on).
    ``layers_per_stage``: layers lumped into one compute/communication step (0 = automatic, grows with
    the flow count at scale).

    Defaults follow verl's ``ppo_trainer.yaml`` (github.com/volcengine/verl, ``verl/trainer/config``):
    ``train_batch_size: 1024`` with ``ppo_mini_batch_size: 256`` = 4 mini-batch updates, ``ppo_epochs: 1``,
    ``ppo_max_token_len_per_gpu: 16384`` (``micro_batch_tokens``), ``enable_gradient_checkpointing: True``
    (``recompute: full``); ``grad_reduce_dtype: fp32`` is Megatron-LM's ``grad_reduce_in_fp32`` default
    (also AReaL's ``DistributedDataParallelConfig``).
    """

    tp: int = non_negative(0)
    pp: int = positive(1)
    cp: int = positive(1)
    ep: int = non_negative(0)
    etp: int = non_negative(0)
    order: str = "tp-cp-dp-pp"
    interleave: int = positive(1)
    micro_batches: int = non_negative(0)
    micro_batch_tokens: int = positive(16384)
    dp_collective: str = choice("all_reduce", choices=("all_reduce", "reduce_scatter"))
    zero_stage: int | None = None
    recompute: str = choice("full", choices=("none", "selective", "full"))
    dp_algorithm: str = "ring"
    """Algorithm of the data-parallel gradient reduction (``ring``, ``double_binary_tree``, ``halving_doubling``, ``hierarchical``; see traffic.collectives)."""
    tp_algorithm: str = "ring"
    """Algorithm of the tensor-parallel all-reduces (as ``dp_algorithm``)."""
    ep_algorithm: str = "direct"
    """Algorithm of the expert-parallel all-to-alls: ``direct`` or ``hierarchical``."""
    grad_reduce_dtype: str = choice("fp32", choices=("fp32", "bf16"))
    optimizer_s: float = non_negative(0.0)
    """Optimizer step time after the gradient reduction, before the parameter all-gather."""
    logprob_passes: int | None = None
    mini_batches: int = positive(4)
    ppo_epochs: int = positive(1)
    critic: bool = False
    overlap_tp: bool = False
    overlap_ep: bool = False
    overlap_dp: bool = True
    layers_per_stage: int = non_negative(0)


@dataclass(frozen=True, kw_only=True, slots=True)
class RlSpec:
    """The RL batch: ``prompts_per_step`` prompts, ``samples_per_prompt`` responses each, fixed whatever the
    GPU count (verl ``data.train_batch_size`` x ``rollout.n``); the rollout replicas share it. With
    ``weak_scaling: true`` every rollout replica instead generates ``rollout.batch_per_replica`` sequences.
    The default 256 x 8 = 2,048 samples is the batch the default 64-GPU rollout (8 replicas x 256) drew
    before the batch was fixed (GRPO recipes use e.g. 512 x 16, DAPO arXiv 2503.14476)."""

    prompts_per_step: int = positive(256)
    samples_per_prompt: int = positive(8)
    weak_scaling: bool = False
    """Every rollout replica generates ``rollout.batch_per_replica`` sequences (the batch grows with the GPUs) instead of the fixed batch."""

    @property
    def batch(self) -> int:
        return self.prompts_per_step * self.samples_per_prompt


@dataclass(frozen=True, kw_only=True, slots=True)
class AlgorithmSpec:
    """``kl``: a KL penalty against a frozen reference policy (one more log-prob forward pass)."""

    kl: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class SwitchSpec:
    """Mid-step parallelism switch: once ``after_finished`` of the sequences are done, every replica is
    re-shaped (e.g. TP8 -> two TP4 replicas); the new replica size must divide the old one."""

    after_finished: float = bounded(0.5, gt=0.0, lt=1.0)
    tp: int = positive()
    """Tensor parallelism of a replica after the switch."""
    dp_attention: int = positive(1)
    """Attention data-parallel groups per replica after the switch."""
    ep: int = non_negative(0)
    """Expert parallelism after the switch (0 = the whole new replica)."""


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
    """Add per-message latency (alpha) to collectives."""
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
    :mod:`traffic.generation`). Decode plays its collectives per iteration, consecutive iterations with an
    unchanged live count grouped into one stage; ``segments`` caps the stages per replica (0 = automatic:
    one per live-count group unless the phase would pass ``traffic.generation.ROLLOUT_FLOW_BUDGET`` flows
    -- large MoE replicas with a direct all-to-all across servers). ``dispatch_dtype``: ``fp8`` sends MoE dispatch in FP8 (DeepEP), combine
    stays bf16. ``max_nodes_per_token`` (0 = no limit): node-limited routing (DeepSeek-V3: 4) with the
    ``hierarchical`` EP all-to-all, which sends a token once per remote server it touches (DeepEP's NVLink
    forwarding) -- see :func:`traffic.generation.node_limited_factor`. ``migration``: request migration
    between replicas (:class:`MigrationSpec`).
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
    """Response lengths: ``lognormal`` (long-tailed, seeded) or ``fixed`` (every response ``response_tokens_mean``)."""
    length_sigma: float = non_negative(1.0)
    segments: int = non_negative(0)
    ep_algorithm: str = "direct"
    """Algorithm of the expert-parallel dispatch/combine: ``direct`` or ``hierarchical`` (once per remote server, DeepEP-style)."""
    switch: SwitchSpec | None = None
    """Optional mid-step parallelism switch (keys below)."""
    max_running: int = non_negative(0)
    dispatch_dtype: str = choice("bf16", choices=("bf16", "fp8"))
    max_nodes_per_token: int = non_negative(0)
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
    See :mod:`traffic.weight_sync`. The default reload rate (10 GB/s per engine GPU) is *fitted* (calibration),
    not measured: with it, ``gather_broadcast`` of Qwen3-30B-A3B between two 8-GPU servers with 400 Gb/s NICs
    takes 7.5 s, next to the ~7 s slime's developers report for that model (calibration.md); the network
    part alone is 1.4 s. It is *checked* (validation) on another framework and model with the constants left
    as fitted: MoonshotAI checkpoint-engine's README, DeepSeek-V3.1 (FP8) to 16 / 256 H20 GPUs, 12.22 / 13.88
    s measured, 17.05 / 17.06 s modelled (+39 % / +23 %, README calibration table). The 1 GiB bucket is
    slime's ``update_weight_buffer_size`` default (2**30 bytes), not a fit.
    """

    enabled: bool = True
    """Play the weight sync (false: the step has no sync phase)."""
    method: str = choice("p2p", choices=("p2p", "broadcast", "gather_broadcast", "checkpoint_engine"))
    """``p2p``, ``broadcast``, ``gather_broadcast`` or ``checkpoint_engine`` (see above)."""
    roots: int = non_negative(0)
    bucket_bytes: float = positive(2.0**30)
    reload_bytes_per_s: float = positive(10e9)


@dataclass(frozen=True, kw_only=True, slots=True)
class ScoreSpec:
    """Optional scoring pass (reference / reward model forward) on the rollout GPUs after generation."""

    enabled: bool = False
    """Add a scoring pass after generation."""
    model: str = ""
    """Model of the scoring pass (catalogue name or file; empty: the policy model)."""


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
    """``rl_step``."""
    schedule: Schedule = field(default_factory=lambda: Schedule(mode="one_step_off"))
    model: str = "qwen2.5-14b"
    """Model: a catalogue name (``rfabric models``), a model YAML file or a Hugging Face ``config.json``."""
    gpu: GpuSpec = field(default_factory=GpuSpec)
    train: TrainSpec = field(default_factory=TrainSpec)
    rollout: RolloutSpec = field(default_factory=RolloutSpec)
    weight_sync: WeightSyncSpec = field(default_factory=WeightSyncSpec)
    score: ScoreSpec = field(default_factory=ScoreSpec)
    rl: RlSpec = field(default_factory=RlSpec)
    algorithm: AlgorithmSpec = field(default_factory=AlgorithmSpec)
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
    """``collective``."""
    collective: str = choice("all_reduce", choices=("all_reduce", "reduce_scatter", "all_gather", "all_to_all",
                                                    "broadcast", "p2p"))
    """Which collective: ``all_reduce``, ``reduce_scatter``, ``all_gather``, ``all_to_all``, ``broadcast`` or ``p2p``."""
    algorithm: str = ""
    """Its algorithm (empty: the collective's first, e.g. ``ring`` for all-reduce; see traffic.collectives)."""
    size_bytes: float = positive(1e9)
    gpus: str = choice("all", choices=("all", "trainer", "rollout"))
    group_size: int = non_negative(0)
    group_layout: str = choice("contiguous", choices=("contiguous", "strided"))
    root: int = non_negative(0)
    peer_offset: int = positive(1)
    collective_stages: str = choice("coalesced", choices=STAGES)
    """``coalesced``: the steps of a multi-step algorithm merged into one stage per chain; ``exact``: every step its own stage."""
    step_latency_s: float = non_negative(0.0)
    """Per-step latency added back to a coalesced multi-step collective."""
    phase: str = choice("train", choices=PHASES)
    """Phase tag of the generated phase (train, rollout, weight_sync, score)."""
    repeat: int = positive(1)
    """Times the collective runs back to back."""
    compute_before_s: float = non_negative(0.0)
    """Compute before the collective's flows start."""
    compute_after_s: float = non_negative(0.0)
    """Compute after its last flow."""


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
    zero_stage: int = 0
    logprob_passes: int = 1
    memory: MemoryEstimate | None = None

    def describe(self) -> dict[str, Any]:
        t, r = self.train, self.rollout
        out: dict[str, Any] = {"model": self.model.name, "train": {"tp": t.tp, "pp": t.pp, "dp": t.dp, "cp": t.cp,
                                                                  "ep": t.ep, "etp": t.etp,
                                                                  "micro_batches": self.micro_batches,
                                                                  "zero_stage": self.zero_stage,
                                                                  "memory": self.memory.describe() if self.memory
                                                                  else None},
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
        from rfabric.parsing import suggest

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
    if ro.max_nodes_per_token and (model.kind != "moe" or ro.ep_algorithm != "hierarchical"):
        raise ConfigError(f"{rpath}.max_nodes_per_token", "node-limited routing needs a MoE model and "
                          "rollout.ep_algorithm: hierarchical (tokens forwarded once per server)", ro.max_nodes_per_token)
    ws = spec.weight_sync
    if ws.enabled and ws.method == "broadcast" and ws.roots > rollout.num_replicas:
        raise ConfigError(f"{path}.weight_sync.roots", f"more broadcast roots than the {rollout.num_replicas} "
                          "rollout replicas", ws.roots)
    switch = None
    if ro.migration is not None and ro.switch is not None:
        raise ConfigError(f"{rpath}.migration", "request migration together with a parallelism switch is not "
                          "supported; drop one of rollout.migration / rollout.switch", has_value=False)
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
    t = _resolve_trainer(spec, model, cluster, path, rollout.num_replicas)
    return RlStepPlan(spec=spec, model=model, score_model=score_model, train=t.layout, micro_batches=t.micro_batches,
                      rollout=rollout, switch=switch, path=path, zero_stage=t.zero_stage,
                      logprob_passes=t.logprob_passes, memory=t.memory)


@dataclass(frozen=True, slots=True)
class _Trainer:
    layout: TrainLayout
    micro_batches: int
    zero_stage: int
    logprob_passes: int
    memory: MemoryEstimate


def global_batch(spec: RlStepSpec, replicas: int) -> int:
    """Sequences per RL step: ``rl.prompts_per_step x rl.samples_per_prompt`` (``weak_scaling``: every
    rollout replica's ``batch_per_replica``)."""
    return replicas * spec.rollout.batch_per_replica if spec.rl.weak_scaling else spec.rl.batch


def _resolve_trainer(spec: RlStepSpec, model: ModelSpec, cluster: ClusterConfig, path: str, replicas: int) -> _Trainer:
    """The trainer layout: explicit degrees are checked, automatic ones (``tp``/``ep`` 0, ``zero_stage``
    unset) are searched for the fastest layout (by :func:`_layout_cost`) that fits in ``gpu.memory``; an
    explicit layout that does not fit raises ConfigError naming the key to change."""
    gps = cluster.gpus_per_server
    tr = spec.train
    tpath = f"{path}.train"
    tp_key = f"{tpath}.tp"
    try:
        parse_order(tr.order)
    except ValueError as e:
        raise ConfigError(f"{tpath}.order", str(e), tr.order) from None
    if tr.pp > model.layers:
        raise ConfigError(f"{tpath}.pp", f"more pipeline stages than the model's {model.layers} layers", tr.pp)
    per_tp = cluster.trainer_gpus // (tr.pp * tr.cp) if cluster.trainer_gpus % (tr.pp * tr.cp) == 0 else 0
    if not per_tp:
        raise ConfigError(f"{tpath}.pp", f"pp * cp = {tr.pp * tr.cp} must divide the "
                          f"{cluster.trainer_gpus} trainer GPUs", tr.pp)
    if tr.tp:
        msg = _tp_ok(tr.tp, model)
        if msg:
            raise ConfigError(tp_key, msg, tr.tp)
        if gps % tr.tp and tr.tp % gps:
            raise ConfigError(tp_key, f"must divide gpus_per_server ({gps}) or be a multiple of it", tr.tp)
        if per_tp % tr.tp:
            raise ConfigError(tp_key, f"tp * pp * cp = {tr.tp * tr.pp * tr.cp} must divide the "
                              f"{cluster.trainer_gpus} trainer GPUs", tr.tp)
        tps = [tr.tp]
    else:
        tps = [t for t in _divisors_desc(gps, gps) if per_tp % t == 0 and _tp_ok(t, model) is None] or [1]
    if model.kind == "dense" and tr.ep > 1:
        raise ConfigError(f"{tpath}.ep", f"{model.name} is dense: expert parallelism needs a MoE model", tr.ep)
    if model.kind == "moe" and tr.ep and model.experts % tr.ep:
        raise ConfigError(f"{tpath}.ep", f"must divide the model's {model.experts} experts", tr.ep)
    if tr.interleave > 1 and (tr.pp == 1 or model.layers % (tr.pp * tr.interleave)):
        raise ConfigError(f"{tpath}.interleave", f"needs pp > 1 and pp * interleave dividing the model's "
                          f"{model.layers} layers", tr.interleave)
    for key, op, algo in ((f"{tpath}.dp_algorithm", "all_reduce" if tr.dp_collective == "all_reduce"
                           else "reduce_scatter", tr.dp_algorithm),
                          (f"{tpath}.tp_algorithm", "all_reduce", tr.tp_algorithm),
                          (f"{tpath}.ep_algorithm", "all_to_all", tr.ep_algorithm)):
        _check_algorithm(op, algo, key)
    if tr.zero_stage is not None and tr.zero_stage not in (0, 1, 2, 3):
        raise ConfigError(f"{tpath}.zero_stage", "must be 0, 1, 2 or 3", tr.zero_stage)
    zeros = ([tr.zero_stage] if tr.zero_stage is not None else [1] if tr.dp_collective == "reduce_scatter"
             else [0, 1, 2, 3])
    lp = tr.logprob_passes if tr.logprob_passes is not None else 1 + int(spec.algorithm.kl)
    if lp < 0:
        raise ConfigError(f"{tpath}.logprob_passes", "must be >= 0", lp)
    batch = global_batch(spec, replicas)
    mean_seq = spec.rollout.prompt_tokens + spec.rollout.response_tokens_mean
    gbytes = 4 if tr.grad_reduce_dtype == "fp32" else 2
    fits: list[tuple[float, int, int, TrainLayout, int, int, MemoryEstimate]] = []
    best_miss: tuple[float, str, int] | None = None
    for tp in tps:
        dp = per_tp // tp
        stage_ranks = tp * tr.cp * dp
        if model.kind == "dense":
            combos = [(1, tp)]
        else:
            etps = [tr.etp] if tr.etp else sorted({1, tp})
            combos = []
            for etp in etps:
                if etp > stage_ranks or stage_ranks % etp:
                    continue
                # automatic EP stays inside a server (or a TP group wider than one): larger EP is explicit
                eps = [tr.ep] if tr.ep else [d for d in _divisors_desc(model.experts, model.experts)
                                              if stage_ranks % (d * etp) == 0 and d * etp <= max(gps, tp)]
                combos += [(e, etp) for e in eps if stage_ranks % (e * etp) == 0]
            if tr.ep and not combos:
                raise ConfigError(f"{tpath}.ep", f"ep * etp must divide the {stage_ranks} ranks of a pipeline "
                                  f"stage (tp * cp * dp)", tr.ep)
        for ep, etp in combos:
            lay = TrainLayout.build(offset=0, gpus=cluster.trainer_gpus, tp=tp, pp=tr.pp, cp=tr.cp, ep=ep,
                                    order=tr.order, etp=etp)
            tok_dp = batch * mean_seq / tr.mini_batches / lay.dp
            micro = tr.micro_batches or max(tr.pp, -(-int(np.ceil(tok_dp)) // tr.micro_batch_tokens))
            if tr.interleave > 1 and micro % tr.pp:
                micro += tr.pp - micro % tr.pp
            for z in zeros:
                mem = estimate(model, lay, zero_stage=z, grad_bytes=gbytes, micro_batch_tokens=tok_dp / micro,
                               mean_seq=mean_seq, recompute=tr.recompute, interleave=tr.interleave)
                if mem.total_bytes <= spec.gpu.memory_bytes:
                    fits.append((_layout_cost(spec, model, lay, z, batch * mean_seq, cluster), z, -tp, lay, micro,
                                 z, mem))
                elif best_miss is None or mem.total_bytes < best_miss[0]:
                    best_miss = (mem.total_bytes, "", z)
    if not fits:
        assert best_miss is not None
        explicit = [k for k, v in (("tp", tr.tp), ("ep", tr.ep), ("zero_stage", tr.zero_stage)) if v]
        key = f"{tpath}.{explicit[0]}" if explicit else f"{path}.gpu.memory_gb"
        val: Any = getattr(tr, explicit[0]) if explicit else spec.gpu.memory_bytes / 1e9
        raise ConfigError(key, f"the trainer does not fit in {spec.gpu.memory_bytes / 1e9:g} GB per GPU "
                          f"(at best {best_miss[0] / 1e9:.1f} GB: weights, gradients, optimizer states and "
                          f"activations; see traffic.memory); raise pp, tp, ep or zero_stage, use recompute: full "
                          f"or smaller micro_batch_tokens", val)
    fits.sort(key=lambda f: (f[0], f[1], f[2]))
    _, _, _, lay, micro, z, mem = fits[0]
    _check_pipeline_size(lay, micro, tr, tpath)
    dp = lay.dp
    _check_group_algorithm("dp", tr.dp_algorithm, dp * tr.cp, f"{tpath}.dp_algorithm")
    if lay.edp > 1:
        _check_group_algorithm("dp", tr.dp_algorithm, lay.edp, f"{tpath}.dp_algorithm")
    _check_group_algorithm("tp", tr.tp_algorithm, lay.tp, f"{tpath}.tp_algorithm")
    if tr.dp_algorithm == "hierarchical":
        _check_hierarchical(lay.dp_groups(), gps, f"{tpath}.dp_algorithm", tr.dp_algorithm)
    if tr.tp_algorithm == "hierarchical":
        _check_hierarchical(lay.groups("tp"), gps, f"{tpath}.tp_algorithm", tr.tp_algorithm)
    if tr.ep_algorithm == "hierarchical" and lay.ep > 1:
        _check_hierarchical(lay.ep_groups(), gps, f"{tpath}.ep_algorithm", tr.ep_algorithm)
    return _Trainer(layout=lay, micro_batches=micro, zero_stage=z, logprob_passes=lp, memory=mem)


def _check_pipeline_size(lay: TrainLayout, micro: int, tr: TrainSpec, tpath: str) -> None:
    """Refuse, before building it, a pipelined pass whose activation hand-offs alone pass :data:`MAX_FLOWS`:
    each micro-batch crosses ``pp * interleave - 1`` chunk boundaries forward and again backward, every rank
    of a stage (``tp * cp * dp``) sending one flow per crossing. Without pipelining micro-batches are not
    played one by one (two blocks), so they cost nothing here."""
    if lay.pp == 1:
        return
    v = tr.interleave
    flows = 2 * micro * (lay.pp * v - 1) * lay.tp * lay.cp * lay.dp
    if flows > MAX_FLOWS:
        key, val = ((f"{tpath}.micro_batches", tr.micro_batches) if tr.micro_batches
                    else (f"{tpath}.micro_batch_tokens", tr.micro_batch_tokens))
        raise ConfigError(key, f"{micro:,} micro-batches through {lay.pp} pipeline stages would make at least "
                          f"{flows:,} flows per pass (limit {MAX_FLOWS:,}); use fewer, larger micro-batches", val)


def _layout_cost(spec: RlStepSpec, model: ModelSpec, lay: TrainLayout, zero: int, tokens: float,
                 cluster: ClusterConfig) -> float:
    """Seconds of communication per GPU and RL step, summed without overlap (a ranking, not a prediction):
    TP and EP bytes over NVLink inside a server or the NIC across, DP bytes over the NIC."""
    tr = spec.train
    gps = cluster.gpus_per_server
    H, b = model.hidden, model.dtype_bytes
    passes = 2 * tr.ppo_epochs + (tr.logprob_passes if tr.logprob_passes is not None else 1 + int(spec.algorithm.kl))
    tok_gpu = tokens / (lay.dp * lay.cp)
    link = lambda n: cluster.nvlink_bps if n <= gps else cluster.nic_bps  # noqa: E731
    t = 0.0
    if lay.tp > 1:
        t += passes * 2 * model.layers / lay.pp * tok_gpu * H * b * 2 * (lay.tp - 1) / lay.tp * 8 / link(lay.tp)
    if model.kind == "moe" and lay.ep > 1:
        span = lay.ep * lay.etp
        t += (passes * 2 * model.moe_layers / lay.pp * tok_gpu / lay.tp * model.top_k * H * b * (1 - 1 / lay.ep)
              * 8 / link(span))
    expert = float(model.routed_expert_params) if model.kind == "moe" else 0.0
    gb = 4 if tr.grad_reduce_dtype == "fp32" else 2
    updates = tr.mini_batches * tr.ppo_epochs * (1.5 if zero == 3 else 1.0)
    for params, n in (((model.params - expert) / (lay.tp * lay.pp), lay.dp * lay.cp),
                      (expert / (lay.etp * lay.ep * lay.pp), lay.edp)):
        if n > 1 and params > 0:
            t += updates * params * gb * 2 * (n - 1) / n * 8 / cluster.nic_bps
    return t


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
