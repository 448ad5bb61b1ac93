"""Every module's docstring examples run (issue #12): the modules are found by walking the five packages,
not kept in a list, so a new module's examples are checked from the day it lands."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

PACKAGES = ("rfabric", "topologies", "traffic", "solver", "validation")
#: modules that must not be imported by a test: ``python -m rfabric`` runs the CLI on import
SKIP = {"rfabric.__main__"}


def _modules() -> list[str]:
    out = []
    for pkg in PACKAGES:
        out.append(pkg)
        path = importlib.import_module(pkg).__path__
        out += sorted(m.name for m in pkgutil.walk_packages(path, f"{pkg}.") if m.name not in SKIP)
    return out


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples_run(name: str) -> None:
    res = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert res.failed == 0, f"{res.failed} of {res.attempted} examples of {name} failed (output above)"


def test_the_walk_finds_the_modules_with_examples() -> None:
    names = set(_modules())
    assert {"rfabric.config", "rfabric.api", "solver.options", "traffic.collectives", "topologies"} <= names
    assert len(names) > 60
