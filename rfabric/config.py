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

import copy
import dataclasses
import difflib
import enum
import hashlib
import json
import os
import re
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from rfabric.errors import ConfigError
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
        v = float(value)
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
    kwargs: dict[str, Any] = {}
    given_as: dict[str, str] = {}
    for raw_key, raw_value in data.items():
        key = str(raw_key)
        si_key, value = convert_key(key, raw_value)
        if si_key not in fields:
            raise ConfigError(_join(path, key), f"unknown key; {suggest(key, spelled)}", raw_value)
        if si_key in kwargs:
            raise ConfigError(_join(path, key), f"given twice (also as '{given_as[si_key]}')", raw_value)
        f = fields[si_key]
        kpath = _join(path, key)
        try:
            v = coerce(value, hints[si_key], kpath)
            _check_bounds(v, f.metadata, kpath)
        except ConfigError as e:
            if e.key == kpath and key != si_key:  # report the value as the user wrote it
                raise ConfigError(kpath, e.message, raw_value) from None
            raise
        kwargs[si_key] = v
        given_as[si_key] = key
    missing = [n for n, f in fields.items()
               if n not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(_join(path, missing[0]), "required key is missing", has_value=False)
    try:
        obj = cls(**kwargs)
    except ConfigError as e:
        if path and not e.key.startswith(path):
            raise ConfigError(_join(path, e.key), e.message, e.value) from None
        raise
    return obj


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


# --------------------------------------------------------------------------------------------------
# The run configuration


@dataclass(frozen=True, kw_only=True, slots=True)
class ClusterConfig:
    """The GPUs: a disaggregated RL cluster of trainer GPUs followed by rollout GPUs.

    GPU ids ``0 .. trainer_gpus-1`` train, ``trainer_gpus .. gpus-1`` generate.
    """

    trainer_gpus: int = positive(64)
    rollout_gpus: int = non_negative(64)
    gpus_per_server: int = positive(8)
    nic_bps: float = positive(400e9)
    nvlink_bps: float = positive(3200e9)  # per GPU, each direction (H800: 400 GB/s)
    nic_latency_s: float = non_negative(1e-6)

    @property
    def gpus(self) -> int:
        return self.trainer_gpus + self.rollout_gpus

    def __post_init__(self) -> None:
        for key in ("trainer_gpus", "rollout_gpus"):
            n = getattr(self, key)
            if n % self.gpus_per_server:
                raise ConfigError(f"cluster.{key}", f"must be a multiple of cluster.gpus_per_server "
                                  f"({self.gpus_per_server}): GPUs come in whole servers", n)


@dataclass(frozen=True, kw_only=True, slots=True)
class SimConfig:
    """Flow-level simulator options (see ``rfabric.sim``)."""

    ecmp: str = choice("hash", choices=("hash", "split"))
    merge_tolerance: float = bounded(0.0, ge=0.0, lt=1.0)
    steps: int = positive(1)
    link_latency: bool = True


@dataclass(frozen=True, kw_only=True, slots=True)
class CostConfig:
    """Which price catalogue, and item overrides (``prices: {ocs_port_usd: 300}``)."""

    catalogue: str = "mixnet-2025"
    prices: Mapping[str, float] = field(default_factory=dict)
    include_gpus: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class FabricEntry:
    """One fabric to compare: a display name, the builder ``kind`` and its parameters (raw)."""

    name: str
    kind: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True, slots=True)
class RunConfig:
    """The whole run: cluster, workload, fabrics to compare, solver, simulator, cost, seed."""

    seed: int = 0
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    workload: Mapping[str, Any] = field(default_factory=dict)
    topology: Mapping[str, Any] = field(default_factory=dict)
    fabrics: tuple[FabricEntry, ...] = ()
    reference: str = ""
    solver: Mapping[str, Any] = field(default_factory=dict)
    sim: SimConfig = field(default_factory=SimConfig)
    cost: CostConfig = field(default_factory=CostConfig)
    name: str = "run"


_TOP_KEYS = [f.name for f in dataclasses.fields(RunConfig)]


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


def parse_run_config(data: Any) -> RunConfig:
    """Validate a top-level mapping (already merged with overrides) into a :class:`RunConfig`."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError("(top level)", "a run config must be a mapping of sections", type(data).__name__)
    for k in data:
        if k not in _TOP_KEYS:
            raise ConfigError(str(k), f"unknown section; {suggest(str(k), _TOP_KEYS)}", has_value=False)
    for k in ("workload", "topology", "solver"):
        if k in data and data[k] is not None and not isinstance(data[k], Mapping):
            raise ConfigError(k, "must be a mapping", data[k])
    fabrics = _parse_fabrics(data.get("fabrics"))
    reference = data.get("reference") or (fabrics[0].name if fabrics else "")
    if fabrics and reference not in [f.name for f in fabrics]:
        raise ConfigError("reference", f"must name one of the fabrics; {suggest(str(reference), [f.name for f in fabrics])}", reference)
    return RunConfig(
        seed=coerce(data.get("seed", 0), int, "seed"),
        name=coerce(data.get("name", "run"), str, "name"),
        cluster=parse_dataclass(ClusterConfig, data.get("cluster"), "cluster"),
        workload=dict(data.get("workload") or {}),
        topology=dict(data.get("topology") or {}),
        fabrics=fabrics,
        reference=str(reference),
        solver=dict(data.get("solver") or {}),
        sim=parse_dataclass(SimConfig, data.get("sim"), "sim"),
        cost=parse_dataclass(CostConfig, data.get("cost"), "cost"),
    )


# --------------------------------------------------------------------------------------------------
# Files and overrides


class YamlLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` with YAML 1.2 floats: ``1e-3`` and ``5E14`` are numbers, not strings."""


YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def load_yaml_text(text: str) -> Any:
    return yaml.load(text, Loader=YamlLoader)  # noqa: S506 -- a SafeLoader subclass


def read_yaml(path: str | os.PathLike[str]) -> Any:
    """Read a YAML file; a missing or malformed file is a ``ConfigError`` naming it."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError("--config", "no such file", str(p))
    try:
        return load_yaml_text(p.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError("--config", f"malformed YAML{where}: {problem}", str(p)) from None


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
            node[part] = value
        else:
            nxt = node.get(part)
            if nxt is None:
                nxt = node[part] = {}
            node = nxt
    return out


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
