"""The model catalogue: transformer shapes from published configs, parameter counts computed from them.

Each model is one YAML file in ``traffic/data/models/`` (keys are the fields of :class:`ModelSpec`, plus a
``source:`` URL of the published config it was copied from). A user adds a model by dropping a YAML file
there, or by pointing ``workload.model`` at a YAML file path.

Parameter counts are computed from the shapes, never typed in, so they can be checked against the
published totals:

>>> m = load_model("qwen2.5-14b")
>>> m.kind, m.layers, m.hidden, round(m.params_b, 2), round(m.weight_bytes / 1e9, 1)
('dense', 48, 5120, 14.77, 29.5)
>>> round(load_model("deepseek-v3").params_b)
671
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rfabric.config import bounded, choice, non_negative, parse_dataclass, positive, read_yaml, suggest
from rfabric.errors import ConfigError

MODELS_DIR = Path(__file__).parent / "data" / "models"

BF16_BYTES = 2


@dataclass(frozen=True, kw_only=True, slots=True)
class ModelSpec:
    """A decoder-only transformer (dense or mixture-of-experts) as in its published ``config.json``.

    Attributes
    ----------
    name, kind, source : str
        Catalogue name, ``"dense"`` or ``"moe"``, URL of the published config.
    layers, hidden, vocab : int
        ``num_hidden_layers``, ``hidden_size``, ``vocab_size``.
    ffn : int
        ``intermediate_size`` of a dense (SwiGLU) MLP.
    heads, kv_heads, head_dim : int
        Attention heads, KV heads (GQA) and head dimension.
    qkv_bias, qk_norm, tie_embeddings : bool
        Bias on Q/K/V projections (Qwen2.5), RMSNorm on Q and K per head (Qwen3), shared input/output
        embedding.
    experts, shared_experts, top_k, moe_ffn, dense_layers : int
        MoE only: routed experts, always-on shared experts, experts per token, expert intermediate size,
        and how many leading layers keep a dense MLP (DeepSeek-V3: 3).
    attention : str
        ``"gqa"`` (grouped-query) or ``"mla"`` (DeepSeek multi-head latent attention, which uses
        ``q_lora_rank``, ``kv_lora_rank``, ``qk_nope_head_dim``, ``qk_rope_head_dim``, ``v_head_dim``).
    dtype_bytes : int
        Bytes per weight as exchanged between trainer and rollout (2: bf16).
    """

    name: str
    kind: str = choice("dense", choices=("dense", "moe"))
    source: str
    layers: int = positive()
    hidden: int = positive()
    vocab: int = positive()
    ffn: int = positive()
    heads: int = positive()
    kv_heads: int = positive()
    head_dim: int = positive(128)
    qkv_bias: bool = False
    qk_norm: bool = False
    tie_embeddings: bool = False
    experts: int = non_negative(0)
    shared_experts: int = non_negative(0)
    top_k: int = non_negative(0)
    moe_ffn: int = non_negative(0)
    dense_layers: int = non_negative(0)
    attention: str = choice("gqa", choices=("gqa", "mla"))
    q_lora_rank: int = non_negative(0)
    kv_lora_rank: int = non_negative(0)
    qk_nope_head_dim: int = non_negative(0)
    qk_rope_head_dim: int = non_negative(0)
    v_head_dim: int = non_negative(0)
    dtype_bytes: int = bounded(BF16_BYTES, ge=1, le=8)

    def __post_init__(self) -> None:
        if self.heads % self.kv_heads:
            raise ConfigError("kv_heads", f"must divide heads ({self.heads})", self.kv_heads)
        if self.kind == "moe":
            if self.experts < 1:
                raise ConfigError("experts", "a 'moe' model needs experts >= 1", self.experts)
            if not 1 <= self.top_k <= self.experts:
                raise ConfigError("top_k", f"must be in 1..experts ({self.experts})", self.top_k)
            if self.moe_ffn < 1:
                raise ConfigError("moe_ffn", "a 'moe' model needs the expert intermediate size", self.moe_ffn)
            if self.dense_layers >= self.layers:
                raise ConfigError("dense_layers", f"must be < layers ({self.layers})", self.dense_layers)
        elif self.experts or self.top_k:
            raise ConfigError("kind", "a model with experts must have kind 'moe'", self.kind)
        if self.attention == "mla" and not (self.kv_lora_rank and self.qk_nope_head_dim and self.qk_rope_head_dim
                                            and self.v_head_dim):
            raise ConfigError("attention", "'mla' needs kv_lora_rank, qk_nope_head_dim, qk_rope_head_dim and "
                              "v_head_dim", self.attention)

    # ---- shapes ------------------------------------------------------------------------------
    @property
    def moe_layers(self) -> int:
        """Layers with a routed-expert MLP."""
        return self.layers - self.dense_layers if self.kind == "moe" else 0

    @property
    def attn_params(self) -> int:
        """Parameters of one attention block (projections, biases, per-head norms)."""
        h = self.hidden
        if self.attention == "mla":
            qk_head = self.qk_nope_head_dim + self.qk_rope_head_dim
            if self.q_lora_rank:
                q = h * self.q_lora_rank + self.q_lora_rank + self.q_lora_rank * self.heads * qk_head
            else:
                q = h * self.heads * qk_head
            kv = (h * (self.kv_lora_rank + self.qk_rope_head_dim) + self.kv_lora_rank
                  + self.kv_lora_rank * self.heads * (self.qk_nope_head_dim + self.v_head_dim))
            o = self.heads * self.v_head_dim * h
            return q + kv + o
        q_dim = self.heads * self.head_dim
        kv_dim = self.kv_heads * self.head_dim
        p = h * q_dim + 2 * h * kv_dim + q_dim * h
        if self.qkv_bias:
            p += q_dim + 2 * kv_dim
        if self.qk_norm:
            p += 2 * self.head_dim
        return p

    @property
    def dense_mlp_params(self) -> int:
        return 3 * self.hidden * self.ffn

    @property
    def expert_params_per_expert(self) -> int:
        return 3 * self.hidden * self.moe_ffn

    @property
    def routed_expert_params(self) -> int:
        """All routed-expert weights of the model (what expert parallelism shards)."""
        return self.moe_layers * self.experts * self.expert_params_per_expert

    @property
    def embedding_params(self) -> int:
        return self.vocab * self.hidden * (1 if self.tie_embeddings else 2)

    @property
    def params(self) -> int:
        """Total parameters (embeddings, every layer, final norm)."""
        per_layer_common = self.attn_params + 2 * self.hidden
        moe_mlp = (self.experts + self.shared_experts) * self.expert_params_per_expert + self.hidden * self.experts
        if self.attention == "mla" and self.kind == "moe":
            moe_mlp += self.experts  # e_score_correction_bias of the DeepSeek-V3 router
        dense = self.layers - self.moe_layers
        return (self.embedding_params + self.hidden + self.layers * per_layer_common
                + dense * self.dense_mlp_params + self.moe_layers * moe_mlp)

    @property
    def active_params(self) -> int:
        """Parameters touched per token (top-k routed + shared experts instead of all experts)."""
        inactive = self.moe_layers * (self.experts - self.top_k) * self.expert_params_per_expert
        return self.params - inactive

    @property
    def dense_params(self) -> int:
        """Parameters that are not routed experts (replicated across expert-parallel ranks)."""
        return self.params - self.routed_expert_params

    @property
    def params_b(self) -> float:
        return self.params / 1e9

    @property
    def weight_bytes(self) -> float:
        """Bytes of the whole model in ``dtype_bytes`` (bf16): what a weight sync delivers per replica."""
        return float(self.params * self.dtype_bytes)

    @property
    def kv_cache_bytes_per_token(self) -> float:
        """KV-cache bytes one token adds over all layers (MLA caches the latent and the rope key)."""
        if self.attention == "mla":
            per_layer = self.kv_lora_rank + self.qk_rope_head_dim
        else:
            per_layer = 2 * self.kv_heads * self.head_dim
        return float(per_layer * self.layers * self.dtype_bytes)

    @property
    def attn_dim(self) -> int:
        """Width of the attention scores' contraction (query head dim x heads) for FLOP counts."""
        if self.attention == "mla":
            return self.heads * (self.qk_nope_head_dim + self.qk_rope_head_dim)
        return self.heads * self.head_dim

    def flops_per_token(self, context_tokens: float, *, training: bool) -> float:
        """Matmul FLOPs for one token attending to ``context_tokens`` keys: ``2 x active params`` plus, per
        layer, ``2 d`` for QK^T and ``2 d`` for AV per key (``d`` = :attr:`attn_dim`), i.e. ``4 L d t``
        (Kaplan et al. 2020, arXiv 2001.08361, Table 1: ``2 n_layer n_ctx d_attn`` per direction pair).
        For a batch, ``context_tokens`` is the token-weighted mean position ``E[S^2] / (2 E[S])``
        (:func:`traffic.training.token_weighted_position`). x3 for training (forward + backward)."""
        fwd = 2.0 * self.active_params + 4.0 * self.layers * self.attn_dim * context_tokens
        return 3.0 * fwd if training else fwd


