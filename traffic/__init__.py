"""Workloads -> phase-tagged flows: model catalogue, parallelism, collective algorithms, RL phases.

>>> from rfabric.config import ClusterConfig
>>> wl = build_workload({"kind": "rl_step", "model": "qwen2.5-14b"}, ClusterConfig(), seed=0)
>>> [p.name for p in wl.phases], wl.trainer_gpus, wl.rollout_gpus
(['rollout', 'logprob', 'train', 'weight_sync'], (0, 64), (64, 128))

Kinds (``workload.kind``; :data:`REGISTRY`): ``rl_step`` (:class:`traffic.spec.RlStepSpec`) and
``collective`` (:class:`traffic.spec.CollectiveSpec`). Modules: :mod:`traffic.models` (catalogue),
:mod:`traffic.parallelism` (rank placement), :mod:`traffic.collectives` (algorithms),
:mod:`traffic.generation` (rollout), :mod:`traffic.phases` (score / weight sync), :mod:`traffic.training` (the
trainer's per-layer graph), :mod:`traffic.memory` (trainer memory), :mod:`traffic.gpus` (GPU catalogue),
:mod:`traffic.latency` (alpha), :mod:`traffic.weight_sync`, :mod:`traffic.summary` (per-phase table).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from rfabric.config import ClusterConfig
from rfabric.errors import ConfigError
from rfabric.parsing import parse_dataclass
from rfabric.registry import Registry
from rfabric.workload import PhaseStep, Workload
from traffic import generation as _gen
from traffic import phases as _ph
from traffic import training as _training
from traffic import weight_sync as _ws
from traffic.collectives import collective as _collective
from traffic.collectives import point_to_point
from traffic.gpus import expand_gpu
from traffic.spec import (
    CollectivePlan,
    CollectiveSpec,
    RlStepPlan,
    RlStepSpec,
    global_batch,
    resolve_collective,
    resolve_rl_step,
)

# A library never prints: without a handler of the application's, log records go nowhere instead of to
# logging.lastResort on stderr (Python logging HOWTO, "Configuring Logging for a Library"); rfabric.cli installs one.
logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = ["REGISTRY", "build_workload", "parse_spec", "RlStepSpec", "CollectiveSpec"]

#: workload kinds: ``kind`` -> (spec dataclass, builder ``fn(plan, cluster, seed) -> Workload``)
REGISTRY: Registry[Workload] = Registry("workload")

_RESOLVE: dict[str, Callable[..., Any]] = {"rl_step": resolve_rl_step, "collective": resolve_collective}


def parse_spec(spec: Mapping[str, Any] | None, cluster: ClusterConfig, path: str = "workload") -> Any:
    """Validate a ``workload:`` mapping completely (no traffic is generated) and return its frozen plan.

    Every mistake is a ``ConfigError`` whose key starts with ``path`` (or names the cluster key at fault).
    """
    if spec is None:
        spec = {}
    if not isinstance(spec, Mapping):
        raise ConfigError(path, "must be a mapping with a 'kind' (e.g. rl_step)", spec)
    kind = spec.get("kind", "rl_step")
    if not isinstance(kind, str):
        raise ConfigError(f"{path}.kind", "must be a string", kind)
    entry = REGISTRY.get(kind, f"{path}.kind")
    if kind == "rl_step":
        spec = {**spec, "gpu": expand_gpu(spec.get("gpu"), f"{path}.gpu")}
    params: Any = parse_dataclass(entry.params_cls, spec, path)
    return _RESOLVE[kind](params, cluster, path)


def build_workload(spec: Mapping[str, Any] | None, cluster: ClusterConfig, *, seed: int,
                   path: str = "workload") -> Workload:
    """The workload of ``spec`` on ``cluster`` as phase steps of flows (deterministic for ``seed``)."""
    plan = parse_spec(spec, cluster, path)
    kind = "rl_step" if isinstance(plan, RlStepPlan) else "collective"
    return place(REGISTRY.get(kind).build(plan, cluster, seed), cluster)


def place(workload: Workload, cluster: ClusterConfig) -> Workload:
    """``workload`` (built over logical GPU ids) moved onto physical GPUs by ``cluster.placement``.

    Every flow's ``src`` / ``dst`` becomes :meth:`~rfabric.config.ClusterConfig.gpu_placement` of it; traffic
    inside a server stays inside it (whole servers move). ``contiguous`` returns ``workload`` unchanged.
    """
    if cluster.placement == "contiguous":
        return workload
    gmap = cluster.gpu_placement()
    phases = tuple(replace(p, flows=replace(p.flows, src=gmap[p.flows.src].astype(np.int32),
                                             dst=gmap[p.flows.dst].astype(np.int32))) for p in workload.phases)
    meta = {**workload.meta, "placement": {"mode": cluster.placement, "seed": cluster.placement_seed,
                                           "fraction": cluster.placement_fraction}}
    return replace(workload, phases=phases, meta=meta)


@REGISTRY.register("rl_step", RlStepSpec, doc="disaggregated RL step: rollout, [score], train, weight sync")
def build_rl_step(plan: RlStepPlan, cluster: ClusterConfig, seed: int) -> Workload:
    spec = plan.spec
    n, gps = cluster.gpus, cluster.gpus_per_server
    k = spec.sync_every
    seqs = np.random.SeedSequence(seed).spawn(k)
    out: list[PhaseStep] = []
    for i, ss in enumerate(seqs):
        sfx = f".step{i}" if k > 1 else ""
        rng = np.random.default_rng(ss)
        lengths = _ph.response_lengths(plan, rng)
        out += _gen.rollout_phases(plan, lengths, sfx=sfx, num_gpus=n, gps=gps)
        if plan.score_model is not None:
            out.append(_ph.score_phase(plan, lengths, name=f"score{sfx}", num_gpus=n, gps=gps))
        seq = (lengths[lengths > 0] + spec.rollout.prompt_tokens).astype(np.float64)
        out.extend(_training.train_phases(plan, seq, cluster, num_gpus=n, suffix=sfx))
    if spec.weight_sync.enabled:
        if spec.weight_sync.method in ("gather_broadcast", "checkpoint_engine"):
            out.append(_ws.gather_broadcast_phase(plan, name="weight_sync", num_gpus=n, rollout_gpus=(cluster.trainer_gpus, n),
                                                  gps=gps, nic_bytes_per_s=cluster.nic_bps / 8,
                                                  latency=_gen.latency_of(spec)))
        else:
            out.append(_ph.weight_sync_phase(plan, name="weight_sync", num_gpus=n))
    meta = {"kind": "rl_step", "seed": seed, "rl_steps": k, "plan": plan.describe(),
            "weight_bytes": plan.model.weight_bytes,
            "sequences_per_step": global_batch(spec, plan.rollout.num_replicas)}
    return Workload(name=f"rl_step:{plan.model.name}", num_gpus=n, phases=tuple(out),
                    trainer_gpus=(0, cluster.trainer_gpus), rollout_gpus=(cluster.trainer_gpus, n), meta=meta,
                    schedule=spec.schedule)


@REGISTRY.register("collective", CollectiveSpec, doc="one collective (kind, algorithm, size) on groups of GPUs")
def build_collective(plan: CollectivePlan, cluster: ClusterConfig, seed: int) -> Workload:
    s = plan.spec
    g = plan.groups
    if s.collective == "p2p":
        n = g.shape[1]
        dst = g[:, (np.arange(n) + s.peer_offset) % n]
        chain = np.broadcast_to(np.arange(g.shape[0])[:, None], g.shape)
        fs = point_to_point(g, dst, s.size_bytes, chain=chain, delay_s=0.0, tag="p2p")
    else:
        kw: dict[str, Any] = {"stages": s.collective_stages, "step_latency_s": s.step_latency_s,
                              "gpus_per_server": cluster.gpus_per_server, "tag": s.collective}
        if s.collective == "broadcast":
            kw["root"] = s.root
        fs = _collective(s.collective, g, s.size_bytes, algorithm=plan.algorithm, **kw)
    fs = _ph.compact(fs)
    step = PhaseStep(name=f"{s.collective}.{plan.algorithm}", phase=s.phase, flows=fs, num_gpus=cluster.gpus,
                     compute_before_s=s.compute_before_s, compute_after_s=s.compute_after_s, repeat=s.repeat,
                     collective=s.collective, axis="group",
                     meta={"groups": int(g.shape[0]), "group_size": int(g.shape[1]), "size_bytes": s.size_bytes})
    return Workload(name=f"collective:{s.collective}.{plan.algorithm}", num_gpus=cluster.gpus, phases=(step,),
                    trainer_gpus=(0, cluster.trainer_gpus), rollout_gpus=(cluster.trainer_gpus, cluster.gpus),
                    meta={"kind": "collective", "seed": seed})
