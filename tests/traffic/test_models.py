"""The model catalogue: shapes from published configs, parameter counts computed from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from rfabric.errors import ConfigError
from traffic.models import MODELS_DIR, ModelSpec, available_models, load_model

# published totals (model cards): billions of parameters; bf16 sizes from the design notes
PUBLISHED_B = {"qwen2.5-14b": 14.7, "qwen2.5-32b": 32.5, "qwen2.5-72b": 72.7, "qwen3-30b-a3b": 30.5,
               "qwen3-235b-a22b": 235.0, "deepseek-v3": 671.0}
ACTIVE_B = {"qwen3-30b-a3b": 3.3, "qwen3-235b-a22b": 22.0}


def test_catalogue_has_the_required_models() -> None:
    assert set(PUBLISHED_B) <= set(available_models())


@pytest.mark.parametrize(("name", "gb"), [("qwen2.5-14b", 29.5), ("qwen2.5-32b", 65.5), ("qwen2.5-72b", 145.4)])
def test_bf16_sizes(name: str, gb: float) -> None:
    assert load_model(name).weight_bytes / 1e9 == pytest.approx(gb, rel=0.01)


@pytest.mark.parametrize("name", sorted(PUBLISHED_B))
def test_parameter_counts_match_published(name: str) -> None:
    m = load_model(name)
    assert m.params_b == pytest.approx(PUBLISHED_B[name], rel=0.015)
    assert m.source.startswith("https://huggingface.co/")
    assert m.weight_bytes == 2 * m.params


@pytest.mark.parametrize("name", sorted(ACTIVE_B))
def test_active_parameters_of_moe(name: str) -> None:
    m = load_model(name)
    assert m.active_params / 1e9 == pytest.approx(ACTIVE_B[name], rel=0.04)
    assert m.kind == "moe" and m.moe_layers == m.layers


def test_hand_computed_qwen25_14b_layer() -> None:
    m = load_model("qwen2.5-14b")
    attn = 5120 * 5120 + 5120 + 2 * (5120 * 1024 + 1024) + 5120 * 5120
    assert m.attn_params == attn
    per_layer = attn + 3 * 5120 * 13824 + 2 * 5120
    assert m.params == 48 * per_layer + 2 * 152064 * 5120 + 5120


def test_deepseek_v3_shapes() -> None:
    m = load_model("deepseek-v3")
    assert (m.layers, m.dense_layers, m.moe_layers, m.experts, m.top_k, m.shared_experts) == (61, 3, 58, 256, 8, 1)
    assert m.attention == "mla"
    assert m.kv_cache_bytes_per_token == (512 + 64) * 61 * 2


def test_case_insensitive_and_spec_fields() -> None:
    m = load_model("Qwen2.5-72B")
    for attr in ("name", "kind", "layers", "hidden", "params_b", "ffn", "heads", "kv_heads", "experts", "top_k",
                 "vocab", "weight_bytes"):
        assert hasattr(m, attr)
    with pytest.raises(AttributeError):
        m.layers = 3  # type: ignore[misc]


def test_unknown_model_names_key_and_suggests() -> None:
    with pytest.raises(ConfigError) as e:
        load_model("qwen2.5-14", key="workload.model")
    assert e.value.key == "workload.model"
    assert "did you mean 'qwen2.5-14b'" in str(e.value)
    with pytest.raises(ConfigError) as e:
        load_model("qwen9-1t", key="workload.model")
    assert "qwen2.5-72b" in str(e.value)  # lists the known ones


def test_model_from_a_yaml_path(tmp_path: Path) -> None:
    text = (MODELS_DIR / "qwen2.5-14b.yaml").read_text().replace("name: qwen2.5-14b", "name: my-14b")
    text = text.replace("layers: 48", "layers: 24")
    p = tmp_path / "mine.yaml"
    p.write_text(text)
    m = load_model(str(p))
    assert m.name == "my-14b" and m.layers == 24
    assert m.params < load_model("qwen2.5-14b").params


def test_bad_model_file_names_the_key(tmp_path: Path) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text("name: x\nkind: moe\nsource: here\nlayers: 4\nhidden: 64\nvocab: 10\nffn: 8\nheads: 4\n"
                 "kv_heads: 4\nexperts: 8\ntop_k: 9\nmoe_ffn: 8\n")
    with pytest.raises(ConfigError) as e:
        load_model(str(p), key="workload.model")
    assert e.value.key.startswith("workload.model") and "top_k" in e.value.key
    p.write_text("name: x\nsource: here\nlayers: 4\nhidden: 64\nvocab: 10\nffn: 8\nheads: 4\nkv_head: 4\n")
    with pytest.raises(ConfigError, match="kv_heads"):
        load_model(str(p))
    with pytest.raises(ConfigError, match="no such model file"):
        load_model(str(tmp_path / "missing.yaml"))


def test_negative_sizes_rejected() -> None:
    from rfabric.config import parse_dataclass

    with pytest.raises(ConfigError) as e:
        parse_dataclass(ModelSpec, {"name": "x", "source": "s", "layers": -1, "hidden": 8, "vocab": 8, "ffn": 8,
                                    "heads": 1, "kv_heads": 1}, "model")
    assert e.value.key == "model.layers"
