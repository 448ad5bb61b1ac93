"""The configuration reference: every key of a run config with its type, unit, default and meaning, generated
from the dataclasses the loader parses (``rfabric config --reference``, ``docs/config.md``).

Nothing here is written by hand: a key's YAML spelling and unit come from :mod:`rfabric.units` (the SI field
``nic_bps`` is written ``nic_gbps`` in Gb/s), its type and default from the dataclass field, its accepted
range from the field metadata the loader checks, and its meaning from the class documentation -- the
numpydoc ``Attributes`` entry of the field, else the comment on the field's line, else the sentences of the
class docstring that name the key.
"""

from __future__ import annotations

import ast
import dataclasses
import enum
import functools
import inspect
import math
import re
import textwrap
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rfabric.units import HUMAN_SUFFIXES


@dataclass(frozen=True, slots=True)
class KeyDoc:
    """One documented key: dotted YAML path (as a user writes it), type, unit, default, accepted values,
    other spellings, meaning."""

    key: str
    type: str
    unit: str
    default: str
    allowed: str
    aliases: tuple[str, ...]
    meaning: str


@dataclass(frozen=True, slots=True)
class Section:
    """A group of keys under one heading (a config section or one ``kind`` of it)."""

    title: str
    intro: str
    keys: tuple[KeyDoc, ...]


#: unit shown for each human suffix
_UNIT_NAMES = {"_kbps": "kb/s", "_mbps": "Mb/s", "_gbps": "Gb/s", "_tbps": "Tb/s", "_ns": "ns", "_us": "µs",
               "_ms": "ms", "_kb": "kB", "_mb": "MB", "_gb": "GB", "_tb": "TB", "_kib": "KiB", "_mib": "MiB",
               "_gib": "GiB", "_tflops": "TFLOP/s", "_pflops": "PFLOP/s", "_kw": "kW"}
_SI_UNITS = {"_bps": "b/s", "_s": "s", "_bytes": "B", "_flops": "FLOP/s", "_w": "W", "_usd": "USD",
             "_bytes_per_s": "B/s", "_m": "m"}
#: preferred human spelling of an SI suffix (the one the shipped configs use)
_PREFERRED = {"_bps": "_gbps", "_flops": "_tflops"}


def _spelling(name: str, default: Any) -> tuple[str, str, float, tuple[str, ...]]:
    """(YAML key, unit, factor SI -> shown, other spellings) of an SI field ``name``."""
    human = [(sfx, si, f) for sfx, (si, f) in HUMAN_SUFFIXES.items() if name.endswith(si)
             and not name.endswith("_bytes_per_s")]
    if not human:
        for si, unit in sorted(_SI_UNITS.items(), key=lambda kv: -len(kv[0])):
            if name.endswith(si):
                return name, unit, 1.0, ()
        return name, "", 1.0, ()
    si = human[0][1]
    stem = name[: -len(si)]
    pick = _PREFERRED.get(si)
    if pick is None:  # times and sizes: the unit in which the default reads best
        d = abs(float(default)) if isinstance(default, int | float) and not isinstance(default, bool) else 0.0
        decimal = [(sfx, si_, f) for sfx, si_, f in human if not sfx.endswith("ib")]
        ranked = [(sfx, f) for sfx, _, f in decimal if d == 0 or d / f >= 1]
        pick = max(ranked, key=lambda t: t[1])[0] if d and ranked else ("_ms" if si == "_s" else "_mb")
        if si == "_s" and d >= 1:
            return name, "s", 1.0, tuple(stem + sfx for sfx, _, _ in human)
        if si == "_bytes" and d and d == 2 ** round(math.log2(d)) and d >= 2**10:
            pick = next((sfx for sfx in ("_gib", "_mib", "_kib") if d >= HUMAN_SUFFIXES[sfx][1]), pick)
    factor = HUMAN_SUFFIXES[pick][1]
    others = tuple(x for x in [name, *(stem + sfx for sfx, _, _ in human)] if x != stem + pick)
    return stem + pick, _UNIT_NAMES[pick], factor, others


