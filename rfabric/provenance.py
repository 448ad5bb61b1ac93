"""Where a result came from: attached to simulation results and comparisons (re-exported by
:mod:`rfabric.results`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where a result came from: the resolved config's hash, the seed and the package version."""

    config_hash: str = ""
    seed: int = 0
    version: str = ""
