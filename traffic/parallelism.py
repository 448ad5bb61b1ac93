"""Parallelism and rank placement: which GPUs form each TP / PP / DP / EP / CP group.

Trainer ranks are laid out by an ``order`` string listing the axes from fastest- to slowest-varying
(Megatron's convention): with the default ``"tp-cp-dp-pp"``, consecutive GPUs are consecutive TP ranks,
so a TP group of ``tp <= gpus_per_server`` stays inside one server (NVLink), and DP/PP groups cross
servers. Experts follow Megatron's MoE parallel folding (Liu et al. 2025, arXiv 2504.14960; Megatron-Core
``expert_tensor_parallel_size``): the ``tp * cp * dp`` ranks of a pipeline stage, in grid order, are
re-read as ``etp`` (fastest) x ``ep`` x ``edp``: an EP group is ``ep`` ranks ``etp`` apart, and expert
gradients are reduced over the ``edp`` ranks holding the same experts. With ``etp == tp`` and ``cp == 1``
an EP group is ``ep`` consecutive DP ranks with the same TP rank (EP carved out of DP); with ``etp = 1``
an EP group may span TP ranks (Qwen3-30B-A3B at TP4 x EP8 inside one 8-GPU server).

>>> lay = TrainLayout.build(offset=0, gpus=16, tp=2, pp=2, cp=1, ep=2, order="tp-cp-dp-pp")
>>> lay.dp, lay.groups("tp")[:2].tolist(), lay.groups("pp")[:2].tolist()
(4, [[0, 1], [2, 3]], [[0, 8], [1, 9]])
>>> lay.groups("dp")[0].tolist(), lay.ep_groups()[0].tolist(), lay.expert_dp_groups()[0].tolist()
([0, 2, 4, 6], [0, 2], [0, 4])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rfabric.errors import InvalidArgumentError

#: canonical axis order of :attr:`TrainLayout.grid` (slowest first)
AXES = ("pp", "dp", "cp", "tp")


def parse_order(order: str) -> tuple[str, ...]:
    """``"tp-cp-dp-pp"`` -> ``("tp", "cp", "dp", "pp")`` (fastest first); every axis exactly once.

    Raises InvalidArgumentError (a ValueError) with a readable message (callers wrap it in a ConfigError).
    """
    parts = tuple(p.strip().lower() for p in order.replace(",", "-").split("-") if p.strip())
    if sorted(parts) != sorted(AXES):
        raise InvalidArgumentError(f"must name each of {', '.join(AXES)} once, fastest-varying first (e.g. 'tp-cp-dp-pp')")
    return parts


@dataclass(frozen=True, slots=True, eq=False)
class TrainLayout:
    """Trainer ranks -> GPUs. ``grid[p, d, c, t]`` is the GPU of PP stage p, DP rank d, CP rank c, TP rank t."""

    tp: int
    pp: int
    dp: int
    cp: int
    ep: int
    order: tuple[str, ...]
    grid: np.ndarray
    etp: int = 0  # expert tensor parallelism; 0 = tp

    @staticmethod
    def build(*, offset: int, gpus: int, tp: int, pp: int, cp: int, ep: int, order: str = "tp-cp-dp-pp",
              etp: int = 0) -> TrainLayout:
        if gpus % (tp * pp * cp):
            raise InvalidArgumentError(f"tp*pp*cp = {tp * pp * cp} does not divide the {gpus} trainer GPUs")
        dp = gpus // (tp * pp * cp)
        etp = etp or tp
        if (tp * cp * dp) % (etp * ep):
            raise InvalidArgumentError(f"etp * ep = {etp * ep} must divide the {tp * cp * dp} ranks of a pipeline stage")
        axes = parse_order(order)
        size = {"tp": tp, "pp": pp, "dp": dp, "cp": cp}
        slow_first = axes[::-1]
        ranks = np.arange(gpus, dtype=np.int64).reshape([size[a] for a in slow_first])
        grid = np.transpose(ranks, [slow_first.index(a) for a in AXES]) + offset
        return TrainLayout(tp=tp, pp=pp, dp=dp, cp=cp, ep=ep, order=axes, grid=np.ascontiguousarray(grid), etp=etp)

    @property
    def edp(self) -> int:
        """Expert data parallelism: ranks of a pipeline stage holding the same experts."""
        return self.tp * self.cp * self.dp // (self.etp * self.ep)

    def _expert_grid(self) -> np.ndarray:
        """``(pp, edp, ep, etp)`` GPUs: each stage's ``dp, cp, tp`` ranks (tp fastest) re-read for experts."""
        return self.grid.reshape(self.pp, self.edp, self.ep, self.etp)

    @property
    def gpus(self) -> int:
        return int(self.grid.size)

    def groups(self, axis: str) -> np.ndarray:
        """Groups along ``axis`` (pp, dp, cp or tp) as a ``(count, size)`` array, ranks in axis order."""
        k = AXES.index(axis)
        g = np.moveaxis(self.grid, k, -1)
        return np.ascontiguousarray(g.reshape(-1, g.shape[-1]))

    def ep_groups(self) -> np.ndarray:
        """Expert-parallel groups ``(pp * edp * etp, ep)`` (MoE parallel folding, see the module docstring)."""
        g = np.transpose(self._expert_grid(), (0, 1, 3, 2))
        return np.ascontiguousarray(g.reshape(-1, self.ep))

    def etp_groups(self) -> np.ndarray:
        """Expert tensor-parallel groups ``(pp * edp * ep, etp)``."""
        return np.ascontiguousarray(self._expert_grid().reshape(-1, self.etp))

    def dp_groups(self) -> np.ndarray:
        """Gradient-reduction groups of the dense (non-expert) weights: the ``dp * cp`` ranks with the same
        PP stage and TP rank (context-parallel ranks hold the same weights too)."""
        g = np.transpose(self.grid, (0, 3, 1, 2))  # (pp, tp, dp, cp)
        return np.ascontiguousarray(g.reshape(-1, self.dp * self.cp))

    def expert_dp_groups(self) -> np.ndarray:
        """Gradient-reduction groups of the expert weights ``(pp * ep * etp, edp)``: the ranks holding the
        same experts (same PP stage, position in the EP group and expert-TP rank)."""
        g = np.transpose(self._expert_grid(), (0, 2, 3, 1))
        return np.ascontiguousarray(g.reshape(-1, self.edp))


