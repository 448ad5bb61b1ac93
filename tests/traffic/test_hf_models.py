"""Models straight from Hugging Face ``config.json`` files (issue 16).

The configs below are hand-written copies of the shape fields of the published files (the rest of each file
-- rope, norm epsilon, token ids -- does not change the parameter count). Each derived parameter count is
checked against the size its publisher states, and against the hand-made catalogue entry where one exists.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rfabric import api
from rfabric.cli import main
from rfabric.errors import ConfigError
from traffic.models import from_hf_config, load_model

# https://huggingface.co/<repo>/blob/main/config.json, shape fields only
HF_CONFIGS: dict[str, dict[str, Any]] = {
    "Llama-3.1-8B": {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 4096,
                     "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
                     "num_key_value_heads": 8, "vocab_size": 128256, "attention_bias": False, "mlp_bias": False,
                     "tie_word_embeddings": False, "rope_theta": 500000.0, "torch_dtype": "bfloat16"},
    "Qwen2.5-72B": {"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"], "hidden_size": 8192,
                    "intermediate_size": 29568, "num_hidden_layers": 80, "num_attention_heads": 64,
                    "num_key_value_heads": 8, "vocab_size": 152064, "tie_word_embeddings": False,
                    "max_window_layers": 80, "rms_norm_eps": 1e-05, "sliding_window": 131072},
    "Qwen3-30B-A3B": {"model_type": "qwen3_moe", "architectures": ["Qwen3MoeForCausalLM"], "hidden_size": 2048,
                      "intermediate_size": 6144, "num_hidden_layers": 48, "num_attention_heads": 32,
                      "num_key_value_heads": 4, "head_dim": 128, "vocab_size": 151936, "num_experts": 128,
                      "num_experts_per_tok": 8, "moe_intermediate_size": 768, "decoder_sparse_step": 1,
                      "mlp_only_layers": [], "norm_topk_prob": True, "tie_word_embeddings": False},
    "Qwen2-57B-A14B": {"model_type": "qwen2_moe", "hidden_size": 3584, "intermediate_size": 18944,
                       "moe_intermediate_size": 2560, "shared_expert_intermediate_size": 20480, "num_experts": 64,
                       "num_experts_per_tok": 8, "num_hidden_layers": 28, "num_attention_heads": 28,
                       "num_key_value_heads": 4, "vocab_size": 151936, "decoder_sparse_step": 1,
                       "tie_word_embeddings": False},
    "Mixtral-8x7B-v0.1": {"model_type": "mixtral", "architectures": ["MixtralForCausalLM"], "hidden_size": 4096,
                          "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
                          "num_key_value_heads": 8, "vocab_size": 32000, "num_local_experts": 8,
                          "num_experts_per_tok": 2, "tie_word_embeddings": False},
    "DeepSeek-V3": {"model_type": "deepseek_v3", "architectures": ["DeepseekV3ForCausalLM"], "hidden_size": 7168,
                    "intermediate_size": 18432, "moe_intermediate_size": 2048, "num_hidden_layers": 61,
                    "num_attention_heads": 128, "num_key_value_heads": 128, "vocab_size": 129280,
                    "n_routed_experts": 256, "n_shared_experts": 1, "num_experts_per_tok": 8,
                    "first_k_dense_replace": 3, "moe_layer_freq": 1, "q_lora_rank": 1536, "kv_lora_rank": 512,
                    "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "v_head_dim": 128, "n_group": 8,
                    "topk_group": 4, "num_nextn_predict_layers": 1, "tie_word_embeddings": False},
}

# (total, active) parameters in billions as published (model cards / technical reports); DeepSeek-V3: 671 B
# main model (685 B on the hub include the 14 B multi-token-prediction module, not used for generation)
PUBLISHED = {"Llama-3.1-8B": (8.03, 8.03), "Qwen2.5-72B": (72.7, 72.7), "Qwen3-30B-A3B": (30.5, 3.3),
             "Qwen2-57B-A14B": (57.4, 14.2), "Mixtral-8x7B-v0.1": (46.7, 12.9), "DeepSeek-V3": (671.0, 37.0)}
CATALOGUE = {"Qwen2.5-72B": "qwen2.5-72b", "Qwen3-30B-A3B": "qwen3-30b-a3b", "DeepSeek-V3": "deepseek-v3"}


def _write(tmp_path: Path, name: str, cfg: dict[str, Any]) -> Path:
    d = tmp_path / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.json").write_text(json.dumps(cfg))
    return d / "config.json"


@pytest.mark.parametrize("name", list(HF_CONFIGS))
def test_parameter_counts_match_the_published_sizes(tmp_path: Path, name: str) -> None:
    m = load_model(str(_write(tmp_path, name, HF_CONFIGS[name])))
    total, active = PUBLISHED[name]
    assert m.name == name.lower()
    assert m.params_b == pytest.approx(total, rel=0.02)
    assert m.active_params / 1e9 == pytest.approx(active, rel=0.02)
    assert m.kind == ("moe" if active < total else "dense")


@pytest.mark.parametrize("name", list(CATALOGUE))
def test_config_json_equals_the_catalogue_entry(tmp_path: Path, name: str) -> None:
    """Same shapes as the hand-copied YAML: every derived quantity is identical."""
    hf = load_model(str(_write(tmp_path, name, HF_CONFIGS[name])))
    cat = load_model(CATALOGUE[name])
    for attr in ("params", "active_params", "routed_expert_params", "kv_cache_bytes_per_token", "attn_dim",
                 "moe_layers", "kind", "attention", "qkv_bias", "qk_norm"):
        assert getattr(hf, attr) == getattr(cat, attr), attr


def test_family_specific_fields() -> None:
    ds = from_hf_config(HF_CONFIGS["DeepSeek-V3"])
    assert (ds.attention, ds.kv_lora_rank, ds.dense_layers, ds.experts, ds.shared_experts, ds.top_k, ds.moe_ffn) == (
        "mla", 512, 3, 256, 1, 8, 2048)
    assert ds.kv_cache_bytes_per_token == (512 + 64) * 61 * 2  # MLA caches the latent and the rope key
    q2 = from_hf_config(HF_CONFIGS["Qwen2.5-72B"])
    assert q2.qkv_bias and not q2.qk_norm and q2.head_dim == 128  # qwen2: Q/K/V biases; head_dim = hidden / heads
    q3 = from_hf_config(HF_CONFIGS["Qwen3-30B-A3B"])
    assert q3.qk_norm and not q3.qkv_bias and q3.dense_layers == 0
    mx = from_hf_config(HF_CONFIGS["Mixtral-8x7B-v0.1"])
    assert mx.moe_ffn == 14336 and mx.experts == 8  # Mixtral's experts use intermediate_size
    qm = from_hf_config(HF_CONFIGS["Qwen2-57B-A14B"])
    assert qm.shared_experts == 8  # 20480 / 2560: one shared expert of 8x the routed width
    dense_first = from_hf_config({**HF_CONFIGS["Qwen3-30B-A3B"], "mlp_only_layers": [0, 1]})
    assert dense_first.dense_layers == 2
    # q_lora_rank null (DeepSeek-V2-Lite): queries are not compressed
    lite = from_hf_config({**HF_CONFIGS["DeepSeek-V3"], "q_lora_rank": None})
    assert lite.q_lora_rank == 0 and lite.attn_params > ds.attn_params - ds.q_lora_rank * 7168


def test_a_run_uses_a_config_json(tmp_path: Path) -> None:
    path = _write(tmp_path, "Qwen3-30B-A3B", HF_CONFIGS["Qwen3-30B-A3B"])
    cfg = api.load_config(overrides={"workload.model": str(path), "cluster.trainer_gpus": 16,
                                     "cluster.rollout_gpus": 16})
    wl = api.build_workload(cfg)
    assert wl.meta["weight_bytes"] == load_model("qwen3-30b-a3b").weight_bytes


@pytest.mark.parametrize(("cfg", "key"), [
    ({k: v for k, v in HF_CONFIGS["Llama-3.1-8B"].items() if k != "hidden_size"}, "hidden_size"),
    ({**HF_CONFIGS["Llama-3.1-8B"], "model_type": "gpt2"}, "model_type"),
    ({**HF_CONFIGS["Llama-3.1-8B"], "num_hidden_layers": "32"}, "num_hidden_layers"),
    ({**HF_CONFIGS["Llama-3.1-8B"], "hidden_size": 10**12}, "hidden_size"),
    ({**HF_CONFIGS["Llama-3.1-8B"], "num_key_value_heads": 7}, "num_key_value_heads"),
    ({**HF_CONFIGS["Llama-3.1-8B"], "mlp_bias": True}, "mlp_bias"),
    ({**HF_CONFIGS["Qwen3-30B-A3B"], "decoder_sparse_step": 2}, "decoder_sparse_step"),
    ({**HF_CONFIGS["Qwen3-30B-A3B"], "mlp_only_layers": [5]}, "mlp_only_layers"),
    ({**HF_CONFIGS["Qwen3-30B-A3B"], "num_experts_per_tok": 200}, "num_experts_per_tok"),
    ({k: v for k, v in HF_CONFIGS["DeepSeek-V3"].items() if k != "v_head_dim"}, "v_head_dim"),
])
def test_bad_config_json_names_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str], cfg: dict[str, Any],
                                         key: str) -> None:
    path = _write(tmp_path, "m", cfg)
    with pytest.raises(ConfigError) as e:
        load_model(str(path), key="workload.model")
    assert e.value.key == f"workload.model(config.json).{key}"
    code = main(["traffic", "--set", f"workload.model={path}", "-q"])
    err = capsys.readouterr().err
    assert code == 2 and f"workload.model(config.json).{key}" in err and "Traceback" not in err


@pytest.mark.parametrize("text", [b'{"hidden_size": NaN}', b'{"hidden_size": Infinity}', b"{", b"[1]",
                                  b"\xff\xfe{}", b"[" * 100_000])
def test_malformed_config_json(tmp_path: Path, text: bytes) -> None:
    path = tmp_path / "config.json"
    path.write_bytes(text)
    with pytest.raises(ConfigError) as e:
        load_model(str(path), key="workload.model")
    assert e.value.key.startswith("workload.model")


def test_model_yaml_source_is_optional(tmp_path: Path) -> None:
    text = (Path(__file__).parents[2] / "traffic" / "data" / "models" / "qwen2.5-14b.yaml").read_text()
    no_source = "\n".join(line for line in text.splitlines() if not line.startswith("source:"))
    path = tmp_path / "m.yaml"
    path.write_text(no_source)
    m = load_model(str(path))
    assert m.source == "" and m.params == load_model("qwen2.5-14b").params


def test_an_edited_model_file_is_read_again(tmp_path: Path) -> None:
    path = _write(tmp_path, "m", HF_CONFIGS["Llama-3.1-8B"])
    first = load_model(str(path)).layers
    path.write_text(json.dumps({**HF_CONFIGS["Llama-3.1-8B"], "num_hidden_layers": 16, "hidden_size": 4096}))
    assert (first, load_model(str(path)).layers) == (32, 16)
