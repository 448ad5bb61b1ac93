"""The run configuration: a top-level YAML mapping validated into a :class:`RunConfig`.

:func:`parse_run_config` checks every section in one pass (all mistakes raised together as one
``ConfigError``, unknown keys first); the cluster (:class:`ClusterConfig`) and cost sections are parsed
here, the simulator's by :func:`rfabric.sim.options.parse_sim_options`. Kind-specific sections (each
fabric, the workload, the solver) stay raw mappings here; ``rfabric.api`` resolves them against the
registries of the packages. :func:`merge_overrides` applies ``--set dotted.key=value`` overrides.

The generic machinery (dataclass parsing, field bounds, strict YAML and JSON) is :mod:`rfabric.parsing`;
its names, and :class:`~rfabric.sim.options.SimConfig`, are re-exported here for existing imports.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from rfabric.errors import ConfigError
from rfabric.parsing import (
    MAX_YAML_DEPTH,
    MAX_YAML_VALUES,
    ErrorList,
    YamlError,
    YamlLoader,
    bounded,
    check_fields,
    choice,
    coerce,
    dumps_json,
    jsonable,
    load_yaml_text,
    non_negative,
    parse_dataclass,
    positive,
    read_yaml,
    suggest,
    to_plain,
)
from rfabric.sim.options import ROUTINGS, SimConfig, parse_sim_options
from rfabric.units import convert_key

__all__ = [
    # this module
    "MAX_GPUS", "MAX_SEED", "ClusterConfig", "CostConfig", "FabricEntry", "RunConfig", "config_hash",
    "merge_overrides", "parse_override", "parse_run_config", "parse_seed", "set_dotted",
    # re-exported: rfabric.parsing
    "MAX_YAML_DEPTH", "MAX_YAML_VALUES", "ErrorList", "YamlError", "YamlLoader", "bounded", "check_fields",
    "choice", "coerce", "dumps_json", "jsonable", "load_yaml_text", "non_negative", "parse_dataclass",
    "positive", "read_yaml", "suggest", "to_plain",
    # re-exported: rfabric.sim.options
    "ROUTINGS", "SimConfig", "parse_sim_options",
]


# --------------------------------------------------------------------------------------------------
# The run configuration


#: Largest cluster accepted (trainer + rollout GPUs): 8x the largest experiment (16,384 GPUs); a guard
#: against inputs like 10**12 GPUs that would otherwise end in a MemoryError, not a measured capacity.
MAX_GPUS = 131_072


@dataclass(frozen=True, kw_only=True, slots=True)
class ClusterConfig:
    """The GPUs: a disaggregated RL cluster of trainer GPUs and rollout GPUs.

    *Logical* GPU ids ``0 .. trainer_gpus-1`` train, ``trainer_gpus .. gpus-1`` generate; servers are
    ``gpus_per_server`` consecutive logical ids. ``placement`` says which *physical* server slot (the order in
    which the fabric builders attach servers to ToRs and pods) each logical server takes
    (:meth:`gpu_placement`):

    * ``contiguous``: the identity -- trainer servers under the first ToRs/pods, rollout servers after them
      (disjoint switches wherever the sizes allow);
    * ``interleaved``: trainer and rollout servers alternate evenly over the slots (Bresenham spacing), so
      every ToR holds both clusters in proportion;
    * ``fragmented``: contiguous, then ``placement_fraction`` of the servers (chosen with
      ``placement_seed``) swap slots at random among themselves, as a busy cluster scheduler hands out
      whatever is free.

    ``split: auto`` lets :func:`rfabric.api.run` choose ``trainer_gpus`` / ``rollout_gpus`` (whole servers,
    same total) minimising the estimated steady-state period; ``explicit`` (default) takes them as given.
    """

    trainer_gpus: int = positive(64)
    """GPUs that train (whole servers)."""
    rollout_gpus: int = non_negative(64)
    """GPUs that generate (whole servers; 0 only for a ``collective`` workload)."""
    gpus_per_server: int = positive(8)
    """GPUs per server, joined by NVLink."""
    nic_bps: float = positive(400e9)
    """Network bandwidth of one GPU's NIC, each direction."""
    nvlink_bps: float = positive(3200e9)  # per GPU, each direction (H800: 400 GB/s)
    nic_latency_s: float = non_negative(1e-6)
    """Latency of the GPU-NIC hop (PCIe) of every path."""
    placement: str = choice("contiguous", choices=("contiguous", "interleaved", "fragmented"))
    """Which physical server slot each logical server takes: ``contiguous``, ``interleaved`` (trainer and rollout servers alternate) or ``fragmented`` (``placement_fraction`` of the servers swapped at random)."""
    placement_seed: int = non_negative(0)
    placement_fraction: float = bounded(0.25, ge=0.0, le=1.0)
    split: str = choice("explicit", choices=("explicit", "auto"))
    """``explicit``: take ``trainer_gpus`` / ``rollout_gpus`` as given; ``auto``: choose them (whole servers, same total) for the shortest estimated steady-state period."""

    @property
    def gpus(self) -> int:
        return self.trainer_gpus + self.rollout_gpus

    def server_slots(self) -> Any:
        """Physical server slot of every logical server (int64 array of length ``gpus // gpus_per_server``)."""
        import numpy as np

        n_t = self.trainer_gpus // self.gpus_per_server
        n = self.gpus // self.gpus_per_server
        if self.placement == "contiguous" or n == 0:
            return np.arange(n, dtype=np.int64)
        if self.placement == "interleaved":
            # slot s is a trainer slot when floor((s + 1) n_t / n) steps up: n_t trainer slots spread evenly
            s = np.arange(n, dtype=np.int64)
            is_t = ((s + 1) * n_t) // n > (s * n_t) // n
            return np.concatenate([s[is_t], s[~is_t]])
        rng = np.random.default_rng(self.placement_seed)
        slots = np.arange(n, dtype=np.int64)
        moved = rng.choice(n, size=int(round(self.placement_fraction * n)), replace=False)
        slots[moved] = slots[rng.permutation(moved)]
        return slots

    def gpu_placement(self) -> Any:
        """Physical GPU id of every logical GPU (int64 array of length ``gpus``), from :meth:`server_slots`."""
        import numpy as np

        g = np.arange(self.gpus, dtype=np.int64)
        return self.server_slots()[g // self.gpus_per_server] * self.gpus_per_server + g % self.gpus_per_server

    def __post_init__(self) -> None:
        check_fields(self)
        if self.gpus > MAX_GPUS:  # refused up front: building such a fabric exhausts memory long before a result
            key = "cluster.trainer_gpus" if self.trainer_gpus >= self.rollout_gpus else "cluster.rollout_gpus"
            raise ConfigError(key, f"the cluster would have {self.gpus:,} GPUs; at most {MAX_GPUS:,} are accepted",
                              getattr(self, key.split(".")[1]))
        for key in ("trainer_gpus", "rollout_gpus"):
            n = getattr(self, key)
            if n % self.gpus_per_server:
                raise ConfigError(f"cluster.{key}", f"must be a multiple of cluster.gpus_per_server "
                                  f"({self.gpus_per_server}): GPUs come in whole servers", n)


@dataclass(frozen=True, kw_only=True, slots=True)
class CostConfig:
    """Which price catalogue, and item overrides (``prices: {ocs_port_usd: 300}``)."""

    catalogue: str = "mixnet-2025"
    """Price catalogue: a name from ``rfabric/data/prices`` (``mixnet-2025``, ...) or a path to a user catalogue YAML."""
    prices: Mapping[str, Any] = field(default_factory=dict)  # item -> USD/W, or {Gb/s: value}
    """Item overrides of the catalogue: item -> USD (or W), or {Gb/s: value} for rate-keyed items."""
    include_gpus: bool = False
    """Must stay false: ``perf_per_usd`` is per network USD; the ``capex_cluster_usd`` / ``perf_per_cluster_usd_vs_ref`` columns price GPUs and servers (true is refused, not silently ignored)."""

    def __post_init__(self) -> None:
        check_fields(self)
        if self.include_gpus:
            raise ConfigError("cost.include_gpus", "is not a switch: perf_per_usd is per network USD, and the "
                              "columns capex_cluster_usd and perf_per_cluster_usd_vs_ref always include GPUs and "
                              "servers; drop the key and read those", True)


@dataclass(frozen=True, kw_only=True, slots=True)
class FabricEntry:
    """One fabric to compare: a display name, the builder ``kind`` and its parameters (raw)."""

    name: str
    kind: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True, slots=True)
