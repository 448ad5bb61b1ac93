"""Parameter dataclasses of the topology builders (SI field names; YAML may use ``_gbps``/``_ms``/...).

Parameters whose meaning is shared carry the same name in every kind, so a shared ``topology:`` section
of a run config applies each key to every fabric that knows it.
"""

from __future__ import annotations

from dataclasses import dataclass

from rfabric.config import bounded, choice, non_negative

TEMPLATES = ("tree", "mesh", "isolated_pod")


@dataclass(frozen=True, kw_only=True, slots=True)
class EpsParams:
    """What every electrical packet-switched fabric shares.

    Attributes
    ----------
    switch_radix : int
        Ports per EPS box (ToR/leaf, aggregation/spine and core alike). Default 64.
    port_bps : float
        Switch port speed (YAML ``port_gbps``); ``0`` means "the NIC speed" (``cluster.nic_bps``).
        Host-facing ToR ports always run at the NIC speed.
    oversubscription : float
        ToR->aggregation ratio (host capacity / uplink capacity per ToR), >= 1. 1 is non-blocking.
    core_oversubscription : float
        Aggregation->core ratio, >= 1.
    host_dac : bool
        NIC-ToR links are copper DAC (no transceivers; counted as ``dac``). Default True.
    switch_latency_s, link_latency_s : float
        Per-hop switch and link (propagation) latency; each switch-facing link carries their sum.
    fibre_length_m : float
        Length of every fibre run (a costing convention: 500 m per link in the MixNet calculator).
    """

    switch_radix: int = bounded(64, ge=4)
    port_bps: float = non_negative(0.0)
    oversubscription: float = bounded(1.0, ge=1.0)
    core_oversubscription: float = bounded(1.0, ge=1.0)
    host_dac: bool = True
    switch_latency_s: float = non_negative(500e-9)
    link_latency_s: float = non_negative(500e-9)
    fibre_length_m: float = non_negative(500.0)


@dataclass(frozen=True, kw_only=True, slots=True)
class FatTreeParams(EpsParams):
    """3-tier folded Clos (ToR, aggregation, core) at GPU granularity; see :mod:`topologies.fat_tree`."""


@dataclass(frozen=True, kw_only=True, slots=True)
class RailOptimizedParams(EpsParams):
    """Rail-optimised Clos: NIC ``i`` of every server of a rail group on rail leaf ``i``.

    ``oversubscription`` applies leaf->spine, ``core_oversubscription`` spine->core.
    """


@dataclass(frozen=True, kw_only=True, slots=True)
class RFabricParams(EpsParams):
    """EPS + OCS hybrid (see :mod:`topologies.rfabric_hybrid` for the wiring rules).

    Attributes
    ----------
    ocs_radix : int
        Physical ports per OCS device (Calient S320: 320). A duplex link takes two physical ports
        (Tx and Rx fibres) unless ``bidirectional_ocs``; the logical ports per OCS (``ports``) are
        ``ocs_radix // 2`` or ``ocs_radix``.
    ocs_reconfig_s : float
        Time to re-point a circuit (YAML ``ocs_reconfig_ms``; default 10 ms, 3D MEMS).
    agg_ocs_share : float
        Share of each ToR's uplinks fibred to the (per-pod) aggregation-layer OCSes, in [0, 1].
    agg_ocs_upper_share : float
        Share of those fibred ToR uplinks whose aggregation-switch counterpart port is kept and fibred
        to the same OCS (1: every aggregation switch of the Clos stays, ``tree`` rebuilds it; 0: the
        aggregation switches behind the OCS share are removed and circuits join ToRs directly).
    core_ocs_share : float
        Share of each aggregation switch's uplinks fibred to the core-layer OCSes, in [0, 1].
    core_ocs_upper_share : float
        Share of those whose core-EPS counterpart port is kept and fibred to the OCS (1: the full core
        of the Clos stays; 0 (default): spine-free, circuits join pods directly; the core EPS tier only
        serves the always-on electrical share).
    agg_ocs_count, core_ocs_count : int
        OCS devices per pod (aggregation layer) and in total (core layer); 0 = the fewest that fit.
    ocs_wiring : str
        ``striped`` (plane ``i`` on OCS ``i mod n``) or ``blocked`` (consecutive planes share an OCS).
    bidirectional_ocs : bool
        Circulators: one fibre and one OCS port per duplex link (halves OCS ports in the bill).
    allow_circuit_only : bool
        Permit a plant with no always-on electrical path between some GPUs (a share of 1.0).
    """

    ocs_radix: int = bounded(320, ge=2)
    ocs_reconfig_s: float = non_negative(10e-3)
    agg_ocs_share: float = bounded(0.0, ge=0.0, le=1.0)
    agg_ocs_upper_share: float = bounded(1.0, ge=0.0, le=1.0)
    core_ocs_share: float = bounded(0.75, ge=0.0, le=1.0)
    core_ocs_upper_share: float = bounded(0.0, ge=0.0, le=1.0)
    agg_ocs_count: int = non_negative(0)
    core_ocs_count: int = non_negative(0)
    ocs_wiring: str = choice("striped", choices=("striped", "blocked"))
    bidirectional_ocs: bool = False
    allow_circuit_only: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class StaticOcsParams(RFabricParams):
    """The RFabric plant with one circuit assignment for the whole job.

    ``circuit_template``: ``solver`` (the planner picks one assignment from the whole workload's traffic)
    or a named template (``tree``, ``mesh``, ``isolated_pod``) used as the fixed assignment.
    """

    circuit_template: str = choice("solver", choices=("solver", *TEMPLATES))


__all__ = ["EpsParams", "FatTreeParams", "RailOptimizedParams", "RFabricParams", "StaticOcsParams", "TEMPLATES"]