@dataclass(frozen=True, slots=True, eq=False)
class RolloutLayout:
    """Rollout replicas -> GPUs: ``replicas[r]`` are the GPUs of replica r (contiguous).

    Inside a replica of ``tp * dp_attention`` GPUs, attention runs as ``dp_attention`` TP groups of ``tp``
    consecutive GPUs; experts (MoE) are spread over EP groups of ``ep`` consecutive GPUs. With
    attention--FFN disaggregation (``ffn_gpus > 0``) the replica has ``ffn_gpus`` more GPUs, after the
    attention ones, that run the FFN / experts; attention and FFN GPUs exchange activations every layer.
    """

    tp: int
    dp_attention: int
    ep: int
    replicas: np.ndarray  # (R, replica_gpus)
    ffn_gpus: int = 0  # > 0: attention-FFN disaggregation, the last ffn_gpus GPUs of a replica run the FFN

    @staticmethod
    def build(*, offset: int, gpus: int, tp: int, dp_attention: int = 1, ep: int = 1, ffn_gpus: int = 0) -> RolloutLayout:
        size = tp * dp_attention + ffn_gpus
        if gpus % size:
            raise InvalidArgumentError(f"a replica of {size} GPUs does not divide the {gpus} rollout GPUs")
        if (ffn_gpus or size) % ep:
            raise InvalidArgumentError(f"ep = {ep} must divide the {ffn_gpus or size} GPUs holding experts in a replica")
        reps = (np.arange(gpus, dtype=np.int64) + offset).reshape(gpus // size, size)
        return RolloutLayout(tp=tp, dp_attention=dp_attention, ep=ep, replicas=reps, ffn_gpus=ffn_gpus)

    @property
    def attention_gpus(self) -> int:
        return self.tp * self.dp_attention

    @property
    def replica_gpus(self) -> int:
        return int(self.replicas.shape[1])

    @property
    def num_replicas(self) -> int:
        return int(self.replicas.shape[0])

    def attention_part(self) -> np.ndarray:
        """GPUs running attention in each replica ``(R, a)``."""
        return self.replicas[:, :self.attention_gpus]

    def ffn_part(self) -> np.ndarray:
        """GPUs running the FFN / experts in each replica (all of them without disaggregation)."""
        return self.replicas[:, self.attention_gpus:] if self.ffn_gpus else self.replicas

    def tp_groups(self) -> np.ndarray:
        """Attention TP groups ``(R * dp_attention, tp)``; the row of replica r, group k is ``r * dp_attention + k``."""
        a = self.attention_part()
        return np.ascontiguousarray(a.reshape(-1, self.tp))

    def ep_groups(self) -> np.ndarray:
        """Expert groups ``(R * (ffn GPUs / ep), ep)``."""
        f = self.ffn_part()
        return np.ascontiguousarray(f.reshape(-1, self.ep))


def interval_overlap(n_a: int, n_b: int) -> np.ndarray:
    """``M[i, j]`` = length of the overlap of ``[i/n_a, (i+1)/n_a)`` and ``[j/n_b, (j+1)/n_b)``.

    The share of a tensor dimension that shard ``i`` of an ``n_a``-way split holds of shard ``j`` of an
    ``n_b``-way split (used to reshard weights from the trainer's layout to the rollout's).

    >>> interval_overlap(2, 4).tolist()
    [[0.25, 0.25, 0.0, 0.0], [0.0, 0.0, 0.25, 0.25]]
    """
    a0 = np.arange(n_a)[:, None] / n_a
    b0 = np.arange(n_b)[None, :] / n_b
    lo = np.maximum(a0, b0)
    hi = np.minimum(a0 + 1.0 / n_a, b0 + 1.0 / n_b)
    return np.clip(hi - lo, 0.0, None)