class RunConfig:
    """The whole run: cluster, workload, fabrics to compare, solver, simulator, cost, seed.

    The kind-specific sections (``workload``, ``topology``, each fabric's ``params``, ``solver``) are kept
    as written, so the config round-trips to YAML; their typed form is :attr:`resolved`.

    Attributes
    ----------
    resolved : rfabric.api.Resolved or None
        Every kind-specific section parsed once into its package's type (fabric parameters per fabric,
        :class:`solver.SolverOptions`, the price catalogue), attached by :func:`rfabric.api.load_config`.
        Not an argument and not part of equality or of the config's data: a RunConfig built directly, or
        derived with :func:`dataclasses.replace`, has None, and :func:`rfabric.api.resolved` parses it once
        on first use.
    """

    seed: int = 0
    """Seed of every random choice of the run (response lengths, placement, solver tie-breaks): 0 .. 2**32-1."""
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    workload: Mapping[str, Any] = field(default_factory=dict)
    """What runs on the cluster: a mapping with ``kind`` (``rl_step`` or ``collective``) and that kind's keys (sections below)."""
    topology: Mapping[str, Any] = field(default_factory=dict)
    """Fabric parameters shared by every fabric that takes them (e.g. ``switch_radix``); a fabric's own entry overrides them."""
    fabrics: tuple[FabricEntry, ...] = ()
    """The fabrics to compare: builder names (``fat_tree``) or mappings ``{name, kind, <topology keys>}``."""
    reference: str = ""
    """Name of the fabric the others are compared against (default: the first)."""
    solver: Mapping[str, Any] = field(default_factory=dict)
    """How OCS circuits are chosen per phase (section ``solver`` below)."""
    sim: SimConfig = field(default_factory=SimConfig)
    cost: CostConfig = field(default_factory=CostConfig)
    name: str = "run"
    """Name of the run (in result files)."""
    resolved: Any = field(default=None, init=False, repr=False, compare=False)