@functools.cache
def _catalogue() -> dict[str, Path]:
    return {p.stem.lower(): p for p in sorted(MODELS_DIR.glob("*.yaml"))}


def available_models() -> list[str]:
    """Names of the models shipped in ``traffic/data/models`` (sorted)."""
    return sorted(_catalogue())


def _is_path(name: str) -> bool:
    return name.endswith((".yaml", ".yml")) or "/" in name or "\\" in name


@functools.cache
def _load_file(path: str) -> ModelSpec:
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError("model", "a model file must hold a mapping of config keys", path)
    data = dict(data)
    data.setdefault("name", Path(path).stem)
    return parse_dataclass(ModelSpec, data, "model")


def load_model(name: str, key: str = "model") -> ModelSpec:
    """The catalogue model ``name`` (case-insensitive), or the YAML file at path ``name``.

    Unknown names raise :class:`ConfigError` on ``key`` with a did-you-mean and the known names.
    """
    if not isinstance(name, str) or not name:
        raise ConfigError(key, "must be a model name or a path to a model YAML file", name)
    if _is_path(name):
        p = Path(name).expanduser()
        if not p.is_file():
            raise ConfigError(key, "no such model file", name)
        try:
            return _load_file(str(p.resolve()))
        except ConfigError as e:
            raise ConfigError(f"{key}({p.name}).{e.key}" if e.key != "model" else key, e.message, e.value) from None
    cat = _catalogue()
    path = cat.get(name.lower())
    if path is None:
        known = available_models()
        hint = suggest(name.lower(), known)
        listing = "" if hint.startswith("known:") else f" (known: {', '.join(known)})"
        raise ConfigError(key, f"unknown model; {hint}{listing}; or give a path to a model YAML file", name)
    return _load_file(str(path))


def describe(model: ModelSpec) -> dict[str, Any]:
    """A one-row summary (for ``rfabric models``)."""
    return {"name": model.name, "kind": model.kind, "layers": model.layers, "hidden": model.hidden,
            "params_b": round(model.params_b, 2), "active_b": round(model.active_params / 1e9, 2),
            "weights_gb": round(model.weight_bytes / 1e9, 1), "experts": model.experts, "top_k": model.top_k}
