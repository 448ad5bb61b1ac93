"""Small canonical fixtures for the traffic tests."""

from __future__ import annotations

import pytest

from rfabric.config import ClusterConfig


@pytest.fixture
def cluster() -> ClusterConfig:
    """The built-in default: 64 trainer + 64 rollout GPUs in 8-GPU servers."""
    return ClusterConfig()


@pytest.fixture
def small() -> ClusterConfig:
    """32 + 32 GPUs."""
    return ClusterConfig(trainer_gpus=32, rollout_gpus=32)