_TOP_KEYS = [f.name for f in dataclasses.fields(RunConfig) if f.init]


def _parse_fabrics(raw: Any) -> tuple[FabricEntry, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, Sequence) or isinstance(raw, str | bytes):
        raise ConfigError("fabrics", "must be a list of fabric names or {name, kind, ...} mappings", raw)
    out = []
    for i, item in enumerate(raw):
        p = f"fabrics[{i}]"
        if isinstance(item, str):
            out.append(FabricEntry(name=item, kind=item))
            continue
        if not isinstance(item, Mapping):
            raise ConfigError(p, "must be a fabric name or a mapping with 'kind'", item)
        item = dict(item)
        kind = item.pop("kind", None)
        name = item.pop("name", None) or kind
        if not isinstance(kind, str):
            raise ConfigError(f"{p}.kind", "required: the topology builder to use", kind)
        if not isinstance(name, str):
            raise ConfigError(f"{p}.name", "must be a string", name)
        out.append(FabricEntry(name=name, kind=kind, params=item))
    names = [f.name for f in out]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ConfigError("fabrics", f"fabric names must be unique; repeated: {', '.join(sorted(dup))}")
    return tuple(out)


#: Seeds are fed to numpy's generators, which take 0 <= seed < 2**32 for a plain integer.
MAX_SEED = 2**32 - 1


def parse_seed(value: Any, key: str = "seed") -> int:
    """A seed: an integer in ``0 .. 2**32-1`` (numpy's generators take a plain integer below 2**32).

    >>> parse_seed(7.0)
    7

    Parameters
    ----------
    value : Any
        The value as written: an integer, or a float holding one (not a bool or a string).
    key : str
        Dotted key for the message.

    Returns
    -------
    int

    Raises
    ------
    ConfigError
        On ``key``: not an integer, or outside ``0 .. MAX_SEED``.
    """
    seed = coerce(value, int, key)
    if not 0 <= seed <= MAX_SEED:
        raise ConfigError(key, f"must be an integer from 0 to {MAX_SEED}", value)
    return int(seed)


