"""Every user mistake in a workload is a ConfigError naming the key, raised by parse_spec (before any work)."""

from __future__ import annotations

from typing import Any

import pytest

from rfabric.config import ClusterConfig, merge_overrides
from rfabric.errors import ConfigError
from traffic import build_workload, parse_spec

BASE = {"kind": "rl_step", "model": "qwen2.5-14b"}

CASES: list[tuple[dict[str, Any], str, str]] = [
    # (overrides on the default workload, expected key, text in the message)
    ({"train.tp": 3}, "workload.train.tp", "divide"),
    ({"train.tp": 16}, "workload.train.tp", "heads"),  # 40 heads: 16 does not divide
    ({"train.tp": 5}, "workload.train.tp", "KV heads"),
    ({"train.pp": 3}, "workload.train.pp", "divide"),
    ({"train.pp": 100}, "workload.train.pp", "layers"),
    ({"train.ep": 2}, "workload.train.ep", "dense"),
    ({"model": "qwen3-30b-a3b", "train.ep": 3}, "workload.train.ep", "experts"),
    ({"model": "qwen3-30b-a3b", "train.tp": 8, "train.ep": 16, "train.pp": 8}, "workload.train.ep", "pipeline stage"),
    ({"model": "deepseek-v3", "train.tp": 8, "train.ep": 8, "train.zero_stage": 0}, "workload.train.tp", "not fit"),
    ({"gpu": "h900"}, "workload.gpu", "did you mean 'h800'"),
    ({"gpu": {"name": "a10"}}, "workload.gpu.name", "a100"),
    ({"train.zero_stage": 4}, "workload.train.zero_stage", "0, 1, 2 or 3"),
    ({"train.interleave": 2}, "workload.train.interleave", "pp > 1"),
    ({"model": "qwen9-1t"}, "workload.model", "known"),
    ({"model": "qwen2.5-72"}, "workload.model", "did you mean 'qwen2.5-72b'"),
    ({"train.order": "tp-dp-pp"}, "workload.train.order", "once"),
    ({"train.dp_algorithm": "halving_doubl"}, "workload.train.dp_algorithm", "did you mean 'halving_doubling'"),
    ({"train.tp": 4, "train.pp": 1, "train.cp": 1, "train.dp_algorithm": "halving_doubling", "train.micro_batches": 1},
     "", ""),  # dp = 16: valid
    ({"train.tp": 8, "train.cp": 1, "train.pp": 1, "train.dp_collective": "reduce_scatter",
      "train.dp_algorithm": "hierarchical"}, "workload.train.dp_algorithm", "reduce_scatter"),
    ({"train.mini_batches": 0}, "workload.train.mini_batches", "> 0"),
    ({"train.grad_reduce_dtype": "fp16"}, "workload.train.grad_reduce_dtype", "fp32"),
    ({"train.micro_batches": -1}, "workload.train.micro_batches", ">= 0"),
    ({"rollout.prompt_tokens": -5}, "workload.rollout.prompt_tokens", "> 0"),
    ({"rollout.response_tokens_mean": 1e6}, "workload.rollout.response_tokens_mean", "response_tokens_max"),
    ({"rollout.tp": 3}, "workload.rollout.tp", "heads"),
    ({"rollout.tp": 5}, "workload.rollout.tp", "heads"),
    ({"rollout.ffn_gpus": 3}, "workload.rollout.ffn_gpus", "divide"),
    ({"rollout.switch": {"tp": 16}}, "workload.rollout.switch.tp", "heads"),
    ({"rollout.switch": {"tp": 2, "after_finished": 1.5}}, "workload.rollout.switch.after_finished", "< 1"),
    ({"rollout.switch": {"after_finished": 0.5}}, "workload.rollout.switch.tp", "required"),
    ({"rollout.lenght_sigma": 1}, "workload.rollout.lenght_sigma", "did you mean 'length_sigma'"),
    ({"gpu.mfu": 1.5}, "workload.gpu.mfu", "<= 1"),
    ({"gpu.peak_tflops": -1}, "workload.gpu.peak_tflops", "> 0"),
    ({"weight_sync.method": "multicast"}, "workload.weight_sync.method", "p2p"),
    ({"sync_every": 0}, "workload.sync_every", "> 0"),
    ({"collective_stages": "exactly"}, "workload.collective_stages", "did you mean 'exact'"),
    ({"score.enabled": True, "score.model": "nope-7b"}, "workload.score.model", "unknown model"),
    ({"kind": "rl_stp"}, "workload.kind", "did you mean 'rl_step'"),
    ({"flavour": 1}, "workload.flavour", "unknown key"),
]


