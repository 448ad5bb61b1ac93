"""Topology builders, registered by ``kind``: ``fat_tree``, ``rail_optimized``, ``rfabric``, ``static_ocs``,
``jupiter``, ``mixnet`` (regional NIC-level OCS + electrical fat-tree) and ``topoopt`` (direct-connect).

>>> from rfabric.config import ClusterConfig
>>> topo = build("fat_tree", {"switch_radix": 16}, ClusterConfig())
>>> topo.num_gpus, topo.graph.graph["num_pods"], topo.graph.graph["tiers"]
(128, 2, ('tor', 'agg', 'core'))

Every builder is ``fn(params, cluster, name) -> Topology`` and follows the conventions of
:mod:`rfabric.topology`. What consumers (solver, simulator, bill of materials) may rely on:

Nodes
    * ``gpu{g}`` / ``nic{g}`` (GPU, NIC): ``gpu`` (int), ``server`` (int), ``tor`` (name of the ToR/leaf),
      ``pod`` (int), ``rail`` (index of the GPU in its server); NICs also ``port_bps``.
    * ``nvs{s}`` (NVSWITCH, one per server when ``gpus_per_server > 1``): ``server``, ``tor``, ``pod``.
    * ``tor{t}``, ``agg{a}``, ``core{c}`` (TOR, AGG, CORE): ``radix``, ``port_bps``, ``pod`` (-1 for core),
      ``index`` (global within the tier), ``local`` (index within the pod; ToR/agg). Rail leaves also
      carry ``rail``. Aggregation switch ``local`` j of pod p is ``agg{p * aggs_per_pod + j}``.
    * ``ocs.agg.{k}`` / ``ocs.core.{k}`` (OCS): ``layer`` ("agg" | "core"), ``pod`` (the pod an agg-layer
      OCS serves; -1 for the core layer), ``index``, ``ports`` (duplex ports = len(port_owner)), ``radix``
      (physical ports; ``ports = radix // 2`` unless ``bidirectional``), ``bidirectional``,
      ``port_owner`` (switch fibred to each port, ``""`` unwired), ``port_plane`` (plane of each port,
      -1 unwired) and ``port_peer`` (the port the Clos would join it to -- its ``tree`` partner -- or -1).

      A *plane* is one uplink index: on the agg layer, ToR uplink ``tor_uplinks_eps + q`` of every ToR of
      the pod (plus, if kept, the matching aggregation switch's port for each ToR); on the core layer,
      uplink ``agg_uplinks_eps + i`` of aggregation switch ``j`` in every pod (plane ``i * aggs_per_pod +
      j``, plus, if kept, the core EPS port for each pod). A plane is never split across OCSes, so an agg
      OCS joins ToRs/aggs of one pod, and a core OCS can join any two pods.

Edges (full duplex; ``links``, ``link_bps``, ``capacity_bps = links * link_bps``, ``latency_s``, ``medium``)
    * gpu--nvs NVLINK (``cluster.nvlink_bps``), gpu--nic PCIE (NIC speed, ``cluster.nic_latency_s``),
      nic--tor COPPER (``host_dac``) or OPTICAL at the NIC speed.
    * tor--agg and agg--core OPTICAL at ``port_bps`` (parallel links merged: ``links`` > 1).
    * switch--OCS FIBRE: ``links`` = that switch's ports on that OCS; latency half a switch hop so a circuit
      costs one hop. OPTICAL and FIBRE edges carry ``length_m``.

Graph attributes (``graph.graph``)
    ``kind``, ``attach`` ("tor" | "rail"), ``gpus``, ``gpus_per_server``, ``servers``, ``nic_bps``,
    ``port_bps``, ``switch_radix``, ``num_pods``, ``tors``, ``tors_per_pod``, ``hosts_per_tor``,
    ``servers_per_tor`` (rail: servers per rail group), ``aggs_per_pod``, ``cores``, ``tiers`` (EPS tiers
    present), ``tor_uplinks`` / ``tor_uplinks_eps`` / ``tor_uplinks_ocs`` (per ToR), ``agg_keep`` (agg planes
    with an aggregation-switch side), ``agg_uplinks`` / ``agg_uplinks_eps`` / ``agg_uplinks_ocs`` (per agg),
    ``core_keep`` (core uplink indices with a core-EPS side), ``core_links_per_agg``, ``ocs_layers``
    (OCS layers present); OCS kinds add ``ocs_radix``, ``ocs_ports``, ``bidirectional_ocs``; ``static_ocs``
    adds ``circuit_template``.

Sizing, partial pods and the RFabric wiring: :mod:`topologies._clos`, :mod:`topologies.rfabric_hybrid`.
Circuit templates: :mod:`topologies.templates`.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
from collections.abc import Mapping
from typing import Any

from rfabric.config import ClusterConfig
from rfabric.parsing import to_plain
from rfabric.topology import Topology
from rfabric.units import human_key
from topologies import fat_tree as _fat_tree  # noqa: F401  (registers)
from topologies import jupiter as _jupiter  # noqa: F401
from topologies import mixnet as _mixnet  # noqa: F401
from topologies import rail_optimized as _rail  # noqa: F401
from topologies import rfabric_hybrid as _rfabric  # noqa: F401
from topologies import static_ocs as _static  # noqa: F401
from topologies import topoopt as _topoopt  # noqa: F401
from topologies._params import (
    WIRINGS,
    EpsParams,
    FatTreeParams,
    RailOptimizedParams,
    RFabricParams,
    StaticOcsParams,
)
from topologies._registry import REGISTRY
from topologies.jupiter import JupiterParams
from topologies.mixnet import MixNetParams
from topologies.topoopt import TopoOptParams

# A library never prints: without a handler of the application's, log records go nowhere instead of to
# logging.lastResort on stderr (Python logging HOWTO, "Configuring Logging for a Library"); rfabric.cli installs one.
logging.getLogger(__name__).addHandler(logging.NullHandler())


def build(kind: str, params: Mapping[str, Any] | Any | None, cluster: ClusterConfig, *, name: str | None = None,
          path: str = "topology") -> Topology:
    """Build a fabric of ``kind`` from raw or parsed parameters; every error names ``path.<key>``.

    ``params`` may be a mapping (YAML keys, human units allowed), the kind's parameter dataclass, another
    kind's dataclass (its fields are re-checked against this kind), or None (defaults).
    """
    entry = REGISTRY.get(kind, f"{path}.kind" if path else "kind")
    if dataclasses.is_dataclass(params) and not isinstance(params, type) and not isinstance(params, entry.params_cls):
        params = to_plain(params)
    parsed = REGISTRY.parse(kind, params, path)
    # Graph assembly allocates ~10^5 small dicts and no reference cycles: pausing the cyclic GC while
    # building saves about a quarter of the build time at 16,384 GPUs.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return entry.build(parsed, cluster, name or kind, path=path)
    finally:
        if was_enabled:
            gc.enable()


def param_names(kind: str) -> set[str]:
    """Every YAML key ``kind`` accepts: SI field names and their human-unit spellings."""
    cls = REGISTRY.get(kind).params_cls
    out: set[str] = set()
    for f in dataclasses.fields(cls):
        out.add(f.name)
        out.update(human_key(f.name))
    return out


__all__ = ["REGISTRY", "WIRINGS", "build", "param_names", "EpsParams", "JupiterParams", "FatTreeParams", "MixNetParams",
           "RailOptimizedParams", "RFabricParams", "StaticOcsParams", "TopoOptParams"]