def parse_run_config(data: Any) -> RunConfig:
    """Validate a top-level mapping (already merged with overrides) into a :class:`RunConfig`.

    Every section is checked; all mistakes found are raised together, unknown keys first. The cluster and
    cost sections are parsed here, the ``sim`` section by :func:`rfabric.sim.options.parse_sim_options`; the
    kind-specific sections are kept raw (:func:`rfabric.api.resolve` parses them).

    Parameters
    ----------
    data : Mapping or None
        The run config as plain data (human-unit keys such as ``nic_gbps`` allowed); None for all defaults.

    Returns
    -------
    RunConfig
        Without :attr:`RunConfig.resolved` (see :func:`rfabric.api.load_config`).

    Raises
    ------
    ConfigError
        Naming every offending dotted key (one :class:`~rfabric.errors.ConfigErrors` when several).
    """
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError("(top level)", "a run config must be a mapping of sections", type(data).__name__)
    errs = ErrorList()
    for k in data:
        if k not in _TOP_KEYS:
            errs.items.append(ConfigError(str(k), f"unknown section; {suggest(str(k), _TOP_KEYS)}", has_value=False,
                                          structural=True))
    for k in ("workload", "topology", "solver"):
        if k in data and data[k] is not None and not isinstance(data[k], Mapping):
            errs.items.append(ConfigError(k, "must be a mapping", data[k], structural=True))
    parts: dict[str, Any] = {}
    with errs.capture():
        parts["fabrics"] = _parse_fabrics(data.get("fabrics"))
    with errs.capture():
        parts["seed"] = parse_seed(data.get("seed", 0))
    with errs.capture():
        parts["name"] = coerce(data.get("name", "run"), str, "name")
    for key, cls in (("cluster", ClusterConfig), ("sim", SimConfig), ("cost", CostConfig)):
        with errs.capture():
            parts[key] = parse_sim_options(data.get(key), key) if key == "sim" else parse_dataclass(cls, data.get(key), key)
    fabrics = parts.get("fabrics", ())
    reference = data.get("reference") or (fabrics[0].name if fabrics else "")
    if fabrics and reference not in [f.name for f in fabrics]:
        errs.items.append(ConfigError("reference", "must name one of the fabrics; "
                                      f"{suggest(str(reference), [f.name for f in fabrics])}", reference))
    errs.raise_if_any()
    return RunConfig(
        seed=parts["seed"],
        name=parts["name"],
        cluster=parts["cluster"],
        workload=dict(data.get("workload") or {}),
        topology=dict(data.get("topology") or {}),
        fabrics=fabrics,
        reference=str(reference),
        solver=dict(data.get("solver") or {}),
        sim=parts["sim"],
        cost=parts["cost"],
    )


# --------------------------------------------------------------------------------------------------
# Overrides


