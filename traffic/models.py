"""The model catalogue: transformer shapes from published configs, parameter counts computed from them.

Each model is one YAML file in ``traffic/data/models/`` (keys are the fields of :class:`ModelSpec`, plus an
optional ``source:`` URL of the published config it was copied from). A user adds a model by dropping a YAML
file there, by pointing ``workload.model`` at a YAML file path, or at a Hugging Face ``config.json`` (dense
Llama / Mistral / Qwen2 / Qwen3, Qwen2-MoE / Qwen3-MoE, Mixtral, DeepSeek-V2/V3 field names; see
:func:`from_hf_config`).

Parameter counts are computed from the shapes, never typed in, so they can be checked against the
published totals:

>>> m = load_model("qwen2.5-14b")
>>> m.kind, m.layers, m.hidden, round(m.params_b, 2), round(m.weight_bytes / 1e9, 1)
('dense', 48, 5120, 14.77, 29.5)
>>> round(load_model("deepseek-v3").params_b)
671
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rfabric.errors import ConfigError, InvalidArgumentError
from rfabric.parsing import bounded, choice, non_negative, parse_dataclass, read_yaml, suggest

MODELS_DIR = Path(__file__).parent / "data" / "models"

BF16_BYTES = 2

#: Largest shapes accepted, each ~16x the largest published model's (Llama-3.1-405B: 126 layers, hidden 16384,
#: ffn 53248, 128 heads; DeepSeek-V3: 256 experts; vocabularies up to ~256k; head_dim <= 256). A guard against
#: typos such as ``hidden: 10**12`` (which would otherwise end far downstream, e.g. in the memory check),
#: not a modelling limit.
MAX_DIM = {"layers": 2048, "hidden": 262_144, "ffn": 1_048_576, "vocab": 4_194_304, "heads": 2048,
           "head_dim": 4096, "experts": 4096}


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
    source: str = ""
    layers: int = bounded(gt=0, le=MAX_DIM["layers"])
    hidden: int = bounded(gt=0, le=MAX_DIM["hidden"])
    vocab: int = bounded(gt=0, le=MAX_DIM["vocab"])
    ffn: int = bounded(gt=0, le=MAX_DIM["ffn"])
    heads: int = bounded(gt=0, le=MAX_DIM["heads"])
    kv_heads: int = bounded(gt=0, le=MAX_DIM["heads"])
    head_dim: int = bounded(128, gt=0, le=MAX_DIM["head_dim"])
    qkv_bias: bool = False
    qk_norm: bool = False
    tie_embeddings: bool = False
    experts: int = bounded(0, ge=0, le=MAX_DIM["experts"])
    shared_experts: int = bounded(0, ge=0, le=MAX_DIM["experts"])
    top_k: int = non_negative(0)
    moe_ffn: int = bounded(0, ge=0, le=MAX_DIM["ffn"])
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
    return name.endswith((".yaml", ".yml", ".json")) or "/" in name or "\\" in name


def _load_file(path: str) -> ModelSpec:
    st = Path(path).stat()
    return _load_file_version(path, st.st_mtime_ns, st.st_size)  # an edited file is read again


@functools.lru_cache(maxsize=128)
def _load_file_version(path: str, mtime_ns: int, size: int) -> ModelSpec:
    if path.endswith(".json"):
        return _load_hf(path)
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
        raise ConfigError(key, "must be a model name or a path to a model YAML file or a Hugging Face config.json",
                          name)
    if _is_path(name):
        p = Path(name).expanduser()
        if not p.is_file():
            raise ConfigError(key, "no such model file", name)
        try:
            return _load_file(str(p.resolve()))
        except ConfigError as e:
            sub = e.key.removeprefix("model.")
            raise ConfigError(f"{key}({p.name}).{sub}" if e.key != "model" else key, e.message, e.value) from None
    cat = _catalogue()
    path = cat.get(name.lower())
    if path is None:
        known = available_models()
        hint = suggest(name.lower(), known)
        listing = "" if hint.startswith("known:") else f" (known: {', '.join(known)})"
        raise ConfigError(key, f"unknown model; {hint}{listing}; or give a path to a model YAML file or a Hugging "
                          "Face config.json", name)
    return _load_file(str(path))


#: ``model_type`` values of Hugging Face configs whose field names :func:`from_hf_config` reads.
HF_MODEL_TYPES = ("llama", "mistral", "qwen2", "qwen3", "qwen2_moe", "qwen3_moe", "mixtral", "deepseek_v2",
                  "deepseek_v3")

#: Largest config.json read (real ones are a few kB).
MAX_HF_CONFIG_BYTES = 1 << 20


def from_hf_config(cfg: Mapping[str, Any], *, name: str = "hf-model", source: str = "") -> ModelSpec:
    """A :class:`ModelSpec` from the fields of a Hugging Face ``config.json`` (a parsed mapping).

    Field names follow ``transformers``' configuration classes (``LlamaConfig``, ``Qwen2Config``,
    ``Qwen3MoeConfig``, ``MixtralConfig``, ``DeepseekV3Config``; https://github.com/huggingface/transformers,
    ``src/transformers/models/<family>/configuration_<family>.py``):

    * every family: ``num_hidden_layers``, ``hidden_size``, ``vocab_size``, ``intermediate_size``,
      ``num_attention_heads``, ``num_key_value_heads`` (default: heads), ``head_dim`` (default: hidden /
      heads), ``tie_word_embeddings`` (default false, as in these classes);
    * attention biases: ``qwen2`` / ``qwen2_moe`` always have Q/K/V biases; Llama-style ``attention_bias``;
      ``qwen3`` / ``qwen3_moe`` have per-head RMSNorm on Q and K;
    * experts: ``num_experts`` (Qwen), ``num_local_experts`` (Mixtral) or ``n_routed_experts`` (DeepSeek);
      ``num_experts_per_tok``; ``moe_intermediate_size`` (Mixtral: ``intermediate_size``);
      ``n_shared_experts`` (DeepSeek) or ``shared_expert_intermediate_size`` (Qwen2-MoE, in units of
      ``moe_intermediate_size``); ``first_k_dense_replace`` (DeepSeek) or leading ``mlp_only_layers`` (Qwen)
      dense layers;
    * DeepSeek MLA: ``q_lora_rank`` (null: no query compression), ``kv_lora_rank``, ``qk_nope_head_dim``,
      ``qk_rope_head_dim``, ``v_head_dim``.

    Other fields (rope, norms' epsilon, dtype, ...) do not change the shapes and are ignored. Layouts the
    model cannot represent (experts on every other layer, an MLP bias, interleaved dense layers) raise
    ``ConfigError`` naming the field, as do missing or mistyped fields.

    >>> m = from_hf_config({"model_type": "mixtral", "num_hidden_layers": 32, "hidden_size": 4096,
    ...     "intermediate_size": 14336, "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 32000,
    ...     "num_local_experts": 8, "num_experts_per_tok": 2})
    >>> m.kind, round(m.params_b, 1), round(m.active_params / 1e9, 1)   # published: 46.7 B, 12.9 B active
    ('moe', 46.7, 12.9)
    """
    if not isinstance(cfg, Mapping):
        raise ConfigError("model", "a Hugging Face config.json must hold a JSON object", type(cfg).__name__)
    if isinstance(cfg.get("text_config"), Mapping):  # multimodal wrappers keep the language model here
        cfg = {**cfg["text_config"], "model_type": cfg["text_config"].get("model_type", cfg.get("model_type"))}
    mt = cfg.get("model_type")
    if mt is not None and mt not in HF_MODEL_TYPES:
        raise ConfigError("model_type", f"not a supported Hugging Face model type; {suggest(str(mt), HF_MODEL_TYPES)}"
                          f" (supported: {', '.join(HF_MODEL_TYPES)})", mt)

    def num(key: str, default: Any = dataclasses.MISSING) -> Any:
        if key not in cfg or cfg[key] is None:
            if default is dataclasses.MISSING:
                raise ConfigError(key, "required in a Hugging Face config.json", has_value=False)
            return default
        v = cfg[key]
        if isinstance(v, bool) or not isinstance(v, int):
            raise ConfigError(key, "must be an integer", v)
        return v

    def flag(key: str, default: bool) -> bool:
        v = cfg.get(key, default)
        if not isinstance(v, bool):
            raise ConfigError(key, "must be true or false", v)
        return v

    heads = num("num_attention_heads")
    hidden = num("hidden_size")
    spec: dict[str, Any] = {
        "name": name, "source": source, "layers": num("num_hidden_layers"), "hidden": hidden,
        "vocab": num("vocab_size"), "ffn": num("intermediate_size"), "heads": heads,
        "kv_heads": num("num_key_value_heads", heads), "head_dim": num("head_dim", hidden // heads if heads else 0),
        "tie_embeddings": flag("tie_word_embeddings", False),
        "qkv_bias": mt in ("qwen2", "qwen2_moe") or flag("attention_bias", False),
        "qk_norm": mt in ("qwen3", "qwen3_moe"),
    }
    if flag("mlp_bias", False):
        raise ConfigError("mlp_bias", "MLP biases are not modelled", True)
    experts = num("n_routed_experts", 0) or num("num_local_experts", 0) or num("num_experts", 0)
    if experts:
        spec.update(kind="moe", experts=experts, top_k=num("num_experts_per_tok"),
                    moe_ffn=num("moe_intermediate_size", spec["ffn"] if mt == "mixtral" else dataclasses.MISSING))
        shared = num("n_shared_experts", 0)
        shared_ffn = num("shared_expert_intermediate_size", 0)
        if shared_ffn:
            if shared_ffn % spec["moe_ffn"]:
                raise ConfigError("shared_expert_intermediate_size", f"must be a multiple of moe_intermediate_size "
                                  f"({spec['moe_ffn']}) to be modelled as shared experts", shared_ffn)
            shared = shared_ffn // spec["moe_ffn"]
        spec["shared_experts"] = shared
        dense = num("first_k_dense_replace", 0)
        only = cfg.get("mlp_only_layers") or []
        if not isinstance(only, list) or sorted(only) != list(range(len(only))):
            raise ConfigError("mlp_only_layers", "only leading dense layers (0, 1, ..., k-1) are modelled", only)
        dense = max(dense, len(only))
        for key in ("decoder_sparse_step", "moe_layer_freq"):
            if num(key, 1) != 1:
                raise ConfigError(key, "experts on every layer after the leading dense ones are modelled, not "
                                  "every k-th layer", cfg[key])
        spec["dense_layers"] = dense
    if "kv_lora_rank" in cfg and cfg["kv_lora_rank"] is not None:
        spec.update(attention="mla", q_lora_rank=num("q_lora_rank", 0), kv_lora_rank=num("kv_lora_rank"),
                    qk_nope_head_dim=num("qk_nope_head_dim"), qk_rope_head_dim=num("qk_rope_head_dim"),
                    v_head_dim=num("v_head_dim"))
        spec["head_dim"] = spec["v_head_dim"]
    try:
        return parse_dataclass(ModelSpec, spec, "model")
    except ConfigError as e:  # name the config.json field, not ours
        field_name = e.key.removeprefix("model.")
        raise ConfigError(_HF_NAMES.get(field_name, field_name), e.message, e.value) from None


#: ModelSpec field -> the config.json field it is read from (for error messages).
_HF_NAMES = {"layers": "num_hidden_layers", "hidden": "hidden_size", "vocab": "vocab_size",
             "ffn": "intermediate_size", "heads": "num_attention_heads", "kv_heads": "num_key_value_heads",
             "experts": "num_experts", "top_k": "num_experts_per_tok", "moe_ffn": "moe_intermediate_size",
             "dense_layers": "first_k_dense_replace", "shared_experts": "n_shared_experts"}


def _load_hf(path: str) -> ModelSpec:
    """A Hugging Face ``config.json`` (strict JSON, UTF-8) as a :class:`ModelSpec` (see :func:`from_hf_config`)."""
    p = Path(path)
    raw = p.read_bytes()[: MAX_HF_CONFIG_BYTES + 1]
    if len(raw) > MAX_HF_CONFIG_BYTES:
        raise ConfigError("model", f"larger than {MAX_HF_CONFIG_BYTES:,} bytes: not a config.json", path)

    def no_constant(c: str) -> Any:
        raise InvalidArgumentError(f"{c} is not a JSON number")

    try:
        data = json.loads(raw.decode("utf-8-sig"), parse_constant=no_constant)
    except UnicodeDecodeError:
        raise ConfigError("model", "not UTF-8 text", path) from None
    except (ValueError, RecursionError) as e:
        raise ConfigError("model", f"malformed JSON: {str(e)[:120]}", path) from None
    name = p.parent.name if p.stem == "config" and p.parent.name else p.stem
    src = data.get("_name_or_path") if isinstance(data, dict) else None
    return from_hf_config(data, name=name.lower(), source=src if isinstance(src, str) and src else str(p))


def describe(model: ModelSpec) -> dict[str, Any]:
    """A one-row summary (for ``rfabric models``)."""
    return {"name": model.name, "kind": model.kind, "layers": model.layers, "hidden": model.hidden,
            "params_b": round(model.params_b, 2), "active_b": round(model.active_params / 1e9, 2),
            "weights_gb": round(model.weight_bytes / 1e9, 1), "experts": model.experts, "top_k": model.top_k}