def _type_name(tp: Any) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return "any"
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        name = " or ".join(_type_name(a) for a in inner)
        return f"{name} or null" if type(None) in args else name
    if origin is typing.Literal:
        return "one of " + ", ".join(map(str, args))
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return "one of " + ", ".join(str(m.value) for m in tp)
    if dataclasses.is_dataclass(tp):
        return "mapping"
    if origin in (tuple, list, Sequence) or tp in (tuple, list):
        return f"list of {_type_name(args[0])}" if args and args[0] is not Ellipsis else "list"
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        return "mapping"
    if isinstance(tp, type):
        return {"int": "integer", "float": "number", "bool": "boolean", "str": "string"}.get(tp.__name__, tp.__name__)
    return str(tp)


def _fmt(v: Any, factor: float = 1.0) -> str:
    if v is dataclasses.MISSING:
        return "(required)"
    if isinstance(v, enum.Enum):
        v = v.value
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        x = v / factor
        return f"{x:g}" if isinstance(x, float) else str(x)
    if isinstance(v, str):
        return f"`{v}`" if v else '`""`'
    if dataclasses.is_dataclass(v):
        return "(see below)"
    if isinstance(v, Mapping | Sequence) and not v:
        return "`{}`" if isinstance(v, Mapping) else "`[]`"
    return f"`{v}`"


def _allowed(meta: Mapping[str, Any], factor: float) -> str:
    if "choices" in meta:
        return ", ".join(f"`{c}`" for c in meta["choices"])
    parts = []
    for k, sym in (("gt", ">"), ("ge", "≥"), ("lt", "<"), ("le", "≤")):
        if k in meta:
            parts.append(f"{sym} {_fmt(meta[k], factor)}")
    return ", ".join(parts)


@functools.cache
def _field_comments(cls: type) -> dict[str, str]:
    """``name: type = default  # comment`` -> {name: comment} from the class source."""
    try:
        src = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    out = {}
    lines = src.splitlines()
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            line = lines[node.end_lineno - 1] if node.end_lineno else ""
            m = re.search(r"#\s*(.+)$", line)
            if m and not m.group(1).startswith(("type:", "noqa")):
                out[node.target.id] = m.group(1).strip()
    return out


def _attribute_entries(doc: str) -> dict[str, str]:
    """numpydoc ``Attributes`` / ``Parameters`` entries: ``name, other : type`` then an indented text."""
    out: dict[str, str] = {}
    lines = doc.splitlines()
    in_section = False
    cur: list[str] = []
    text: list[str] = []

    def flush() -> None:
        for n in cur:
            out[n] = " ".join(t.strip() for t in text).strip()

    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped in ("Attributes", "Parameters") and i + 1 < len(lines) and set(lines[i + 1].strip()) == {"-"}:
            in_section = True
            continue
        if not in_section or set(stripped) == {"-"}:
            continue
        if stripped and not line[0].isspace() and i + 1 < len(lines) and set(lines[i + 1].strip()) == {"-"}:
            flush()  # the next section starts
            in_section, cur, text = False, [], []
        elif stripped and not line[0].isspace():  # an entry: "name, other : type" (the type is optional)
            flush()
            cur = [n.strip() for n in stripped.split(" : ")[0].split(",")]
            text = []
        elif cur:
            text.append(stripped)
    flush()
    return out


def _sentences(doc: str) -> list[str]:
    flat = " ".join(line.strip() for line in doc.splitlines())
    parts = re.split(r"(?<=[.;])\s+(?=[A-Z`(*])", flat)
    return [p.strip() for p in parts if p.strip()]


