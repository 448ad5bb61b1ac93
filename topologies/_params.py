"""Parameter dataclasses of the topology builders (SI field names; YAML may use ``_gbps``/``_ms``/...).

Parameters whose meaning is shared carry the same name in every kind, so a shared ``topology:`` section
of a run config applies each key to every fabric that knows it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rfabric.parsing import bounded, choice, non_negative, to_plain

TEMPLATES = ("tree", "mesh", "isolated_pod")

#: Parameters a built :class:`~rfabric.topology.Topology` carries as its own typed field, so they are left
#: out of ``Topology.params``: one copy each (``Topology.ocs_reconfig_s`` is what every consumer reads).
ON_TOPOLOGY = ("ocs_reconfig_s",)


def topology_params(params: Any) -> dict[str, Any]:
    """``Topology.params`` of a built fabric: the builder's parameters as plain data (:func:`to_plain`)
    without those the Topology holds as typed fields (:data:`ON_TOPOLOGY`).

    >>> topology_params(OcsParams(ocs_radix=64, ocs_reconfig_s=1e-3))["ocs_radix"]
    64
    >>> "ocs_reconfig_s" in topology_params(OcsParams())
    False
    """
    return {k: v for k, v in to_plain(params).items() if k not in ON_TOPOLOGY}


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


WIRINGS: dict[str, dict[str, float | int]] = {
    # ToR-level OCS planes spanning pods (as many as one OCS holds): 3/4 of every ToR's uplinks make
    # ToR<->ToR circuits inside and across pods; the last quarter is an always-on electrical Clos (4:1).
    "span": {"agg_ocs_share": 0.75, "agg_ocs_upper_share": 0.0, "agg_ocs_span": 0, "core_ocs_share": 0.0,
             "core_ocs_upper_share": 0.0},
    # The same shares with ToR-level planes inside each pod (the experiments' wiring until the span default).
    "pod": {"agg_ocs_share": 0.75, "agg_ocs_upper_share": 0.0, "agg_ocs_span": 1, "core_ocs_share": 0.75,
            "core_ocs_upper_share": 0.0},
    # Electrical ToR->agg Clos, spine-free core OCS only (the kind's default until the span default).
    "core": {"agg_ocs_share": 0.0, "agg_ocs_upper_share": 1.0, "agg_ocs_span": 1, "core_ocs_share": 0.75,
             "core_ocs_upper_share": 0.0},
    # OCS at both layers with every EPS of the Clos kept behind it (``tree`` rebuilds the Clos exactly).
    "full": {"agg_ocs_share": 0.75, "agg_ocs_upper_share": 1.0, "agg_ocs_span": 1, "core_ocs_share": 0.75,
             "core_ocs_upper_share": 1.0},
}
"""Named RFabric plants: values of the wiring keys (a key given explicitly overrides its wiring's value)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class OcsParams(EpsParams):
    """The optical circuit switches of every fabric that has them (``rfabric``, ``static_ocs``, ``jupiter``).

    Each OCS parameter is declared here once, with its one default; the kinds inherit it.

    Attributes
    ----------
    ocs_radix : int
        Physical ports per OCS device (Calient S320: 320). A duplex link takes two physical ports
        (Tx and Rx fibres) unless ``bidirectional_ocs``; the logical ports per OCS (``ports``) are
        ``ocs_radix // 2`` or ``ocs_radix``.
    ocs_reconfig_s : float
        Time to re-point a circuit, in seconds (YAML ``ocs_reconfig_ms``; default 10 ms: 3D-MEMS OCS, the
        setting of the RFabric evaluation and of TopoOpt/MixNet). It reaches the simulator, the circuit
        planner and the packet cross-check only as :attr:`rfabric.topology.Topology.ocs_reconfig_s` of the
        built fabric.
    """

    ocs_radix: int = bounded(320, ge=2)
    ocs_reconfig_s: float = non_negative(10e-3)


@dataclass(frozen=True, kw_only=True, slots=True)
class RFabricParams(OcsParams):
    """EPS + OCS hybrid (see :mod:`topologies.rfabric_hybrid` for the wiring rules).

    Attributes
    ----------
    wiring : str
        The named plant (:data:`WIRINGS`) that gives the defaults of ``agg_ocs_share``,
        ``agg_ocs_upper_share``, ``agg_ocs_span``, ``core_ocs_share`` and ``core_ocs_upper_share``; any of
        them given explicitly wins. Default ``span``.
    ocs_radix, ocs_reconfig_s
        See :class:`OcsParams`.
    agg_ocs_share : float
        Share of each ToR's uplinks fibred to the aggregation-layer (ToR-level) OCSes, in [0, 1].
    agg_ocs_upper_share : float
        Share of those fibred ToR uplinks whose aggregation-switch counterpart port is kept and fibred
        to the same OCS (1: every aggregation switch of the Clos stays, ``tree`` rebuilds it; 0: the
        aggregation switches behind the OCS share are removed and circuits join ToRs directly).
    agg_ocs_span : int
        Pods whose ToRs share one aggregation-layer plane: 1 = per pod (circuits stay inside a pod);
        0 = as many pods as one OCS holds (all of them when they fit, so ToR<->ToR circuits cross pods).
    core_ocs_share : float
        Share of each aggregation switch's uplinks fibred to the core-layer OCSes, in [0, 1].
    core_ocs_upper_share : float
        Share of those whose core-EPS counterpart port is kept and fibred to the OCS (1: the full core
        of the Clos stays; 0: spine-free, circuits join pods directly; the core EPS tier only serves the
        always-on electrical share).
    agg_ocs_count, core_ocs_count : int
        OCS devices per pod (aggregation layer; per plant when planes span pods) and in total (core
        layer); 0 = the fewest that fit.
    ocs_wiring : str
        ``striped`` (plane ``i`` on OCS ``i mod n``) or ``blocked`` (consecutive planes share an OCS).
    bidirectional_ocs : bool
        Circulators: one fibre and one OCS port per duplex link (halves OCS ports in the bill).
    allow_circuit_only : bool
        Permit a plant with no always-on electrical path between some GPUs (a share of 1.0).
    """

    wiring: str = choice("span", choices=tuple(WIRINGS))
    agg_ocs_share: float | None = bounded(None, ge=0.0, le=1.0)
    agg_ocs_upper_share: float | None = bounded(None, ge=0.0, le=1.0)
    agg_ocs_span: int | None = bounded(None, ge=0)
    core_ocs_share: float | None = bounded(None, ge=0.0, le=1.0)
    core_ocs_upper_share: float | None = bounded(None, ge=0.0, le=1.0)
    agg_ocs_count: int = non_negative(0)
    core_ocs_count: int = non_negative(0)
    ocs_wiring: str = choice("striped", choices=("striped", "blocked"))
    bidirectional_ocs: bool = False
    allow_circuit_only: bool = False

    def __post_init__(self) -> None:
        for key, value in WIRINGS[self.wiring].items():
            if getattr(self, key) is None:
                object.__setattr__(self, key, value)


@dataclass(frozen=True, kw_only=True, slots=True)
class StaticOcsParams(RFabricParams):
    """The RFabric plant with one circuit assignment for the whole job.

    ``circuit_template``: ``solver`` (the planner picks one assignment from the whole workload's traffic)
    or a named template (``tree``, ``mesh``, ``isolated_pod``) used as the fixed assignment.
    """

    circuit_template: str = choice("solver", choices=("solver", *TEMPLATES))


__all__ = ["WIRINGS", "EpsParams", "OcsParams", "FatTreeParams", "RailOptimizedParams", "RFabricParams", "StaticOcsParams", "TEMPLATES"]
