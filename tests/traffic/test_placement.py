"""cluster.placement: logical trainer/rollout servers onto physical server slots."""

from __future__ import annotations

import numpy as np
import pytest

import traffic
from rfabric.config import ClusterConfig, parse_dataclass
from rfabric.errors import ConfigError


def test_contiguous_is_identity_and_interleaved_alternates() -> None:
    c = ClusterConfig(trainer_gpus=16, rollout_gpus=16, gpus_per_server=8)
    assert c.server_slots().tolist() == [0, 1, 2, 3]
    i = ClusterConfig(trainer_gpus=16, rollout_gpus=16, gpus_per_server=8, placement="interleaved")
    assert i.server_slots().tolist() == [1, 3, 0, 2]  # trainer servers in slots 1 and 3
    # uneven split: 3 trainer servers spread evenly over 8 slots (Bresenham)
    u = ClusterConfig(trainer_gpus=24, rollout_gpus=40, gpus_per_server=8, placement="interleaved")
    assert sorted(u.server_slots()[:3].tolist()) == [2, 5, 7]
    g = i.gpu_placement()
    assert g[8:16].tolist() == list(range(24, 32))  # whole servers move


@pytest.mark.parametrize("fraction", [0.0, 0.25, 1.0])
def test_fragmented_is_a_seeded_permutation(fraction: float) -> None:
    c = ClusterConfig(trainer_gpus=64, rollout_gpus=64, placement="fragmented", placement_fraction=fraction,
                      placement_seed=3)
    s = c.server_slots()
    assert sorted(s.tolist()) == list(range(16))
    assert int((s != np.arange(16)).sum()) <= round(fraction * 16)
    assert s.tolist() == ClusterConfig(trainer_gpus=64, rollout_gpus=64, placement="fragmented",
                                       placement_fraction=fraction, placement_seed=3).server_slots().tolist()
    if fraction == 1.0:
        assert s.tolist() != list(range(16))


def test_placed_workload_keeps_bytes_and_moves_flows() -> None:
    spec = {"kind": "rl_step", "model": "qwen2.5-14b"}
    base = traffic.build_workload(spec, ClusterConfig(), seed=0)
    cl = ClusterConfig(placement="interleaved")
    placed = traffic.build_workload(spec, cl, seed=0)
    gmap = cl.gpu_placement()
    for a, b in zip(base.phases, placed.phases, strict=True):
        assert b.flows.total_bytes == a.flows.total_bytes
        assert np.array_equal(b.flows.src, gmap[a.flows.src]) and np.array_equal(b.flows.dst, gmap[a.flows.dst])
    assert placed.meta["placement"]["mode"] == "interleaved"


def test_bad_placement_names_the_key() -> None:
    with pytest.raises(ConfigError, match="placement"):
        parse_dataclass(ClusterConfig, {"placement": "scattered"}, "cluster")
    with pytest.raises(ConfigError, match="placement_fraction"):
        parse_dataclass(ClusterConfig, {"placement_fraction": 1.5}, "cluster")
