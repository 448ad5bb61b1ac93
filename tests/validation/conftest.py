"""ns-3 is optional: tests that need it use the ``ns3`` fixture (imports ns once per session, ~10 s)."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(scope="session")
def ns3() -> Any:
    pytest.importorskip("ns", reason="ns-3 Python bindings not installed (pip install -e '.[packet]')")
    pytest.importorskip("cppyy", reason="ns-3 Python bindings not installed (pip install -e '.[packet]')")
    from validation._loader import load

    return load()
