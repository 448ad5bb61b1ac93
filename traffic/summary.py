"""Per-phase summary of a workload: bytes, flows, peers and how much traffic crosses each boundary.

>>> import numpy as np
>>> from rfabric.config import ClusterConfig
>>> from traffic import build_workload
>>> wl = build_workload({"kind": "collective", "collective": "all_reduce", "size_mb": 8}, ClusterConfig(), seed=0)
>>> row = phase_summary(wl, {"server": np.arange(128) // 8})[0]
>>> row["name"], row["flows"], round(row["peers_per_gpu"], 1), round(row["cross_server_share"], 3)
('all_reduce.ring', 128, 1.0, 0.125)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from rfabric.errors import InvalidArgumentError
from rfabric.workload import Workload


def phase_summary(workload: Workload, groups: Mapping[str, np.ndarray]) -> list[dict[str, Any]]:
    """One row per phase step.

    Columns: ``name``, ``phase``, ``flows`` (flow records, each ``multiplicity`` counted once), ``bytes`` (one
    repetition), ``repeat``, ``compute_before_s``, ``compute_after_s``, ``peers_per_gpu`` (mean number of
    distinct destinations over the GPUs that send), ``network_bytes`` (bytes leaving a server when a
    ``server`` level is given) and, for every level of ``groups`` (``{"server": gpu -> server, "tor": ...,
    "pod": ...}``), ``cross_<level>_share``: the share of bytes whose source and destination GPUs are in
    different groups of that level.
    """
    rows = []
    for p in workload.phases:
        tm = p.traffic
        total = tm.total_bytes
        peers = tm.peers_per_gpu()
        active = peers[peers > 0]
        row: dict[str, Any] = {
            "name": p.name,
            "phase": p.phase,
            "flows": len(p.flows),
            "bytes": total,
            "repeat": p.repeat,
            "compute_before_s": p.compute_before_s,
            "compute_after_s": p.compute_after_s,
            "peers_per_gpu": float(active.mean()) if active.size else 0.0,
        }
        for level, g in groups.items():
            g = np.asarray(g)
            if g.shape[0] != workload.num_gpus:
                raise InvalidArgumentError(f"groups[{level!r}] maps {g.shape[0]} GPUs, the workload has {workload.num_gpus}")
            crossing = float(tm.size_bytes[g[tm.src] != g[tm.dst]].sum())
            if level == "server":
                row["network_bytes"] = crossing
            row[f"cross_{level}_share"] = crossing / total if total > 0 else 0.0
        rows.append(row)
    return rows
