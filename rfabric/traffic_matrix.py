"""Phase-tagged traffic matrices: sparse bytes between GPUs, aggregable to server/ToR/pod level."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from rfabric.errors import InvalidArgumentError

if TYPE_CHECKING:
    from rfabric.topology import Topology


@dataclass(frozen=True, slots=True, eq=False)
class TrafficMatrix:
    """Bytes from GPU ``src[i]`` to GPU ``dst[i]`` (COO, duplicates summed, no self pairs kept).

    Tags: ``phase`` (train / rollout / weight_sync / score / custom), ``collective`` (all_reduce,
    all_to_all, ... or "mixed") and ``axis`` (dp, tp, pp, ep, cp, sync, ...).
    """

    num_gpus: int
    src: np.ndarray  # int64
    dst: np.ndarray  # int64
    size_bytes: np.ndarray  # float64
    phase: str = ""
    collective: str = ""
    axis: str = ""

    @staticmethod
    def from_pairs(num_gpus: int, src: Any, dst: Any, size_bytes: Any, *, phase: str = "", collective: str = "",
                   axis: str = "") -> TrafficMatrix:
        """Build from (possibly repeated) pairs; sums duplicates, drops zero entries and self pairs."""
        s = np.asarray(src, dtype=np.int64).ravel()
        d = np.asarray(dst, dtype=np.int64).ravel()
        b = np.broadcast_to(np.asarray(size_bytes, dtype=np.float64), s.shape).ravel()
        if s.size and (s.min() < 0 or d.min() < 0 or s.max() >= num_gpus or d.max() >= num_gpus):
            raise InvalidArgumentError(f"GPU index outside 0..{num_gpus - 1}")
        if np.any(b < 0):
            raise InvalidArgumentError("negative byte count in a traffic matrix")
        keep = (s != d) & (b > 0)
        m = sp.coo_matrix((b[keep], (s[keep], d[keep])), shape=(num_gpus, num_gpus)).tocsr()
        m.sum_duplicates()
        coo = m.tocoo()
        order = np.lexsort((coo.col, coo.row))
        return TrafficMatrix(num_gpus=num_gpus, src=coo.row[order].astype(np.int64), dst=coo.col[order].astype(np.int64),
                             size_bytes=coo.data[order].astype(np.float64), phase=phase, collective=collective, axis=axis)

    @property
    def nnz(self) -> int:
        return int(self.src.size)

    @property
    def total_bytes(self) -> float:
        return float(self.size_bytes.sum())

    def to_sparse(self) -> sp.csr_matrix:
        return sp.csr_matrix((self.size_bytes, (self.src, self.dst)), shape=(self.num_gpus, self.num_gpus))

    def sent_bytes(self) -> np.ndarray:
        """Bytes each GPU sends."""
        return np.bincount(self.src, weights=self.size_bytes, minlength=self.num_gpus)

    def received_bytes(self) -> np.ndarray:
        return np.bincount(self.dst, weights=self.size_bytes, minlength=self.num_gpus)

    def group(self, groups: np.ndarray, num_groups: int | None = None, *, keep_diagonal: bool = True) -> sp.csr_matrix:
        """Aggregate with an explicit GPU -> group map (sparse ``num_groups x num_groups``)."""
        g = np.asarray(groups, dtype=np.int64)
        n = int(num_groups if num_groups is not None else (g.max() + 1 if g.size else 0))
        rs, cs = g[self.src], g[self.dst]
        w = self.size_bytes
        if not keep_diagonal:
            k = rs != cs
            rs, cs, w = rs[k], cs[k], w[k]
        m = sp.coo_matrix((w, (rs, cs)), shape=(n, n)).tocsr()
        m.sum_duplicates()
        return m

    def aggregate(self, topology: Topology, level: str, *, keep_diagonal: bool = False) -> sp.csr_matrix:
        """Bytes between servers, ToRs or pods of ``topology`` (level in gpu/server/tor/pod).

        Traffic that stays inside one group is dropped unless ``keep_diagonal``.
        """
        groups = topology.gpu_groups(level)
        return self.group(groups, int(groups.max()) + 1 if groups.size else 0, keep_diagonal=keep_diagonal)

    def peers_per_gpu(self) -> np.ndarray:
        """Distinct destinations of each GPU."""
        return np.bincount(self.src, minlength=self.num_gpus)

    def __add__(self, other: TrafficMatrix) -> TrafficMatrix:
        if self.num_gpus != other.num_gpus:
            raise InvalidArgumentError("traffic matrices over different GPU counts")
        tag = lambda a, b: a if a == b else "mixed"  # noqa: E731
        return TrafficMatrix.from_pairs(self.num_gpus, np.concatenate([self.src, other.src]),
                                        np.concatenate([self.dst, other.dst]),
                                        np.concatenate([self.size_bytes, other.size_bytes]),
                                        phase=tag(self.phase, other.phase), collective=tag(self.collective, other.collective),
                                        axis=tag(self.axis, other.axis))

    def scaled(self, factor: float) -> TrafficMatrix:
        return TrafficMatrix(num_gpus=self.num_gpus, src=self.src, dst=self.dst, size_bytes=self.size_bytes * factor,
                             phase=self.phase, collective=self.collective, axis=self.axis)
