"""Trainer memory per GPU: weights, gradients, optimizer states by ZeRO stage, activations with recompute.

All figures are bytes on the most loaded GPU (pipeline stage 0, which holds the most in-flight
micro-batches under 1F1B). Sources of each term:

* Mixed-precision Adam keeps bf16 weights (2 B/param), gradients and fp32 master weights, momentum and
  variance (12 B/param): 16 B/param with bf16 gradients (Rajbhandari et al., "ZeRO", arXiv 1910.02054,
  sec. 3.1). Megatron keeps the gradient buffer in fp32 (``main_grad``) unless gradients are reduced in
  bf16 (``grad_reduce_in_fp32``), so 4 B/param here with ``grad_reduce_dtype: fp32``. ZeRO stage 1 shards
  the optimizer states over the data-parallel ranks, stage 2 also the gradients, stage 3 also the weights
  (ZeRO sec. 5).
* Activations of one transformer layer and micro-batch of ``s*b`` tokens (Korthikanti et al., "Reducing
  Activation Recomputation in Large Transformer Models", arXiv 2205.05198, eq. 2 and sec. 4.2-4.3), with
  tensor + sequence parallelism over ``t`` ranks: ``34 s b h / t`` bytes when attention scores are not
  stored (selective recomputation, or FlashAttention); ``s b h (34 + 5 a s / h) / t`` without any
  recomputation (``a`` heads, ``s`` the mean sequence length); full recomputation stores only each layer's
  input, ``2 s b h / t``. Context parallelism divides ``s b`` by ``cp``.
* 1F1B keeps at most ``pp`` micro-batches in flight on stage 0, i.e. activations of ``L`` layers in all
  (Narayanan et al., "Efficient Large-Scale Language Model Training on GPU Clusters Using Megatron-LM",
  arXiv 2104.04473, sec. 2.2.1); interleaving with ``v`` chunks multiplies that by ``1 + (p-1)/(p v)``
  (Korthikanti et al. sec. 4.2.3).
* The output logits of a micro-batch in fp32, vocabulary-parallel over TP: ``4 s b V / t``.

MoE expert MLPs are counted as the dense layer's activations (a simplification: routed tokens x top-k
x expert width is of the same order as a dense MLP's for the catalogue models).
"""

from __future__ import annotations

from dataclasses import dataclass

from traffic.models import ModelSpec
from traffic.parallelism import TrainLayout

#: bytes per parameter of mixed-precision Adam's fp32 master weights, momentum and variance (ZeRO sec. 3.1)
OPTIMIZER_BYTES_PER_PARAM = 12
#: Korthikanti et al. eq. 2: activation bytes per token and hidden unit of one layer, scores not stored
ACT_BYTES_PER_TOKEN_HIDDEN = 34
#: ... and the attention-score term's coefficient (5 a s / h) without recomputation
ACT_SCORE_COEFF = 5


@dataclass(frozen=True, slots=True)
class MemoryEstimate:
    """Bytes per GPU (pipeline stage 0) by kind; ``total_bytes`` their sum."""

    weights_bytes: float
    grads_bytes: float
    optimizer_bytes: float
    activations_bytes: float

    @property
    def total_bytes(self) -> float:
        return self.weights_bytes + self.grads_bytes + self.optimizer_bytes + self.activations_bytes

    def describe(self) -> dict[str, float]:
        return {"weights_gb": round(self.weights_bytes / 1e9, 2), "grads_gb": round(self.grads_bytes / 1e9, 2),
                "optimizer_gb": round(self.optimizer_bytes / 1e9, 2),
                "activations_gb": round(self.activations_bytes / 1e9, 2), "total_gb": round(self.total_bytes / 1e9, 2)}


def params_per_gpu(model: ModelSpec, lay: TrainLayout) -> tuple[float, float]:
    """(dense, expert) parameters one GPU holds before ZeRO-3 sharding: dense weights split over TP and
    PP, routed experts over expert-TP, EP and PP."""
    expert = float(model.routed_expert_params) if model.kind == "moe" else 0.0
    dense = float(model.params) - expert
    return dense / (lay.tp * lay.pp), expert / (lay.etp * lay.ep * lay.pp)


def estimate(model: ModelSpec, lay: TrainLayout, *, zero_stage: int, grad_bytes: int, micro_batch_tokens: float,
             mean_seq: float, recompute: str, interleave: int = 1) -> MemoryEstimate:
    """Per-GPU memory of training ``model`` on ``lay``.

    ``micro_batch_tokens``: tokens of one micro-batch of one data-parallel rank (all its CP ranks);
    ``mean_seq``: mean sequence length (for the attention-score term); ``grad_bytes``: 4 (fp32) or 2.
    """
    dense, expert = params_per_gpu(model, lay)
    dpd, dpe = lay.dp * lay.cp, lay.edp  # ranks sharing the dense / the expert weights
    w = 2.0 * (dense + expert)
    g = float(grad_bytes) * (dense + expert)
    o = OPTIMIZER_BYTES_PER_PARAM * (dense + expert)
    if zero_stage >= 1:
        o = OPTIMIZER_BYTES_PER_PARAM * (dense / dpd + expert / dpe)
    if zero_stage >= 2:
        g = float(grad_bytes) * (dense / dpd + expert / dpe)
    if zero_stage >= 3:
        w = 2.0 * (dense / dpd + expert / dpe)
    sb = micro_batch_tokens / lay.cp
    h = model.hidden
    if recompute == "full":
        per_layer = 2.0 * sb * h / lay.tp
    elif recompute == "selective":
        per_layer = ACT_BYTES_PER_TOKEN_HIDDEN * sb * h / lay.tp
    else:
        per_layer = sb * h * (ACT_BYTES_PER_TOKEN_HIDDEN + ACT_SCORE_COEFF * model.heads * mean_seq / lay.cp / h) / lay.tp
    in_flight = 1.0 + (lay.pp - 1) / (lay.pp * interleave) if interleave > 1 else 1.0
    act = per_layer * model.layers * in_flight if lay.pp > 1 else per_layer * model.layers
    act += 4.0 * sb * model.vocab / lay.tp
    return MemoryEstimate(weights_bytes=w, grads_bytes=g, optimizer_bytes=o, activations_bytes=act)
