"""Cost and power model: dated, sourced price catalogues applied to a counted bill of materials.

Pricing rules (each part of a :class:`~rfabric.bom.BillOfMaterials`):

* ``switch``: a box of ``radix`` ports at ``rate_bps``, priced ``radix x switch_port_usd[rate]`` (spare
  ports are paid for: a switch is bought whole); power ``radix x switch_port_w[rate]``.
* ``switch_port`` / ``switch_port_spare``: informational (already inside ``switch``), not priced.
* ``nic_port``: ``nic_port_usd[rate]``; ``transceiver``: ``transceiver_usd[rate]``; ``dac``: ``dac_usd[rate]``.
* ``ocs_port``: ``ocs_port_usd`` (rate-agnostic), power ``ocs_port_w``; ``ocs`` devices are not priced
  separately (the catalogues price OCS per port).
* ``patch_panel_port``: ``patch_panel_port_usd``; ``fibre``: ``count x length_m x fibre_usd_per_m``.
* ``gpu`` / ``server``: ``gpu_usd`` / ``server_usd`` — whole-cluster figures only (``network=False``).
  When the bill has no ``gpu`` line, its ``num_gpus`` is used.

Performance per cost is computed in :func:`rfabric.results.compare`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from rfabric.bom import BillOfMaterials
from rfabric.errors import ConfigError
from rfabric.parsing import read_yaml, suggest


@dataclass(frozen=True, slots=True)
class CostLine:
    part: str
    tier: str
    rate_bps: float
    count: int
    unit_usd: float
    total_usd: float
    unit_w: float
    total_w: float
    network: bool = True  # False for GPUs/servers (whole-cluster figures only)


@dataclass(frozen=True, slots=True)
class CostBreakdown:
    """Itemised capex and power of one fabric under one price catalogue."""

    topology: str
    catalogue: str
    lines: tuple[CostLine, ...]

    @property
    def capex_network_usd(self) -> float:
        return float(sum(ln.total_usd for ln in self.lines if ln.network))

    @property
    def capex_cluster_usd(self) -> float:
        return float(sum(ln.total_usd for ln in self.lines))

    @property
    def power_network_w(self) -> float:
        return float(sum(ln.total_w for ln in self.lines if ln.network))

    @property
    def power_cluster_w(self) -> float:
        """Network plus GPUs and servers (the ``gpu_w`` / ``server_w`` catalogue lines), in W."""
        return float(sum(ln.total_w for ln in self.lines))

    def by_part(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for ln in self.lines:
            out[ln.part] = out.get(ln.part, 0.0) + ln.total_usd
        return out

    def by_tier(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for ln in self.lines:
            out[ln.tier] = out.get(ln.tier, 0.0) + ln.total_usd
        return out


_RATE_ITEMS = ("transceiver_usd", "nic_port_usd", "switch_port_usd", "dac_usd")
_RATE_POWER = ("transceiver_w", "nic_port_w", "switch_port_w")
_SCALAR_ITEMS = ("ocs_port_usd", "patch_panel_port_usd", "fibre_usd_per_m", "gpu_usd", "server_usd")
_SCALAR_POWER = ("ocs_port_w", "gpu_w", "server_w")
ITEM_KEYS = _RATE_ITEMS + _SCALAR_ITEMS + _RATE_POWER + _SCALAR_POWER


@dataclass(frozen=True, slots=True)
class PriceCatalogue:
    """Unit prices (USD) and power (W); rate-keyed items map Gb/s -> value."""

    name: str
    date: str
    items: Mapping[str, Any]
    power: Mapping[str, Any]
    sources: Mapping[str, str] = field(default_factory=dict)
    overridden: tuple[str, ...] = ()

    def value(self, key: str, rate_bps: float = 0.0) -> float:
        table = self.items if key.endswith("_usd") or key.endswith("_usd_per_m") else self.power
        v = table[key]
        if not isinstance(v, Mapping):
            return float(v)
        gbps = rate_bps / 1e9
        for r, price in v.items():
            if math.isclose(float(r), gbps, rel_tol=1e-9):
                return float(price)
        raise ConfigError(f"cost.prices.{key}", f"no price for {gbps:g} Gb/s parts; the catalogue '{self.name}' "
                          f"has {', '.join(f'{float(r):g}' for r in v)} Gb/s (override with a value for this rate)",
                          has_value=False)


def catalogue_dir() -> Path:
    return Path(str(resources.files("rfabric") / "data" / "prices"))


def available_catalogues() -> list[str]:
    return sorted(p.stem for p in catalogue_dir().glob("*.yaml"))


def load_catalogue(name: str = "mixnet-2025", overrides: Mapping[str, Any] | None = None) -> PriceCatalogue:
    """Load a catalogue by name (or a path to a YAML file) and apply item overrides.

    An override is a number (applies to every rate of a rate-keyed item) or a mapping ``{Gb/s: value}``
    (merged into the item).

    >>> load_catalogue("mixnet-2025", {"ocs_port_usd": 300}).value("ocs_port_usd")
    300.0
    """
    path = Path(name)
    if not (path.suffix in (".yaml", ".yml") and path.is_file()):
        known = available_catalogues()
        if name not in known:
            raise ConfigError("cost.catalogue", f"unknown price catalogue; {suggest(name, known)}", name)
        path = catalogue_dir() / f"{name}.yaml"
    data = read_yaml(path, "cost.catalogue")
    if not isinstance(data, Mapping):
        raise ConfigError("cost.catalogue", "a price catalogue must be a mapping with 'items' and 'power'", str(path))
    items: dict[str, Any] = {}
    power: dict[str, Any] = {}
    for section, table in (("items", items), ("power", power)):
        raw = data.get(section, {})
        if not isinstance(raw, Mapping):
            raise ConfigError(f"cost.catalogue ({path.name}): {section}", "must be a mapping of item -> value", raw)
        for key, v in raw.items():
            table[str(key)] = _price_entry(f"cost.catalogue ({path.name}): {section}.{key}", v)
    for key in ITEM_KEYS:
        if key not in items and key not in power:
            raise ConfigError(f"cost.catalogue ({path.name})", f"catalogue lacks item '{key}'", has_value=False)
    done = []
    for key, v in (overrides or {}).items():
        if key not in ITEM_KEYS:
            raise ConfigError(f"cost.prices.{key}", f"unknown price item; {suggest(key, list(ITEM_KEYS))}", v)
        target = items if key in items else power
        entry = _price_entry(f"cost.prices.{key}", v)
        if isinstance(entry, Mapping):
            merged = dict(target[key]) if isinstance(target[key], Mapping) else {}
            target[key] = {**{float(r): x for r, x in merged.items()}, **entry}
        else:
            target[key] = {r: entry for r in target[key]} if isinstance(target[key], Mapping) else entry
        done.append(key)
    return PriceCatalogue(name=str(data.get("name", path.stem)), date=str(data.get("date", "")), items=items,
                          power=power, sources=dict(data.get("sources", {})), overridden=tuple(done))


def _check_price(key: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ConfigError(key, "must be a non-negative number", v)
    try:
        x = float(v)
    except OverflowError:
        raise ConfigError(key, "number too large", v) from None
    if not math.isfinite(x) or x < 0:
        raise ConfigError(key, "must be a finite non-negative number", v)
    return x


def _price_entry(key: str, v: Any) -> float | dict[float, float]:
    """A price or power entry: a number, or a mapping ``{Gb/s: number}`` (``{400: 5000}``)."""
    if not isinstance(v, Mapping):
        return _check_price(key, v)
    out = {}
    for r, x in v.items():
        rate = r if isinstance(r, int | float) and not isinstance(r, bool) else None
        if isinstance(r, str):
            try:
                rate = float(r)
            except ValueError:
                rate = None
        if rate is None or not math.isfinite(float(rate)) or float(rate) <= 0:
            raise ConfigError(f"{key}.{r}", "a rate key must be a positive number of Gb/s", r)
        out[float(rate)] = _check_price(f"{key}.{r}", x)
    return out


def evaluate(bom: BillOfMaterials, catalogue: PriceCatalogue) -> CostBreakdown:
    """Price every line of a bill of materials (rules in the module docstring)."""
    lines: list[CostLine] = []
    has_gpu = any(ln.part == "gpu" for ln in bom.lines)
    entries = list(bom.lines)
    for ln in entries:
        p, n, rate = ln.part, ln.count, ln.rate_bps
        network = True
        if p == "switch":
            unit = ln.radix * catalogue.value("switch_port_usd", rate)
            unit_w = ln.radix * catalogue.value("switch_port_w", rate)
        elif p in ("nic_port", "transceiver"):
            unit, unit_w = catalogue.value(f"{p}_usd", rate), catalogue.value(f"{p}_w", rate)
        elif p == "dac":
            unit, unit_w = catalogue.value("dac_usd", rate), 0.0
        elif p == "ocs_port":
            unit, unit_w = catalogue.value("ocs_port_usd"), catalogue.value("ocs_port_w")
        elif p == "patch_panel_port":
            unit, unit_w = catalogue.value("patch_panel_port_usd"), 0.0
        elif p == "fibre":
            unit, unit_w = ln.length_m * catalogue.value("fibre_usd_per_m"), 0.0
        elif p in ("gpu", "server"):
            unit, unit_w, network = catalogue.value(f"{p}_usd"), catalogue.value(f"{p}_w"), False
        else:  # switch_port, switch_port_spare, ocs: counted, priced elsewhere
            continue
        lines.append(CostLine(part=p, tier=ln.tier, rate_bps=rate, count=n, unit_usd=unit, total_usd=unit * n,
                              unit_w=unit_w, total_w=unit_w * n, network=network))
    if not has_gpu and bom.num_gpus:
        unit, unit_w = catalogue.value("gpu_usd"), catalogue.value("gpu_w")
        lines.append(CostLine(part="gpu", tier="host", rate_bps=0.0, count=bom.num_gpus, unit_usd=unit,
                              total_usd=unit * bom.num_gpus, unit_w=unit_w, total_w=unit_w * bom.num_gpus, network=False))
    return CostBreakdown(topology=bom.topology, catalogue=catalogue.name, lines=tuple(lines))
