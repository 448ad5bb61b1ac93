"""Workloads: ordered phase steps, each a set of flows with dependencies and compute gaps.

The flow model (what ``traffic/`` produces and ``rfabric.sim`` plays):

* A :class:`FlowSet` holds one phase step's flows as parallel numpy arrays. Flows are grouped into
  **chains** (one collective instance, e.g. the ring all-reduce of DP group 3, or one point-to-point
  stream); a chain is a sequence of **stages** ``0, 1, 2, ...``. Every flow of stage ``k`` of a chain
  becomes ready when all flows of stage ``k-1`` of the same chain have finished, plus its own
  ``delay_s`` (compute between the stages, e.g. one layer's backward pass). Stage-0 flows are ready at
  the phase start plus ``delay_s``. Chains are independent of each other.
* Flows may carry a ``weight`` (``multiplicity``): ``w`` identical flows on the same src/dst, start and
  size, simulated once. Their bytes count ``w`` times.
* A :class:`PhaseStep` is one phase of the RL step (``train``, ``rollout``, ``weight_sync``, ...): its flows,
  the compute time before it starts (``compute_before_s``, the window in which circuits can be
  re-pointed), compute time after its last flow (``compute_after_s``) and a ``repeat`` count.
* A :class:`Workload` is the ordered tuple of phase steps of one RL step (or of one weight-sync period of
  ``sync_every`` RL steps) and a :class:`Schedule`: how phase instances of consecutive RL steps overlap
  (``sync``: one after another; ``one_step_off`` / ``async``: the rollout of later steps overlaps training,
  see :mod:`rfabric.sim.pipeline`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rfabric.errors import ConfigError, InvalidArgumentError, UnknownNameError
from rfabric.traffic_matrix import TrafficMatrix

#: Schedule modes (``workload.schedule.mode``) and weight-sync styles (``workload.schedule.sync``).
SCHEDULE_MODES = ("sync", "one_step_off", "async")
SYNC_STYLES = ("blocking", "streamed")


@dataclass(frozen=True, kw_only=True, slots=True)
class Schedule:
    """How the phases of consecutive RL steps overlap on the two clusters (``workload.schedule``).

    * ``mode``: ``sync`` -- rollout(i) -> train(i) -> weight sync(i) -> rollout(i+1), strictly in turn (each
      pool idles while the other works); ``one_step_off`` -- rollout(i+1) runs with the weights of step i-1
      while train(i) runs (verl ``recipe/one_step_off_policy``, 2025; the OrchestrRL setting, arXiv
      2601.01209); ``async`` -- rollout may run up to ``staleness`` policy versions ahead (AReaL,
      arXiv 2505.24298; verl fully-async recipe).
    * ``staleness``: policy versions rollout may run ahead: 0 for ``sync``, 1 for ``one_step_off``, any
      ``k >= 1`` for ``async`` (default 2). ``None`` takes the mode's value.
    * ``sync``: ``blocking`` -- the weight sync waits for the rollout in progress and the next rollout and
      training wait for it (NCCL broadcast in verl's one-step-off recipe); ``streamed`` -- rollout keeps
      generating with the old weights while the new ones arrive and training goes on (StreamRL, arXiv
      2504.15930; checkpoint-engine style updates); the next rollout that needs them still waits.

    Raises :class:`~rfabric.errors.ConfigError` (key ``workload.schedule.*``) on an unknown mode or style or a
    staleness that contradicts the mode.
    """

    mode: str = "sync"
    staleness: int | None = None
    sync: str = "blocking"

    def __post_init__(self) -> None:
        if self.mode not in SCHEDULE_MODES:
            raise ConfigError("workload.schedule.mode", f"must be one of {', '.join(SCHEDULE_MODES)}", self.mode)
        if self.sync not in SYNC_STYLES:
            raise ConfigError("workload.schedule.sync", f"must be one of {', '.join(SYNC_STYLES)}", self.sync)
        k = self.staleness
        if k is not None:
            if isinstance(k, bool) or not isinstance(k, int) or k < 0:
                raise ConfigError("workload.schedule.staleness", "must be an integer >= 0", k)
            fixed = {"sync": 0, "one_step_off": 1}.get(self.mode)
            if fixed is not None and k != fixed:
                raise ConfigError("workload.schedule.staleness", f"mode '{self.mode}' has staleness {fixed}; "
                                  "use mode: async for another value", k)
            if self.mode == "async" and k < 1:
                raise ConfigError("workload.schedule.staleness", "mode 'async' needs staleness >= 1", k)

    @property
    def versions_ahead(self) -> int:
        """The effective staleness ``k``: rollout of step ``j`` needs the weights of step ``j - 1 - k``."""
        if self.staleness is not None:
            return self.staleness
        return {"sync": 0, "one_step_off": 1}.get(self.mode, 2)

    @property
    def pipelined(self) -> bool:
        return self.mode != "sync"


@dataclass(frozen=True, slots=True, eq=False)
class StageReplay:
    """Stages that play a block of earlier stages of their chain again with other sizes (K replays).

    Replay ``k`` appends to chain ``chain[k]`` a block of ``stages[k]`` stages: the flows of that chain's
    stages ``first_stage[k] .. first_stage[k] + stages[k] - 1`` (the *template*, flows of the
    :class:`FlowSet` that carries this replay), each with ``size_bytes`` times ``scale[k]``; the flows of the
    block's first stage wait ``delay_s[k]`` (replacing the template's delays), those of its later stages
    keep the template's. The replays of a chain follow its last stage, in index order, one after another
    (the chain/stage semantics of :mod:`rfabric.workload`). A replayed block is the same flows as a
    materialised copy of the template with those sizes and delays (same endpoints, multiplicities, tags and
    so routes), so the engine routes the template once and plays it again (:mod:`rfabric.sim.engine`):
    ``K`` blocks cost ``K`` numbers each, not ``K`` copies of the template's flows (issue #14: DeepSeek-V3's
    decode at 16,384 GPUs, ~470k flows per iteration group, 128 groups).

    Fields (length K): ``chain`` (int64), ``first_stage`` (int64), ``stages`` (int64 >= 1), ``scale``
    (float64 >= 0, finite), ``delay_s`` (float64 >= 0, finite).
    """

    chain: np.ndarray
    first_stage: np.ndarray
    stages: np.ndarray
    scale: np.ndarray
    delay_s: np.ndarray

    @staticmethod
    def build(chain: Any, first_stage: Any, stages: Any, scale: Any, delay_s: Any) -> StageReplay:
        """Replays from scalars or arrays broadcast to one length; validated."""
        shape = np.broadcast_shapes(*(np.shape(x) for x in (chain, first_stage, stages, scale, delay_s)))

        def arr(x: Any, dt: Any) -> np.ndarray:
            return np.ascontiguousarray(np.broadcast_to(np.asarray(x, dtype=dt), shape).ravel())

        rp = StageReplay(chain=arr(chain, np.int64), first_stage=arr(first_stage, np.int64),
                         stages=arr(stages, np.int64), scale=arr(scale, np.float64), delay_s=arr(delay_s, np.float64))
        rp.validate()
        return rp

    def __len__(self) -> int:
        return int(self.chain.size)

    def validate(self) -> None:
        n = self.chain.size
        for k in ("first_stage", "stages", "scale", "delay_s"):
            if getattr(self, k).shape != (n,):
                raise InvalidArgumentError(f"StageReplay.{k} has shape {getattr(self, k).shape}, expected ({n},)")
        if n and (np.any(self.chain < 0) or np.any(self.first_stage < 0) or np.any(self.stages < 1)):
            raise InvalidArgumentError("StageReplay needs chain >= 0, first_stage >= 0 and stages >= 1")
        for k in ("scale", "delay_s"):
            v = getattr(self, k)
            if n and (not np.all(np.isfinite(v)) or np.any(v < 0)):
                raise InvalidArgumentError(f"StageReplay.{k} must be finite and >= 0")

    def shifted(self, chain_offset: int) -> StageReplay:
        """The same replays with every chain id increased by ``chain_offset``."""
        return StageReplay(chain=self.chain + chain_offset, first_stage=self.first_stage, stages=self.stages,
                           scale=self.scale, delay_s=self.delay_s)

    @staticmethod
    def concat(parts: list[StageReplay]) -> StageReplay:
        return StageReplay(**{k: np.concatenate([getattr(p, k) for p in parts])
                              for k in ("chain", "first_stage", "stages", "scale", "delay_s")})


@dataclass(frozen=True, slots=True, eq=False)
class FlowSet:
    """Flows of one phase step as parallel arrays (length F).

    Fields: ``src``/``dst`` GPU indices (int32), ``size_bytes`` (float64, per flow), ``chain`` (int32),
    ``stage`` (int32, order within the chain), ``delay_s`` (float64, compute before the flow may start
    once its stage is ready), ``multiplicity`` (int32 >= 1), ``tag`` (int16 index into ``tags``: which
    collective/axis produced the flow, e.g. ``"dp/all_reduce"``). ``replay`` (optional,
    :class:`StageReplay`): further stages that play blocks of these flows again with other sizes; the
    flow arrays hold the flows played once (``len``), ``total_bytes`` and ``traffic`` count every play.
    """

    src: np.ndarray
    dst: np.ndarray
    size_bytes: np.ndarray
    chain: np.ndarray
    stage: np.ndarray
    delay_s: np.ndarray
    multiplicity: np.ndarray
    tag: np.ndarray
    tags: tuple[str, ...] = ()
    replay: StageReplay | None = None

    @staticmethod
    def build(src: Any, dst: Any, size_bytes: Any, *, chain: Any = 0, stage: Any = 0, delay_s: Any = 0.0,
              multiplicity: Any = 1, tag: Any = 0, tags: tuple[str, ...] = ("",)) -> FlowSet:
        s = np.asarray(src, dtype=np.int32).ravel()
        n = s.size

        def arr(x: Any, dt: Any) -> np.ndarray:
            return np.ascontiguousarray(np.broadcast_to(np.asarray(x, dtype=dt), (n,)))

        fs = FlowSet(src=s, dst=arr(dst, np.int32), size_bytes=arr(size_bytes, np.float64), chain=arr(chain, np.int32),
                     stage=arr(stage, np.int32), delay_s=arr(delay_s, np.float64), multiplicity=arr(multiplicity, np.int32),
                     tag=arr(tag, np.int16), tags=tuple(tags))
        fs.validate()
        return fs

    @staticmethod
    def empty() -> FlowSet:
        return FlowSet.build(np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int32), np.zeros(0))

    @staticmethod
    def concat(parts: list[FlowSet]) -> FlowSet:
        """Concatenate flow sets; chains are renumbered so parts stay independent; tags are merged."""
        parts = [p for p in parts if len(p)]
        if not parts:
            return FlowSet.empty()
        tags: list[str] = []
        tag_idx: dict[str, int] = {}
        chain_off = 0
        cols: dict[str, list[np.ndarray]] = {k: [] for k in ("src", "dst", "size_bytes", "chain", "stage", "delay_s", "multiplicity", "tag")}
        replays = []
        for p in parts:
            if p.replay is not None and len(p.replay):
                replays.append(p.replay.shifted(chain_off))
            remap = np.array([tag_idx.setdefault(t, len(tag_idx)) for t in p.tags], dtype=np.int16)
            for t in p.tags:
                if t not in tags:
                    tags.append(t)
            cols["tag"].append(remap[p.tag] if remap.size else p.tag)
            cols["chain"].append(p.chain + chain_off)
            chain_off += int(p.chain.max()) + 1
            for k in ("src", "dst", "size_bytes", "stage", "delay_s", "multiplicity"):
                cols[k].append(getattr(p, k))
        return FlowSet(**{k: np.concatenate(v) for k, v in cols.items()}, tags=tuple(tags),
                       replay=StageReplay.concat(replays) if replays else None)

    def __len__(self) -> int:
        return int(self.src.size)

    def validate(self) -> None:
        n = self.src.size
        for k in ("dst", "size_bytes", "chain", "stage", "delay_s", "multiplicity", "tag"):
            if getattr(self, k).shape != (n,):
                raise InvalidArgumentError(f"FlowSet.{k} has shape {getattr(self, k).shape}, expected ({n},)")
        if n:
            if np.any(self.size_bytes < 0) or np.any(self.delay_s < 0):
                raise InvalidArgumentError("FlowSet has a negative size or delay")
            if np.any(self.multiplicity < 1):
                raise InvalidArgumentError("FlowSet multiplicity must be >= 1")
            if np.any(self.stage < 0):
                raise InvalidArgumentError("FlowSet stage must be >= 0")
            if self.tags and (self.tag.min() < 0 or self.tag.max() >= len(self.tags)):
                raise InvalidArgumentError("FlowSet tag index outside tags")
        if self.replay is not None:
            self.replay.validate()
            self.replay_weight()

    def replay_weight(self) -> np.ndarray:
        """``(F,)``: the sum of the scales of the replays that play each flow again (0 without replays).

        Raises :class:`~rfabric.errors.InvalidArgumentError` if a replay's template stages are not all stages
        of its chain."""
        w = np.zeros(self.src.size)
        rp = self.replay
        if rp is None or not len(rp):
            return w
        if not self.src.size:
            raise InvalidArgumentError("FlowSet has replays but no flows to replay")
        span = int(max(self.stage.max(), (rp.first_stage + rp.stages).max())) + 1
        key = self.chain.astype(np.int64) * span + self.stage
        uk = np.unique(key)
        j = np.arange(int(rp.stages.sum())) - np.repeat(np.cumsum(rp.stages) - rp.stages, rp.stages)
        rkey = np.repeat(rp.chain * span + rp.first_stage, rp.stages) + j
        pos = np.minimum(np.searchsorted(uk, rkey), uk.size - 1)
        if np.any(uk[pos] != rkey):
            raise InvalidArgumentError("StageReplay: a template stage has no flows in its chain")
        per = np.bincount(pos, weights=np.repeat(rp.scale, rp.stages), minlength=uk.size)
        return per[np.searchsorted(uk, key)]

    @property
    def total_bytes(self) -> float:
        if self.replay is not None:
            return float(np.dot(self.size_bytes * (1.0 + self.replay_weight()), self.multiplicity))
        return float(np.dot(self.size_bytes, self.multiplicity))

    def traffic(self, num_gpus: int, *, phase: str = "", collective: str = "", axis: str = "") -> TrafficMatrix:
        """The traffic matrix these flows add up to (every play of a replayed flow included)."""
        size = self.size_bytes * self.multiplicity
        if self.replay is not None:
            size = size * (1.0 + self.replay_weight())
        return TrafficMatrix.from_pairs(num_gpus, self.src, self.dst, size, phase=phase, collective=collective,
                                        axis=axis)

    def select(self, mask: np.ndarray) -> FlowSet:
        if self.replay is not None:
            raise InvalidArgumentError("FlowSet.select on flows with replays: a replay's template would lose flows")
        return FlowSet(src=self.src[mask], dst=self.dst[mask], size_bytes=self.size_bytes[mask], chain=self.chain[mask],
                       stage=self.stage[mask], delay_s=self.delay_s[mask], multiplicity=self.multiplicity[mask],
                       tag=self.tag[mask], tags=self.tags)


@dataclass(frozen=True, slots=True, eq=False)
class PhaseStep:
    """One phase of an RL step: its flows and the compute around them."""

    name: str  # unique within the workload, e.g. "train", "rollout.decode.tp8", "weight_sync"
    phase: str  # the phase tag: train | rollout | weight_sync | score | custom
    flows: FlowSet
    num_gpus: int
    compute_before_s: float = 0.0
    compute_after_s: float = 0.0
    repeat: int = 1
    collective: str = ""
    axis: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.repeat < 1:
            raise InvalidArgumentError("PhaseStep.repeat must be >= 1")
        if self.compute_before_s < 0 or self.compute_after_s < 0:
            raise InvalidArgumentError("PhaseStep compute times must be >= 0")

    @property
    def traffic(self) -> TrafficMatrix:
        """Bytes of one repetition of this phase as a tagged traffic matrix."""
        return self.flows.traffic(self.num_gpus, phase=self.phase, collective=self.collective or "mixed",
                                  axis=self.axis or "mixed")


@dataclass(frozen=True, slots=True, eq=False)
class Workload:
    """An RL step: ordered phase steps over ``num_gpus`` GPUs, with provenance."""

    name: str
    num_gpus: int
    phases: tuple[PhaseStep, ...]
    trainer_gpus: tuple[int, int] = (0, 0)  # [start, stop) of the logical trainer ranks
    rollout_gpus: tuple[int, int] = (0, 0)
    meta: Mapping[str, Any] = field(default_factory=dict)
    schedule: Schedule = field(default_factory=Schedule)

    def __post_init__(self) -> None:
        names = [p.name for p in self.phases]
        if len(set(names)) != len(names):
            raise InvalidArgumentError(f"phase names must be unique: {names}")
        for p in self.phases:
            if p.num_gpus != self.num_gpus:
                raise InvalidArgumentError(f"phase {p.name} is over {p.num_gpus} GPUs, workload over {self.num_gpus}")
            if len(p.flows) and (p.flows.src.max() >= self.num_gpus or p.flows.dst.max() >= self.num_gpus):
                raise InvalidArgumentError(f"phase {p.name} has a flow to a GPU outside 0..{self.num_gpus - 1}")

    def phase(self, name: str) -> PhaseStep:
        for p in self.phases:
            if p.name == name:
                return p
        raise UnknownNameError("phase", name, (p.name for p in self.phases))

    @property
    def total_bytes(self) -> float:
        return sum(p.flows.total_bytes * p.repeat for p in self.phases)