@functools.cache
def _attribute_docstrings(cls: type) -> dict[str, str]:
    """A string literal right after a field (``x: int = 0`` then ``\"\"\"What x is.\"\"\"``, as Sphinx reads)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError, SyntaxError):
        return {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    out = {}
    for a, b in zip(body, body[1:], strict=False):
        if (isinstance(a, ast.AnnAssign) and isinstance(a.target, ast.Name) and isinstance(b, ast.Expr)
                and isinstance(b.value, ast.Constant) and isinstance(b.value.value, str)):
            out[a.target.id] = " ".join(b.value.value.split())
    return out


def _meaning(name: str, spellings: Sequence[str], entries: Mapping[str, str], comments: Mapping[str, str],
             sentences: Sequence[str]) -> str:
    if entries.get(name):
        return entries[name]
    if comments.get(name):
        return comments[name]
    marks = [f"``{s}``" for s in (name, *spellings)]
    hits = [s for s in sentences if any(m in s for m in marks)]
    defining = [s for s in hits if any(s.lstrip("*- ").startswith(m) or f"{m}:" in s or f"{m} (" in s
                                       for m in marks)]
    text = (defining or hits[:1] or [""])[0]
    return re.sub(r"\s+", " ", text)


def _clean(text: str) -> str:
    """reST to markdown in one table cell: ``x`` -> `x`, roles dropped, pipes escaped."""
    text = re.sub(r":[a-z]+:`~?([^`]+)`", r"`\1`", text)
    text = text.replace("``", "`").replace("|", "\\|")
    return text.strip()


def describe_dataclass(cls: type, prefix: str, *, skip: Sequence[str] = ()) -> list[KeyDoc]:
    """Every init field of dataclass ``cls`` under the dotted ``prefix``, nested dataclasses expanded."""
    hints = typing.get_type_hints(cls)
    doc = inspect.getdoc(cls) or ""
    entries: dict[str, str] = {}
    comments: dict[str, str] = {}
    for base in reversed([c for c in cls.__mro__ if dataclasses.is_dataclass(c)]):  # a subclass refines its base
        base_doc = base.__doc__ and inspect.cleandoc(base.__doc__) or ""
        entries.update({**_attribute_entries(base_doc), **_attribute_docstrings(base)})
        comments.update(_field_comments(base))
    sentences = _sentences(doc)
    out: list[KeyDoc] = []
    for f in dataclasses.fields(cls):
        if not f.init or f.name in skip:
            continue
        tp = hints[f.name]
        default = (f.default if f.default is not dataclasses.MISSING
                   else f.default_factory() if f.default_factory is not dataclasses.MISSING else dataclasses.MISSING)
        key, unit, factor, others = _spelling(f.name, default)
        path = f"{prefix}.{key}" if prefix else key
        meaning = _clean(_meaning(f.name, [key, *others], entries, comments, sentences))
        nested = _nested_dataclass(tp)
        if nested is not None and not meaning:  # a sub-section: its class's first sentence
            meaning = _clean((_sentences(inspect.getdoc(nested) or "") or [""])[0]) + " Keys below."
        out.append(KeyDoc(key=path, type=_type_name(tp), unit=unit,
                          default=_fmt(default, factor) if nested is None or default is None else "(see below)",
                          allowed=_allowed(f.metadata, factor), aliases=others, meaning=meaning))
        if nested is not None:
            out.extend(describe_dataclass(nested, path))
    return out


def _nested_dataclass(tp: Any) -> type | None:
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return tp
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(inner) == 1 and dataclasses.is_dataclass(inner[0]) and isinstance(inner[0], type):
            return inner[0]
    return None


def render_markdown(title: str, preamble: str, sections: Sequence[Section]) -> str:
    """The reference as one markdown document (a table per section)."""
    out = [f"# {title}", "", preamble.strip(), ""]
    for s in sections:
        out += [f"## {s.title}", ""]
        if s.intro.strip():
            out += [_clean(" ".join(s.intro.split())), ""]
        out += ["| key | type | unit | default | allowed | meaning |", "|---|---|---|---|---|---|"]
        for k in s.keys:
            also = f" (also {', '.join(f'`{a}`' for a in k.aliases)})" if k.aliases else ""
            out.append(f"| `{k.key}` | {k.type} | {k.unit} | {k.default} | {k.allowed} | {k.meaning}{also} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def first_paragraph(cls: type) -> str:
    doc = inspect.getdoc(cls) or ""
    return doc.split("\n\n")[0]
