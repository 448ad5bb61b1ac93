"""Configuration: YAML -> frozen dataclasses, human units converted once, every mistake a ``ConfigError``.

Two layers:

* :func:`parse_dataclass` turns a mapping into any frozen dataclass, converting human-unit keys
  (``nic_gbps``) to SI fields (``nic_bps``), checking types and bounds declared in field metadata, and
  rejecting unknown keys with their dotted path and a "did you mean" suggestion. The builder packages
  (``topologies``, ``traffic``, ``solver``) declare their parameter dataclasses and use it too.
* :class:`RunConfig` is the top level of a run. Kind-specific sections (each fabric, the workload, the
  solver) stay raw mappings here; ``rfabric.api`` resolves them against the registries of the packages.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import difflib
import enum
import hashlib
import json
import math
import numbers
import os
import re
import types
import typing
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from rfabric.errors import ConfigError, InvalidArgumentError
from rfabric.units import convert_key, human_key

T = TypeVar("T")

# --------------------------------------------------------------------------------------------------
# Field helpers: bounds live in metadata so the loader can name the key in its message.


def positive(default: Any = dataclasses.MISSING, **kw: Any) -> Any:
    """A field that must be > 0."""
    return field(default=default, metadata={"gt": 0, **kw.pop("metadata", {})}, **kw)


def non_negative(default: Any = dataclasses.MISSING, **kw: Any) -> Any:
    """A field that must be >= 0."""
    return field(default=default, metadata={"ge": 0, **kw.pop("metadata", {})}, **kw)


def bounded(default: Any = dataclasses.MISSING, *, ge: float | None = None, le: float | None = None,
            gt: float | None = None, lt: float | None = None, **kw: Any) -> Any:
    """A numeric field with inclusive (ge/le) or exclusive (gt/lt) bounds."""
    meta = {k: v for k, v in (("ge", ge), ("le", le), ("gt", gt), ("lt", lt)) if v is not None}
    return field(default=default, metadata=meta, **kw)


def choice(default: Any = dataclasses.MISSING, *, choices: Sequence[str], **kw: Any) -> Any:
    """A string field restricted to ``choices``."""
    return field(default=default, metadata={"choices": tuple(choices)}, **kw)


# --------------------------------------------------------------------------------------------------


def suggest(word: str, known: Sequence[str]) -> str:
    """`` (did you mean 'x'?)`` or a list of the known names."""
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    if close:
        return f"did you mean '{close[0]}'?"
    return "known: " + ", ".join(sorted(known)) if known else "nothing is accepted here"


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _check_bounds(value: Any, meta: Mapping[str, Any], path: str) -> None:
    if "choices" in meta and value not in meta["choices"]:
        raise ConfigError(path, f"must be one of {', '.join(map(str, meta['choices']))}; "
                          f"{suggest(str(value), meta['choices'])}", value)
    if not isinstance(value, int | float) or isinstance(value, bool):
        return
    if "gt" in meta and not value > meta["gt"]:
        raise ConfigError(path, f"must be > {meta['gt']}", value)
    if "ge" in meta and not value >= meta["ge"]:
        raise ConfigError(path, f"must be >= {meta['ge']}", value)
    if "lt" in meta and not value < meta["lt"]:
        raise ConfigError(path, f"must be < {meta['lt']}", value)
    if "le" in meta and not value <= meta["le"]:
        raise ConfigError(path, f"must be <= {meta['le']}", value)


def coerce(value: Any, tp: Any, path: str) -> Any:
    """Convert a YAML value to the annotated type ``tp`` or raise ``ConfigError`` naming ``path``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        alternatives = [a for a in args if a is not type(None)]
        if len(alternatives) == 1:  # Optional[X]: X's own error, with its nested key intact
            return coerce(value, alternatives[0], path)
        errors = []
        for a in alternatives:
            try:
                return coerce(value, a, path)
            except ConfigError as e:
                errors.append(e.message)
        raise ConfigError(path, "; ".join(errors) or "invalid value", value)
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(path, f"must be one of {', '.join(map(str, args))}; {suggest(str(value), [str(a) for a in args])}", value)
        return value
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return parse_dataclass(tp, value, path)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        names = [m.value for m in tp]
        if isinstance(value, tp):
            return value
        if isinstance(value, str) and value.lower() in names:
            return tp(value.lower())
        raise ConfigError(path, f"must be one of {', '.join(map(str, names))}; {suggest(str(value), names)}", value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(path, "must be true or false", value)
    if tp is int:
        if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, float) and value.is_integer())):
            raise ConfigError(path, "must be an integer", value)
        return int(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(path, "must be a number", value)
        try:
            v = float(value)
        except OverflowError:
            raise ConfigError(path, "number too large", value) from None
        if v != v:
            raise ConfigError(path, "must be a number, not NaN", value)
        return v
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(path, "must be a string", value)
        return value
    if origin in (tuple, Sequence, list) or tp in (tuple, list):
        if isinstance(value, str | bytes) or not isinstance(value, Sequence):
            raise ConfigError(path, "must be a list", value)
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return tuple(coerce(v, args[0], f"{path}[{i}]") for i, v in enumerate(value))
        if origin is tuple and args:
            if len(args) != len(value):
                raise ConfigError(path, f"must be a list of {len(args)} items", value)
            return tuple(coerce(v, a, f"{path}[{i}]") for i, (v, a) in enumerate(zip(args, value, strict=True)))
        inner = args[0] if args else Any
        return tuple(coerce(v, inner, f"{path}[{i}]") for i, v in enumerate(value))
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise ConfigError(path, "must be a mapping", value)
        vt = args[1] if len(args) == 2 else Any
        return {str(k): coerce(v, vt, _join(path, str(k))) for k, v in value.items()}
    return value


def parse_dataclass(cls: type[T], data: Any, path: str = "") -> T:
    """Build a frozen dataclass ``cls`` from a mapping, converting units and validating every key.

    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True, kw_only=True)
    ... class Link:
    ...     capacity_bps: float = positive(1e9)
    >>> parse_dataclass(Link, {"capacity_gbps": 100}).capacity_bps
    100000000000.0
    >>> parse_dataclass(Link, {"capacity_gbs": 100}, "topology")
    Traceback (most recent call last):
    ...
    rfabric.errors.ConfigError: topology.capacity_gbs = 100: unknown key; did you mean 'capacity_gbps'?
    """
    if data is None:
        data = {}
    if isinstance(data, cls):
        return data
    if not isinstance(data, Mapping):
        raise ConfigError(path or cls.__name__, "must be a mapping of keys to values", data)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    spelled: list[str] = []
    for name in fields:
        spelled.append(name)
        spelled.extend(human_key(name))
    errors: list[ConfigError] = []
    given: list[tuple[str, str, Any, Any]] = []  # (key as written, SI field, converted value, raw value)
    given_as: dict[str, str] = {}
    for raw_key, raw_value in data.items():  # structure first: every unknown or repeated key
        key = str(raw_key)
        kpath = _join(path, key)
        try:
            si_key, value = convert_key(key, raw_value)
        except OverflowError:
            errors.append(ConfigError(kpath, "number too large", raw_value))
            continue
        if si_key not in fields:
            errors.append(ConfigError(kpath, f"unknown key; {suggest(key, spelled)}", raw_value, structural=True))
            continue
        if si_key in given_as:
            errors.append(ConfigError(kpath, f"given twice (also as '{given_as[si_key]}')", raw_value,
                                      structural=True))
            continue
        given_as[si_key] = key
        given.append((key, si_key, value, raw_value))
    for n, f in fields.items():
        if n not in given_as and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            errors.append(ConfigError(_join(path, n), "required key is missing", has_value=False, structural=True))
    kwargs: dict[str, Any] = {}
    for key, si_key, value, raw_value in given:  # then every value
        f = fields[si_key]
        kpath = _join(path, key)
        try:
            v = coerce(value, hints[si_key], kpath)
            _check_bounds(v, f.metadata, kpath)
            if not f.metadata.get("allow_nonfinite", False):
                _check_finite(v, kpath, raw_value)
        except ConfigError as e:
            if e.key == kpath and key != si_key and len(e.errors) == 1:  # report the value as the user wrote it
                errors.append(ConfigError(kpath, e.message, raw_value))
            else:
                errors.append(e)
            continue
        kwargs[si_key] = v
    if errors:
        raise ConfigError.combine(errors)
    try:
        obj = cls(**kwargs)
    except ConfigError as e:
        if path and not e.key.startswith(path):
            raise ConfigError(_join(path, e.key), e.message, e.value) from None
        raise
    return obj


def _check_finite(value: Any, path: str, raw: Any) -> None:
    """Refuse ``inf``/``nan`` (``.inf``, ``1e400``, a unit conversion that overflowed) anywhere in a value."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        v, p = stack.pop()
        if isinstance(v, float) and not math.isfinite(v):
            raise ConfigError(p, "must be a finite number", raw if p == path else v)
        if isinstance(v, Mapping):
            stack.extend((x, _join(p, str(k))) for k, x in v.items())
        elif isinstance(v, tuple | list):
            stack.extend((x, f"{p}[{i}]") for i, x in enumerate(v))


def check_fields(obj: Any) -> None:
    """Check a dataclass built directly in Python (not through :func:`parse_dataclass`): scalar types,
    finiteness and the bounds in field metadata; ``ConfigError`` names the field. Call from ``__post_init__``."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        tp = hints.get(f.name)
        if tp in (int, float, bool, str):
            ok = (isinstance(v, bool) if tp is bool else isinstance(v, str) if tp is str
                  else isinstance(v, numbers.Real) and not isinstance(v, bool) and (tp is float or float(v).is_integer()))
            if not ok:
                raise ConfigError(f.name, f"must be {'an integer' if tp is int else 'a number' if tp is float else tp.__name__}", v)
        if isinstance(v, float) and not math.isfinite(v) and not f.metadata.get("allow_nonfinite", False):
            raise ConfigError(f.name, "must be a finite number", v)
        _check_bounds(v, f.metadata, f.name)


def to_plain(obj: Any) -> Any:
    """A dataclass/enum/tuple tree as plain YAML/JSON-able data (SI field names)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.init}
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, Mapping):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, tuple | list):
        return [to_plain(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalar
        return obj.item()
    return obj


def jsonable(obj: Any) -> Any:
    """Plain data (see :func:`to_plain`) that strict JSON takes: NaN and infinities become ``None``
    (``null``), numpy scalars and arrays become numbers and lists, anything else unknown its ``str``."""
    return _jsonable(obj, 0)


def _jsonable(v: Any, depth: int) -> Any:
    if depth > 200:
        raise InvalidArgumentError("data nested too deeply for JSON")
    if isinstance(v, bool) or v is None or isinstance(v, str | int):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return {f.name: _jsonable(getattr(v, f.name), depth + 1) for f in dataclasses.fields(v) if f.init}
    if isinstance(v, enum.Enum):
        return _jsonable(v.value, depth + 1)
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x, depth + 1) for k, x in v.items()}
    if isinstance(v, tuple | list | set | frozenset):
        return [_jsonable(x, depth + 1) for x in v]
    if hasattr(v, "tolist") and callable(v.tolist):  # numpy array or scalar
        return _jsonable(v.tolist(), depth + 1)
    return str(v)


def dumps_json(obj: Any, **kw: Any) -> str:
    """Strict JSON text of ``obj`` (:func:`jsonable` first; ``allow_nan=False`` guards the result)."""
    return json.dumps(jsonable(obj), allow_nan=False, **kw)


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


ROUTINGS = ("hash", "split", "spray", "adaptive")


@dataclass(frozen=True, kw_only=True, slots=True, init=False)
class SimConfig:
    """Flow-level simulator options (see ``rfabric.sim``).

    ``routing``: ``spray`` (default; every flow spread over all equal-cost paths), ``split`` (the same,
    walked arc by arc: small fabrics), ``hash`` (per-flow ECMP) or ``adaptive`` (least-loaded path per
    GPU pair); see :mod:`rfabric.sim.routing`. ``ecmp`` is the deprecated name of ``routing``: accepted
    as a YAML key and a keyword with a ``FutureWarning``, and readable (``.ecmp`` returns ``routing``).
    """

    routing: str = choice("spray", choices=ROUTINGS)
    merge_tolerance: float = bounded(0.0, ge=0.0, lt=1.0)
    """Drain, at each drain event, the flows that would drain within this fraction of their own duration (0 = exact; 0.01 keeps step times within ~0.03 %, see rfabric.sim.engine)."""
    steps: int = positive(1)
    """RL steps simulated back to back (the iteration time is their mean)."""
    link_latency: bool = True
    """Add each flow's path latency (switch and link hops) to its finish time."""

    def __init__(self, *, routing: str = "spray", merge_tolerance: float = 0.0, steps: int = 1,
                 link_latency: bool = True, ecmp: str | None = None) -> None:
        if ecmp is not None:
            if routing not in ("spray", ecmp):
                raise ConfigError("sim.ecmp", f"conflicts with sim.routing = {routing} (ecmp is the deprecated "
                                  "name of routing: keep only routing)", ecmp)
            _deprecated_ecmp()
            routing = ecmp
        if routing not in ROUTINGS:
            raise ConfigError("sim.routing", f"must be one of {', '.join(ROUTINGS)}; {suggest(routing, ROUTINGS)}",
                              routing)
        for name, value in (("routing", routing), ("merge_tolerance", merge_tolerance), ("steps", steps),
                            ("link_latency", link_latency)):
            object.__setattr__(self, name, value)
        check_fields(self)

    @property
    def ecmp(self) -> str:
        """Deprecated name of :attr:`routing`."""
        return self.routing


def _deprecated_ecmp() -> None:
    warnings.warn("sim.ecmp is deprecated: use sim.routing (hash | split | spray | adaptive)", FutureWarning,
                  stacklevel=4)


def _sim_section(raw: Any) -> Any:
    """``sim`` with the deprecated key ``ecmp`` renamed to ``routing`` (a ``FutureWarning``)."""
    if not isinstance(raw, Mapping) or "ecmp" not in raw:
        return raw
    out = dict(raw)
    ecmp = out.pop("ecmp")
    if ecmp not in ROUTINGS:
        raise ConfigError("sim.ecmp", f"must be one of {', '.join(ROUTINGS)}; {suggest(str(ecmp), ROUTINGS)} "
                          "(ecmp is the deprecated name of sim.routing)", ecmp)
    if "routing" in out and out["routing"] != ecmp:
        raise ConfigError("sim.ecmp", f"conflicts with sim.routing = {out['routing']} (ecmp is the deprecated "
                          "name of routing: keep only routing)", ecmp)
    _deprecated_ecmp()
    out["routing"] = ecmp
    return out


@dataclass(frozen=True, kw_only=True, slots=True)
class CostConfig:
    """Which price catalogue, and item overrides (``prices: {ocs_port_usd: 300}``)."""

    catalogue: str = "mixnet-2025"
    """Price catalogue: a name from ``rfabric/data/prices`` (``mixnet-2025``, ...) or a path to a user catalogue YAML."""
    prices: Mapping[str, Any] = field(default_factory=dict)  # item -> USD/W, or {Gb/s: value}
    """Item overrides of the catalogue: item -> USD (or W), or {Gb/s: value} for rate-keyed items."""
    include_gpus: bool = False
    """Reserved: accepted but not read yet (network capex never includes GPUs; the cluster capex column always does)."""


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


class ErrorList:
    """Collects ``ConfigError`` instances so a whole config is checked in one pass (see ``ConfigError.combine``).

    >>> errs = ErrorList()
    >>> with errs.capture():
    ...     raise ConfigError("a", "bad", 1)
    >>> errs.raise_if_any()
    Traceback (most recent call last):
    ...
    rfabric.errors.ConfigError: a = 1: bad
    """

    def __init__(self) -> None:
        self.items: list[ConfigError] = []

    @contextlib.contextmanager
    def capture(self) -> Iterator[None]:
        try:
            yield
        except ConfigError as e:
            self.items.append(e)

    def raise_if_any(self) -> None:
        if self.items:
            raise ConfigError.combine(self.items)


#: Seeds are fed to numpy's generators, which take 0 <= seed < 2**32 for a plain integer.
MAX_SEED = 2**32 - 1


def parse_seed(value: Any, key: str = "seed") -> int:
    """A seed: an integer in ``0 .. 2**32-1`` (``ConfigError`` on ``key`` otherwise)."""
    seed = coerce(value, int, key)
    if not 0 <= seed <= MAX_SEED:
        raise ConfigError(key, f"must be an integer from 0 to {MAX_SEED}", value)
    return int(seed)


def parse_run_config(data: Any) -> RunConfig:
    """Validate a top-level mapping (already merged with overrides) into a :class:`RunConfig`.

    Every section is checked; all mistakes found are raised together, unknown keys first.
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
            raw = _sim_section(data.get(key)) if key == "sim" else data.get(key)
            parts[key] = parse_dataclass(cls, raw, key)
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
# Files and overrides


#: Deepest nesting of lists/mappings a YAML document may have (a config needs fewer than 10 levels).
MAX_YAML_DEPTH = 64
#: Most values a YAML document may expand to, counting every alias at each use (an alias bomb is refused).
MAX_YAML_VALUES = 200_000

_CORE_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("bool", "int", "float", "null", "timestamp", "value")}


class YamlError(yaml.YAMLError):
    """A document the loader refuses although it is well-formed YAML (duplicate key, too deep, too large)."""

    def __init__(self, problem: str, mark: Any = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.problem_mark = mark


class YamlLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` restricted to the YAML 1.2 core schema, strict about what it accepts.

    * Scalars resolve as in YAML 1.2 core (https://yaml.org/spec/1.2.2/#1032-tag-resolution): only
      ``true``/``false`` are booleans (``yes``/``on`` stay strings), ``0400`` is the decimal 400 (no YAML 1.1
      octal; ``0o400`` is octal), ``1e-3`` is a float, dates stay strings, ``~``/``null``/empty is null.
    * A key given twice in one mapping is an error naming its dotted path (``cluster.trainer_gpus``) and both lines.
    * Nesting deeper than :data:`MAX_YAML_DEPTH` and documents expanding (through aliases) to more than
      :data:`MAX_YAML_VALUES` values are errors, not a ``RecursionError`` or an exhausted memory.
    """

    yaml_implicit_resolvers = {
        ch: [(tag, rx) for tag, rx in resolvers if tag not in _CORE_TAGS]
        for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._depth = 0
        self._values: dict[int, int] = {}

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                mark = self.peek_event().start_mark
                raise YamlError(f"nested more than {MAX_YAML_DEPTH} levels deep (line {mark.line + 1})", mark)
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        self._check_size(node)
        return node

    def _check_size(self, node: Any) -> None:
        """Count values with every alias expanded (children are composed first, so their counts exist)."""
        if isinstance(node, yaml.ScalarNode):
            n = 1
        elif isinstance(node, yaml.SequenceNode):
            n = 1 + sum(self._values.get(id(c), 1) for c in node.value)
        else:
            n = 1 + sum(self._values.get(id(k), 1) + self._values.get(id(v), 1) for k, v in node.value)
        if n > MAX_YAML_VALUES:
            raise YamlError(f"the document expands to more than {MAX_YAML_VALUES:,} values, aliases counted "
                            f"at each use (line {node.start_mark.line + 1})", node.start_mark)
        self._values[id(node)] = n

    def compose_document(self) -> Any:
        node = super().compose_document()
        if node is not None:
            _check_duplicates(node)
        return node

    def construct_yaml_int(self, node: Any) -> int:  # type: ignore[override]
        text = str(self.construct_scalar(node))
        sign = -1 if text.startswith("-") else 1
        digits = text.lstrip("+-")
        if digits.startswith("0o"):
            return sign * int(digits[2:], 8)
        if digits.startswith("0x"):
            return sign * int(digits[2:], 16)
        return sign * int(digits, 10)


def _check_duplicates(root: Any) -> None:
    """Refuse a key given twice in one mapping, naming its dotted path (``cluster.trainer_gpus``,
    ``fabrics[1].kind``) and both lines. Each node is visited once, so an alias is not walked again."""
    seen_nodes: set[int] = set()
    stack: list[tuple[Any, str]] = [(root, "")]
    while stack:
        node, path = stack.pop()
        if id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            stack.extend((c, f"{path}[{i}]") for i, c in reversed(list(enumerate(node.value))))
        elif isinstance(node, yaml.MappingNode):
            seen: dict[Any, Any] = {}
            children = []
            for key, value in node.value:
                if not isinstance(key, yaml.ScalarNode) or key.tag == "tag:yaml.org,2002:merge":
                    children.append((value, path))
                    continue
                kpath = _join(path, _short(key.value))
                ident = (key.tag, key.value)
                if ident in seen:
                    first = seen[ident].start_mark.line + 1
                    raise YamlError(f"key '{kpath}' is given twice (lines {first} and {key.start_mark.line + 1})",
                                    key.start_mark)
                seen[ident] = key
                children.append((value, kpath))
            stack.extend(reversed(children))


YamlLoader.add_constructor("tag:yaml.org,2002:int", YamlLoader.construct_yaml_int)
for _tag, _rx, _first in (
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    ("tag:yaml.org,2002:float", r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
                                r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$", "-+0123456789."),
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
):
    YamlLoader.add_implicit_resolver(_tag, re.compile(_rx), list(_first))


def _short(value: Any, limit: int = 60) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def load_yaml_text(text: str) -> Any:
    """Parse one YAML document with :class:`YamlLoader` (raises ``yaml.YAMLError``)."""
    return yaml.load(text, Loader=YamlLoader)  # noqa: S506 -- a SafeLoader subclass


def _yaml_problem(e: yaml.YAMLError) -> str:
    mark = getattr(e, "problem_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    return f"{where}: {problem}"


def read_yaml(path: str | os.PathLike[str], key: str = "--config") -> Any:
    """Read a YAML file (UTF-8, YAML 1.2 core schema, see :class:`YamlLoader`).

    A missing, non-UTF-8 or malformed file is a ``ConfigError`` on ``key`` naming the file.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(key, "no such file", str(p))
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise ConfigError(key, f"cannot read the file: {e.strerror}", str(p)) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise ConfigError(key, f"not UTF-8 text: byte 0x{raw[e.start]:02x} on line {line} "
                          "(save the file as UTF-8)", str(p)) from None
    try:
        return load_yaml_text(text)
    except yaml.YAMLError as e:
        msg = e.problem if isinstance(e, YamlError) else f"malformed YAML{_yaml_problem(e)}"
        raise ConfigError(key, msg, str(p)) from None


def parse_override(text: str) -> tuple[str, Any]:
    """``"a.b=3"`` -> ``("a.b", 3)``; the value is parsed as YAML (numbers, lists, true/false)."""
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
    """Return a deep copy of ``data`` with ``key`` (dotted; ``fabrics.rfabric.x`` addresses a fabric by
    name, ``fabrics[1].x`` by index) set to ``value``."""
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
    """Apply ``{"dotted.key": value}`` or ``["dotted.key=value", ...]`` to a config mapping (copy)."""
    out: dict[str, Any] = copy.deepcopy(dict(data or {}))
    if not overrides:
        return out
    items = (parse_override(o) for o in overrides) if not isinstance(overrides, Mapping) else overrides.items()
    for k, v in items:
        out = set_dotted(out, k, v)
    return out


def config_hash(data: Any) -> str:
    """A short, stable hash of plain config data (sorted JSON, SHA-256)."""
    blob = json.dumps(to_plain(data), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]
