"""Generic parsing: YAML files -> plain data -> frozen dataclasses, every mistake a ``ConfigError``.

* :func:`parse_dataclass` turns a mapping into any frozen dataclass, converting human-unit keys
  (``nic_gbps``) to SI fields (``nic_bps``), checking types and bounds declared in field metadata
  (:func:`positive`, :func:`non_negative`, :func:`bounded`, :func:`choice`), and rejecting unknown keys
  with their dotted path and a "did you mean" suggestion (:func:`suggest`). Every package declares its
  parameter dataclasses with these helpers (``topologies``, ``traffic``, ``solver``, :mod:`rfabric.sim.options`).
* :func:`to_plain`, :func:`jsonable` and :func:`dumps_json` turn such dataclasses back into plain and
  strict-JSON data.
* :func:`read_yaml` / :func:`load_yaml_text` read YAML 1.2 core-schema documents strictly
  (:class:`YamlLoader`: duplicate keys, depth and alias expansion bounded).

Nothing here knows what a run is: that is :mod:`rfabric.config`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import enum
import json
import math
import numbers
import os
import re
import types
import typing
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import field
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
    """``did you mean 'x'?`` for the closest known name (difflib ratio >= 0.6), else the list of known names.

    >>> suggest("fat_tre", ["fat_tree", "rfabric"])
    "did you mean 'fat_tree'?"

    Parameters
    ----------
    word : str
        What was given.
    known : Sequence of str
        What is accepted.

    Returns
    -------
    str
    """
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
    """Convert a YAML value to the annotated type ``tp`` (scalars, ``X | None``, tuples, lists, mappings,
    literals, enums and nested dataclasses).

    Parameters
    ----------
    value : Any
        The value as parsed from YAML.
    tp : type
        A field's resolved annotation.
    path : str
        Dotted key for messages.

    Returns
    -------
    Any
        ``value`` as ``tp`` (an int given for a float field becomes a float).

    Raises
    ------
    ConfigError
        On ``path``: the value does not have (and cannot be read as) the type, or is not finite.
    """
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

    Human-unit keys (``capacity_gbps``) are converted once to the SI field (``capacity_bps``,
    :func:`rfabric.units.convert_key`); a key given in two spellings, an unknown key, a wrong type or a value
    outside the field's bounds (:func:`positive`, :func:`non_negative`, :func:`bounded`, :func:`choice`) is an
    error naming its dotted path.

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

    Parameters
    ----------
    cls : type
        A dataclass whose fields are all keyword arguments.
    data : Mapping, cls or None
        The section as written; an instance of ``cls`` is returned as it is; None means every default.
    path : str
        Dotted path of the section, prefixed to every key in messages.

    Returns
    -------
    cls

    Raises
    ------
    ConfigError
        Naming ``path.<key>``; several mistakes of one section together (unknown keys first).
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
    finiteness and the bounds in field metadata. Call from ``__post_init__``.

    Parameters
    ----------
    obj : dataclass instance

    Raises
    ------
    ConfigError
        Naming the field: a wrong scalar type, a non-finite float (unless the field's metadata has
        ``allow_nonfinite``), or a value outside its bounds or choices.
    """
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
    """A dataclass/enum/tuple tree as plain YAML/JSON-able data (SI field names).

    Parameters
    ----------
    obj : Any
        Dataclasses (their ``init`` fields), enums (their value), mappings, tuples, lists and numpy scalars
        are converted recursively; anything else is returned as it is.

    Returns
    -------
    Any
    """
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
    (``null``), numpy scalars and arrays become numbers and lists, anything else unknown its ``str``.

    >>> jsonable({"a": float("nan"), "b": (1, 2.5)})
    {'a': None, 'b': [1, 2.5]}

    Parameters
    ----------
    obj : Any

    Returns
    -------
    Any

    Raises
    ------
    InvalidArgumentError
        Data nested more than 200 levels deep.
    """
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
    """Strict JSON text of ``obj`` (:func:`jsonable` first; ``allow_nan=False`` guards the result).

    Parameters
    ----------
    obj : Any
    **kw
        Passed to :func:`json.dumps` (``indent``, ``sort_keys``, ...).

    Returns
    -------
    str
    """
    return json.dumps(jsonable(obj), allow_nan=False, **kw)


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
    """Parse one YAML document with :class:`YamlLoader` (YAML 1.2 core schema, strict).

    Parameters
    ----------
    text : str

    Returns
    -------
    Any
        Plain data (mappings, lists, str, int, float, bool, None).

    Raises
    ------
    yaml.YAMLError
        Malformed YAML, or a :class:`YamlError` (duplicate key, too deep, too many values).
    """
    return yaml.load(text, Loader=YamlLoader)  # noqa: S506 -- a SafeLoader subclass


def _yaml_problem(e: yaml.YAMLError) -> str:
    mark = getattr(e, "problem_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    return f"{where}: {problem}"


def read_yaml(path: str | os.PathLike[str], key: str = "--config") -> Any:
    """Read a YAML file (UTF-8, YAML 1.2 core schema, see :class:`YamlLoader`).

    Parameters
    ----------
    path : str or os.PathLike
    key : str
        The key or option named in errors (``--config``, ``base``, ...).

    Returns
    -------
    Any
        The document as plain data (None for an empty file).

    Raises
    ------
    ConfigError
        On ``key``, naming the file: missing, unreadable, not UTF-8 (with the line), or malformed YAML
        (with line and column).
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
