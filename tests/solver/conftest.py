"""Small fixtures for the solver tests: multi-pod RFabric plants and GPU-level traffic helpers."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import topologies
from rfabric.config import ClusterConfig
from rfabric.topology import Topology
from rfabric.traffic_matrix import TrafficMatrix
from rfabric.workload import FlowSet, PhaseStep, Workload
from solver.formulation import Problem
from solver.heuristics import evaluate_alpha

#: 64 GPUs in 2-GPU servers on radix-8 switches: 4 pods of 4 ToRs, 4 aggs per pod.
SMALL = ClusterConfig(trainer_gpus=32, rollout_gpus=32, gpus_per_server=2)


def rfabric4(**params: object) -> Topology:
    """4 pods; each pod has 12 core-OCS ports (3 of 4 agg uplinks x 4 aggs) and 4 electrical uplinks."""
    return topologies.build("rfabric", {"switch_radix": 8, "wiring": "core", **params}, SMALL)


@pytest.fixture(scope="session")
def topo4() -> Topology:
    return rfabric4()


@pytest.fixture(scope="session")
def topo4_agg() -> Topology:
    """The same cluster with half the ToR uplinks on per-pod aggregation-layer OCSes too."""
    return rfabric4(agg_ocs_share=0.5)


def pod_traffic(pairs: dict[tuple[int, int], float], *, gpus_per_pod: int = 16, num_gpus: int = 64) -> TrafficMatrix:
    """GPU ``k`` of pod ``a`` sends ``bytes`` to GPU ``k`` of pod ``b`` for each ``(a, b): bytes``."""
    src, dst, size = [], [], []
    for (a, b), nbytes in pairs.items():
        k = np.arange(gpus_per_pod)
        src.append(a * gpus_per_pod + k)
        dst.append(b * gpus_per_pod + k)
        size.append(np.full(gpus_per_pod, nbytes))
    return TrafficMatrix.from_pairs(num_gpus, np.concatenate(src), np.concatenate(dst), np.concatenate(size))


def workload_of(phases: list[tuple[str, TrafficMatrix, float, int]], num_gpus: int = 64) -> Workload:
    """A workload from (name, traffic, compute_before_s, repeat) tuples (one flow per traffic entry)."""
    steps = []
    for name, tm, before, repeat in phases:
        fs = FlowSet.build(tm.src, tm.dst, tm.size_bytes)
        steps.append(PhaseStep(name=name, phase="custom", flows=fs, num_gpus=num_gpus, compute_before_s=before,
                               repeat=repeat))
    return Workload(name="test", num_gpus=num_gpus, phases=tuple(steps))


def brute_force(p: Problem, max_per_pair: int) -> float:
    """Best alpha over every circuit-count vector within the port budgets (tiny problems only; no upper tier)."""
    n = p.n
    iu, ju = np.triu_indices(n, k=1)
    best = 0.0
    for combo in itertools.product(range(max_per_pair + 1), repeat=iu.size):
        x = np.zeros((n, n), dtype=np.int64)
        x[iu, ju] = combo
        x[ju, iu] = combo
        if np.any(x.sum(axis=1) > p.budget):
            continue
        best = max(best, evaluate_alpha(p, x, None))
    return best
