"""Load ns-3 once per process (``from ns import ns`` costs 8--27 s) and compile the C++ half."""

from __future__ import annotations

import importlib.util
import logging
import threading
import time
from typing import Any

log = logging.getLogger(__name__)

_lock = threading.Lock()
_state: dict[str, Any] = {}


def available() -> bool:
    """True when the ns-3 Python bindings (PyPI ``ns3``) are installed; does not import them."""
    try:
        return importlib.util.find_spec("ns") is not None and importlib.util.find_spec("cppyy") is not None
    except (ImportError, ValueError):
        return False


def load() -> tuple[Any, Any]:
    """``(ns, rfpkt)``: the ns-3 namespace and the compiled ``rfpkt`` C++ namespace (cached)."""
    with _lock:
        if "ns" not in _state:
            if not available():
                from rfabric.errors import RfabricError

                raise RfabricError("the packet-level backend needs ns-3: pip install -e '.[packet]' (PyPI ns3>=3.44)")
            t = time.perf_counter()
            import cppyy  # noqa: PLC0415
            from ns import ns  # noqa: PLC0415 -- lazy on purpose: heavy, optional, GPL

            _state["import_s"] = time.perf_counter() - t
            from validation._cxx import CXX_SOURCE

            t = time.perf_counter()
            cppyy.cppdef(CXX_SOURCE)
            _state["compile_s"] = time.perf_counter() - t
            _state["ns"] = ns
            _state["rfpkt"] = cppyy.gbl.rfpkt
            log.info("ns-3 imported in %.1f s, backend compiled in %.1f s", _state["import_s"], _state["compile_s"])
        return _state["ns"], _state["rfpkt"]


def load_times() -> dict[str, float]:
    """Seconds spent importing ns-3 and compiling the backend in this process (empty before :func:`load`)."""
    return {k: v for k, v in _state.items() if k.endswith("_s")}
