"""Issue #18's 72B case: the DP gradient tail must show on an oversubscribed fabric whatever the NVLink speed
(the old coarse model hid it behind a serialised NVLink TP tail)."""

from __future__ import annotations

import pytest

import topologies
from rfabric.config import ClusterConfig
from rfabric.sim import simulate
from rfabric.workload import Workload
from traffic import build_workload


def _train_time(nvlink_bps: float, oversubscription: float) -> float:
    cl = ClusterConfig(trainer_gpus=64, rollout_gpus=64, nic_bps=100e9, nvlink_bps=nvlink_bps)
    wl = build_workload({"model": "qwen2.5-72b", "train": {"tp": 8, "zero_stage": 1}}, cl, seed=0)
    ph = wl.phase("train")
    one = Workload(name="train", num_gpus=wl.num_gpus, phases=(ph,), trainer_gpus=wl.trainer_gpus,
                   rollout_gpus=wl.rollout_gpus)
    kw = {"switch_radix": 16}
    if oversubscription > 1:
        kw["oversubscription"] = oversubscription
    return simulate(topologies.build("fat_tree", kw, cl), one, None).iteration_time_s


@pytest.mark.parametrize("nvlink_bps", [3200e9, 1e15])
def test_72b_dp_tail_shows_on_4to1_fat_tree_at_100g(nvlink_bps: float) -> None:
    full, thin = _train_time(nvlink_bps, 1), _train_time(nvlink_bps, 4)
    assert thin > full * 1.05  # the gradient reduce-scatter / all-gather tail crosses the 4:1 aggregation


def test_72b_dp_tail_does_not_depend_on_nvlink() -> None:
    slow = _train_time(3200e9, 4) - _train_time(3200e9, 1)
    fast = _train_time(1e15, 4) - _train_time(1e15, 1)
    assert slow == pytest.approx(fast, rel=0.02)
