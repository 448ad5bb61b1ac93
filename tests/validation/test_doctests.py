"""The examples in the validation modules' docstrings run (no ns-3 needed)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["validation", "validation.scenarios"]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    mod = importlib.import_module(name)
    res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert res.attempted > 0 and res.failed == 0
