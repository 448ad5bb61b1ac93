"""Per-message latency (alpha) of collectives and transfers: the alpha of an alpha-beta model.

The fabric simulator supplies beta (bytes over the links it routes them on); this module supplies alpha,
the fixed cost of each algorithm step, which the phase generators add as ``delay_s`` before the flows it
belongs to. Values are in seconds; YAML overrides use ``_us`` keys (``workload.latency.base_us: 5``).

Sources
-------
NCCL_LATENCY_US
    NVIDIA/nccl ``src/graph/tuning.cc`` (NCCL 2.18--2.23): ``baseLat`` per algorithm and protocol, and
    ``hwLat`` per hop over NVLink and over the network. NCCL's own cost of a ring all-reduce over ``n``
    ranks on ``m`` nodes is ``baseLat + (2(n-1) - 2(m-1)) * hwLat[NVLINK] + 2(m-1) * hwLat[NET]``; of a
    tree all-reduce ``baseLat + 2 ((n/m - 1) * hwLat[NVLINK] + log2(m) * hwLat[NET])``.
DEEPEP_LL_ALPHA_US
    deepseek-ai/DeepEP README, low-latency kernels on H800 + CX7 400 Gb/s RDMA, 128 tokens per GPU, hidden
    7168, top-8, FP8 dispatch / BF16 combine: EP64 dispatch 173 us, combine 314 us. A GPU receives
    ``128 * 8 * (7168 + 7168/128 * 4)`` = 7.57 MB (FP8 with one fp32 scale per 128 channels) in dispatch and
    ``128 * 8 * 7168 * 2`` = 14.68 MB in combine; at the 50 GB/s line rate those take 151.4 us and 293.6 us,
    leaving alpha = 21.6 us (dispatch) and 20.4 us (combine). We use 21 us per kernel: a *fit* on the EP64
    row; the EP8--EP256 rows of the same table (and EP8 before DeepEP PR #173, when in-node traffic went
    over RDMA) are the checks, within 6--20 % (README calibration table).

>>> lat = Latency.from_table("ll")
>>> round(lat.all_reduce_s(8, 1, "ring") * 1e6, 2)  # TP8 inside one server: 6.6 + 14 * 0.6
15.0
>>> round(lat.all_reduce_s(16, 2, "ring") * 1e6, 2)  # 2 nodes: 6.6 + 28 * 0.6 + 2 * 2.7
28.8
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rfabric.errors import InvalidArgumentError

#: NCCL ``tuning.cc`` latencies in microseconds, (algorithm, protocol) -> (base, per NVLink hop, per network hop)
NCCL_LATENCY_US: dict[tuple[str, str], tuple[float, float, float]] = {
    ("ring", "ll"): (6.6, 0.6, 2.7),
    ("ring", "ll128"): (14.0, 1.9, 4.0),
    ("ring", "simple"): (8.4, 3.4, 14.0),
    ("tree", "ll"): (6.8, 0.6, 5.0),
    ("tree", "ll128"): (14.0, 1.25, 8.5),
    ("tree", "simple"): (8.4, 4.0, 14.0),
}

#: DeepEP low-latency dispatch/combine: fixed cost per kernel (microseconds), fitted as in the module notes
DEEPEP_LL_ALPHA_US = 21.0

PROTOCOLS = ("ll", "ll128", "simple")


@dataclass(frozen=True, slots=True)
class Latency:
    """Alpha terms in seconds: NCCL ``base_s`` + per-hop ``nvlink_hop_s`` / ``net_hop_s`` for ring-family
    collectives (tree values from the same table, scaled by the ring/tree ratio of the chosen protocol), and
    ``all_to_all_s`` per expert-parallel dispatch or combine kernel. ``Latency.zero()`` disables alpha."""

    base_s: float
    nvlink_hop_s: float
    net_hop_s: float
    tree_base_s: float
    tree_nvlink_hop_s: float
    tree_net_hop_s: float
    all_to_all_s: float

    @staticmethod
    def from_table(protocol: str = "ll", *, base_s: float | None = None, nvlink_hop_s: float | None = None,
                   net_hop_s: float | None = None, all_to_all_s: float | None = None) -> Latency:
        """NCCL's values for ``protocol`` (``ll``, ``ll128``, ``simple``), each overridable."""
        if protocol not in PROTOCOLS:
            raise InvalidArgumentError(f"protocol must be one of {PROTOCOLS}, not {protocol!r}")
        rb, rn, rx = (v * 1e-6 for v in NCCL_LATENCY_US[("ring", protocol)])
        tb, tn, tx = (v * 1e-6 for v in NCCL_LATENCY_US[("tree", protocol)])
        return Latency(base_s=rb if base_s is None else base_s, nvlink_hop_s=rn if nvlink_hop_s is None else nvlink_hop_s,
                       net_hop_s=rx if net_hop_s is None else net_hop_s,
                       tree_base_s=tb if base_s is None else base_s,
                       tree_nvlink_hop_s=tn if nvlink_hop_s is None else nvlink_hop_s,
                       tree_net_hop_s=tx if net_hop_s is None else net_hop_s,
                       all_to_all_s=DEEPEP_LL_ALPHA_US * 1e-6 if all_to_all_s is None else all_to_all_s)

    @staticmethod
    def zero() -> Latency:
        return Latency(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)

    def all_reduce_s(self, ranks: int, nodes: int, algorithm: str = "ring") -> float:
        """Alpha of one all-reduce over ``ranks`` GPUs on ``nodes`` servers (NCCL's formula)."""
        if ranks < 2:
            return 0.0
        nodes = max(1, nodes)
        if algorithm in ("double_binary_tree", "tree"):
            return self.tree_base_s + 2 * ((ranks / nodes - 1) * self.tree_nvlink_hop_s
                                           + math.log2(nodes) * self.tree_net_hop_s)
        steps, inter = 2 * (ranks - 1), 2 * (nodes - 1)
        return self.base_s + (steps - inter) * self.nvlink_hop_s + inter * self.net_hop_s

    def gather_s(self, ranks: int, nodes: int) -> float:
        """Alpha of a reduce-scatter / all-gather / gather (``ranks - 1`` ring steps)."""
        if ranks < 2:
            return 0.0
        inter = max(1, nodes) - 1
        return self.base_s + (ranks - 1 - inter) * self.nvlink_hop_s + inter * self.net_hop_s

    def broadcast_s(self, nodes: int) -> float:
        """Alpha of a pipelined (ring / chain) broadcast: one base plus one hop (NCCL's ``sameChannels`` case)."""
        return self.base_s + (self.net_hop_s if nodes > 1 else self.nvlink_hop_s)

    def p2p_s(self, cross_node: bool) -> float:
        """Alpha of one point-to-point message."""
        return self.base_s + (self.net_hop_s if cross_node else self.nvlink_hop_s)
