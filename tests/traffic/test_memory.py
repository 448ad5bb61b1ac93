"""Trainer memory model: published layouts that fit and that do not, and the ZeRO paper's own figures."""

from __future__ import annotations

import pytest

from rfabric.config import ClusterConfig
from rfabric.errors import ConfigError
from traffic import parse_spec
from traffic.memory import estimate
from traffic.models import load_model
from traffic.parallelism import TrainLayout


def _plan(model: str, trainer_gpus: int, train: dict, gpu: str | dict = "h800", **extra: object):
    spec = {"model": model, "gpu": gpu, "train": {"mini_batches": 1, **train}, **extra}
    return parse_spec(spec, ClusterConfig(trainer_gpus=trainer_gpus, rollout_gpus=8))


FITS = [
    # slime's Qwen3-30B-A3B recipe: TP4, EP8, expert-TP 1 in one 8 x H100 node, distributed optimizer,
    # full recomputation (calibration.md; github.com/THUDM/slime scripts/models/qwen3-30B-A3B.sh)
    ("qwen3-30b-a3b", 8, {"tp": 4, "ep": 8, "etp": 1, "zero_stage": 1, "recompute": "full"}, "h100",
     {"rollout": {"prompt_tokens": 512, "response_tokens_mean": 4096, "response_tokens_max": 8192}}),
    # DeepSeek-V3 pre-training: 2,048 H800, PP16 x EP64 (8 nodes), ZeRO-1 DP, no TP, 4K sequences
    # (arXiv 2412.19437, sec. 3.2 and 4.2)
    ("deepseek-v3", 2048, {"tp": 1, "pp": 16, "ep": 64, "etp": 1, "zero_stage": 1, "recompute": "full",
                           "micro_batch_tokens": 4096, "micro_batches": 16}, "h800",
     {"rollout": {"prompt_tokens": 96, "response_tokens_mean": 4000, "length_distribution": "fixed"}}),
    # Llama 3 405B: 8,192 H100, TP8 x PP16 x DP64, 8K sequences, FSDP-sharded optimizer states and
    # gradients (arXiv 2407.21783, sec. 3.3.2 and Table 4)
    ("llama-3.1-405b", 8192, {"tp": 8, "pp": 16, "zero_stage": 2, "recompute": "selective",
                              "micro_batch_tokens": 8192, "micro_batches": 16}, "h100",
     {"rollout": {"prompt_tokens": 192, "response_tokens_mean": 8000, "length_distribution": "fixed"},
      "rl": {"prompts_per_step": 1024, "samples_per_prompt": 1}}),
]


@pytest.mark.parametrize("model,gpus,train,gpu,extra", FITS, ids=[f[0] for f in FITS])
def test_published_layouts_fit(model: str, gpus: int, train: dict, gpu: str, extra: dict) -> None:
    plan = _plan(model, gpus, train, gpu, **extra)
    mem = plan.memory
    assert mem is not None and 0 < mem.total_bytes <= plan.spec.gpu.memory_bytes
    assert plan.train.tp == train["tp"] and plan.zero_stage == train["zero_stage"]


def test_deepseek_v3_tp8_ep8_pp1_on_512_gpus_does_not_fit() -> None:
    # the layout of issue #18: expert weights alone are 654 B / 64 = 10.2 B parameters per GPU
    with pytest.raises(ConfigError) as e:
        _plan("deepseek-v3", 512, {"tp": 8, "ep": 8, "zero_stage": 1})
    assert e.value.key == "workload.train.tp" and "does not fit in 80 GB" in e.value.message


def test_zero_paper_7_5b_on_64_v100_without_zero_does_not_fit() -> None:
    """ZeRO (arXiv 1910.02054) Figure 1: 7.5 B parameters, 64-way DP, mixed-precision Adam: 120 GB per GPU
    without ZeRO (does not fit a 32 GB V100), 31.4 GB with ZeRO-1, 16.6 GB with ZeRO-2, 1.9 GB with ZeRO-3."""
    m = load_model("qwen2.5-14b")
    lay = TrainLayout.build(offset=0, gpus=64, tp=1, pp=1, cp=1, ep=1)
    psi = m.params
    states = [estimate(m, lay, zero_stage=z, grad_bytes=2, micro_batch_tokens=1, mean_seq=1, recompute="full")
              for z in range(4)]
    per = [s.weights_bytes + s.grads_bytes + s.optimizer_bytes for s in states]
    paper = [120.0, 31.4, 16.6, 1.9]  # GB at psi = 7.5e9
    for got, gb in zip(per, paper, strict=True):
        assert got / psi * 7.5e9 / 1e9 == pytest.approx(gb, abs=0.06)
    with pytest.raises(ConfigError) as e:
        _plan("qwen2.5-14b", 64, {"tp": 1, "zero_stage": 0, "grad_reduce_dtype": "bf16"},
              {"name": "a100", "memory_gb": 32})
    assert "does not fit" in e.value.message


def test_automatic_layout_fits_and_prefers_the_fastest() -> None:
    plan = _plan("qwen2.5-72b", 64, {})
    assert plan.memory is not None and plan.memory.total_bytes <= 80e9
    # Qwen3-30B-A3B on one node: EP inside the server (folded over TP ranks)
    plan = _plan("qwen3-30b-a3b", 8, {})
    assert plan.train.ep * plan.train.etp <= 8
