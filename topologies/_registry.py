"""The topology registry (kept apart from ``__init__`` so builder modules can import it)."""

from __future__ import annotations

from rfabric.registry import Registry
from rfabric.topology import Topology

REGISTRY: Registry[Topology] = Registry("topology")
