"""A registry of builders keyed by ``kind``; each package (topologies, traffic, solver) owns one."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from rfabric.errors import ConfigError, InvalidArgumentError
from rfabric.parsing import parse_dataclass, suggest

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Entry(Generic[R]):
    kind: str
    params_cls: type
    build: Callable[..., R]
    doc: str = ""


class Registry(Generic[R]):
    """``kind`` -> (parameter dataclass, builder). Adding a variant touches one file: register it there."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._entries: dict[str, Entry[R]] = {}

    def register(self, kind: str, params_cls: type, doc: str = "") -> Callable[[Callable[..., R]], Callable[..., R]]:
        def deco(fn: Callable[..., R]) -> Callable[..., R]:
            if kind in self._entries:
                raise InvalidArgumentError(f"{self.what} kind '{kind}' registered twice")
            self._entries[kind] = Entry(kind=kind, params_cls=params_cls, build=fn, doc=doc or (fn.__doc__ or "").strip().split("\n")[0])
            return fn
        return deco

    def get(self, kind: str, key: str = "kind") -> Entry[R]:
        try:
            return self._entries[kind]
        except KeyError:
            raise ConfigError(key, f"unknown {self.what}; {suggest(kind, list(self._entries))} "
                              f"(available: {', '.join(sorted(self._entries))})", kind) from None

    def parse(self, kind: str, params: Any, path: str, key: str | None = None) -> Any:
        """Validate ``params`` into the kind's parameter dataclass (errors name ``path.<key>``)."""
        return parse_dataclass(self.get(kind, key or f"{path}.kind").params_cls, params, path)

    def kinds(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, kind: object) -> bool:
        return kind in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))