@pytest.mark.parametrize(("overrides", "key", "text"), CASES)
def test_bad_workload_names_the_key(cluster: ClusterConfig, overrides: dict[str, Any], key: str, text: str) -> None:
    spec = merge_overrides(BASE, overrides)
    if not key:
        parse_spec(spec, cluster)
        return
    with pytest.raises(ConfigError) as e:
        parse_spec(spec, cluster, "workload")
    assert e.value.key == key, str(e.value)
    assert text in str(e.value)


def test_train_tp_3_key_starts_with_workload_train(cluster: ClusterConfig) -> None:
    with pytest.raises(ConfigError) as e:
        build_workload(merge_overrides(BASE, {"train.tp": 3}), cluster, seed=0)
    assert e.value.key.startswith("workload.train")


def test_cluster_without_rollout_gpus() -> None:
    with pytest.raises(ConfigError) as e:
        parse_spec(BASE, ClusterConfig(rollout_gpus=0))
    assert e.value.key == "cluster.rollout_gpus"


def test_spec_must_be_a_mapping(cluster: ClusterConfig) -> None:
    with pytest.raises(ConfigError) as e:
        parse_spec(["rl_step"], cluster)  # type: ignore[arg-type]
    assert e.value.key == "workload"
    assert parse_spec(None, cluster).model.name == "qwen2.5-14b"


COLLECTIVE_CASES: list[tuple[dict[str, Any], str, str]] = [
    ({"collective": "all_reduce", "group_size": 48}, "workload.group_size", "divide"),
    ({"collective": "all_reduce", "algorithm": "halving_doubling", "group_size": 32, "gpus": "trainer"}, "", ""),
    ({"collective": "all_reduce", "algorithm": "halving_doubling", "gpus": "all", "group_size": 0,
      "size_mb": 1}, "", ""),
    ({"collective": "all_reduce", "algorithm": "halving_doubling", "group_size": 2, "group_layout": "strided"}, "", ""),
    ({"collective": "reduce_scatter", "algorithm": "halving_doubling", "group_size": 12, "gpus": "trainer"},
     "workload.group_size", "divide"),
    ({"collective": "all_to_all", "algorithm": "ring"}, "workload.algorithm", "direct"),
    ({"collective": "all_reduce", "algorithm": "hierarchical", "group_size": 4, "group_layout": "strided"}, "", ""),
    ({"collective": "all_to_all", "size_gb": -1}, "workload.size_gb", "> 0"),
    ({"collective": "broadcast", "group_size": 8, "root": 8}, "workload.root", "rank"),
    ({"collective": "p2p", "group_size": 8, "peer_offset": 16}, "workload.peer_offset", "itself"),
    ({"collective": "all_to_all", "collective_stages": "exact"}, "", ""),
    ({"collective": "all_gather", "phase": "warmup"}, "workload.phase", "train"),
]


@pytest.mark.parametrize(("spec", "key", "text"), COLLECTIVE_CASES)
def test_bad_collective_names_the_key(cluster: ClusterConfig, spec: dict[str, Any], key: str, text: str) -> None:
    spec = {"kind": "collective", **spec}
    if not key:
        wl = build_workload(spec, cluster, seed=0)
        assert len(wl.phases[0].flows) > 0
        return
    with pytest.raises(ConfigError) as e:
        parse_spec(spec, cluster)
    assert e.value.key == key, str(e.value)
    assert text in str(e.value)


def test_collective_flow_limit() -> None:
    big = ClusterConfig(trainer_gpus=8192, rollout_gpus=8192)
    with pytest.raises(ConfigError) as e:
        parse_spec({"kind": "collective", "collective": "all_to_all"}, big)
    assert e.value.key == "workload.group_size" and "flows" in str(e.value)


def test_hierarchical_needs_even_servers() -> None:
    c = ClusterConfig(trainer_gpus=24, rollout_gpus=24)
    with pytest.raises(ConfigError) as e:
        parse_spec({"kind": "collective", "algorithm": "hierarchical", "group_size": 12}, c)
    assert e.value.key == "workload.algorithm" and "same number" in str(e.value)


def test_tp_must_fit_servers() -> None:
    c = ClusterConfig(trainer_gpus=48, rollout_gpus=48, gpus_per_server=6)
    with pytest.raises(ConfigError) as e:
        parse_spec(merge_overrides(BASE, {"train.tp": 4}), c)
    assert e.value.key == "workload.train.tp" and "gpus_per_server" in str(e.value)
