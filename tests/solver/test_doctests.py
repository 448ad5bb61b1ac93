"""The examples in the solver modules' docstrings run."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["solver", "solver.options", "solver.heuristics"]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    mod = importlib.import_module(name)
    res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert res.attempted > 0 and res.failed == 0