def parse_override(text: str) -> tuple[str, Any]:
    """``"a.b=3"`` -> ``("a.b", 3)``; the value is parsed as YAML (numbers, lists, true/false).

    >>> parse_override("cluster.nic_gbps=200")
    ('cluster.nic_gbps', 200)

    Parameters
    ----------
    text : str
        ``dotted.key=value``; a value that is not valid YAML is kept as its text.

    Returns
    -------
    key : str
    value : Any

    Raises
    ------
    ConfigError
        On ``--set``: no ``=``, or an empty key part.
    """
    if "=" not in text:
        raise ConfigError("--set", "expected dotted.key=value", text)
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError("--set", "expected dotted.key=value", text)
    try:
        value = load_yaml_text(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key, value


def set_dotted(data: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``data`` with ``key`` set to ``value``.

    ``fabrics.rfabric.x`` addresses a list entry by its ``name`` (or ``kind``), ``fabrics[1].x`` by index; a
    fabric written as a bare name becomes ``{name, kind}`` first. Setting a key removes its other unit
    spellings (``nic_bps`` when setting ``nic_gbps``).

    >>> set_dotted({"fabrics": ["fat_tree"]}, "fabrics.fat_tree.switch_radix", 16)
    {'fabrics': [{'name': 'fat_tree', 'kind': 'fat_tree', 'switch_radix': 16}]}

    Parameters
    ----------
    data : dict
        Plain config data (not changed).
    key : str
        Dotted key.
    value : Any

    Returns
    -------
    dict

    Raises
    ------
    ConfigError
        On ``key``: a bad or out-of-range list index, no list entry of that name, or a part inside a value
        that is not a mapping.
    """
    out = copy.deepcopy(data)
    parts = key.split(".")
    node: Any = out
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        idx = None
        if part.endswith("]") and "[" in part:
            part, _, rest = part.partition("[")
            try:
                idx = int(rest[:-1])
            except ValueError:
                raise ConfigError(key, "bad list index", part) from None
        if isinstance(node, list):
            # address a list element by its name (fabrics.rfabric.eps_fraction)
            match = [j for j, el in enumerate(node) if (el == part) or (isinstance(el, dict) and el.get("name", el.get("kind")) == part)]
            if not match:
                names = [el if isinstance(el, str) else str(el.get("name", el.get("kind"))) for el in node]
                raise ConfigError(key, f"no list entry named '{part}'; {suggest(part, names)}", has_value=False)
            j = match[0]
            if isinstance(node[j], str):
                node[j] = {"name": node[j], "kind": node[j]}
            if last:
                node[j] = value
                return out
            node = node[j]
            continue
        if not isinstance(node, dict):
            raise ConfigError(key, f"'{part}' is inside a value that is not a mapping", has_value=False)
        if idx is not None:
            lst = node.get(part)
            if not isinstance(lst, list) or not -len(lst) <= idx < len(lst):
                raise ConfigError(key, "list index out of range", idx)
            if isinstance(lst[idx], str):
                lst[idx] = {"name": lst[idx], "kind": lst[idx]}
            if last:
                lst[idx] = value
                return out
            node = lst[idx]
            continue
        if last:
            _drop_aliases(node, part)
            node[part] = value
        else:
            nxt = node.get(part)
            if nxt is None:
                nxt = node[part] = {}
            node = nxt
    return out


def _drop_aliases(node: dict[str, Any], key: str) -> None:
    """Remove the other spellings of ``key``'s field (``nic_bps`` when setting ``nic_gbps``): an override
    replaces the value whatever unit it was written in."""
    try:
        si = convert_key(key, 0)[0]
        for other in [k for k in node if isinstance(k, str) and k != key and convert_key(k, 0)[0] == si]:
            del node[other]
    except OverflowError:  # pragma: no cover - convert_key(_, 0) cannot overflow
        pass


def merge_overrides(data: Mapping[str, Any] | None, overrides: Mapping[str, Any] | Sequence[str] | None) -> dict[str, Any]:
    """Apply ``{"dotted.key": value}`` or ``["dotted.key=value", ...]`` to a config mapping (a copy).

    Parameters
    ----------
    data : Mapping or None
        Plain config data (not changed).
    overrides : Mapping or Sequence of str, optional
        Applied in order with :func:`set_dotted` (strings through :func:`parse_override`).

    Returns
    -------
    dict

    Raises
    ------
    ConfigError
        As :func:`parse_override` and :func:`set_dotted`.
    """
    out: dict[str, Any] = copy.deepcopy(dict(data or {}))
    if not overrides:
        return out
    items = (parse_override(o) for o in overrides) if not isinstance(overrides, Mapping) else overrides.items()
    for k, v in items:
        out = set_dotted(out, k, v)
    return out


def config_hash(data: Any) -> str:
    """A short, stable hash of plain config data: the first 12 hex digits of SHA-256 over sorted, compact JSON.

    Parameters
    ----------
    data : Any
        Plain data or dataclasses (:func:`~rfabric.parsing.to_plain` first).

    Returns
    -------
    str
        12 hexadecimal characters.
    """
    blob = json.dumps(to_plain(data), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]
