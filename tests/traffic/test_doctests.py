"""The examples in the traffic modules' docstrings run."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["traffic", "traffic.models", "traffic.collectives", "traffic.parallelism", "traffic.summary",
           "traffic.generation", "traffic.latency"]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    mod = importlib.import_module(name)
    res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert res.attempted > 0 and res.failed == 0
