"""Packet-level cross-check of the flow-level simulator on ns-3 (optional extra ``packet``).

A consumer of :mod:`rfabric.api`, like ``experiments/``: its scenarios (:mod:`validation.scenarios`) are
ordinary run configs whose fabrics, flows and circuits come from the real builders; both the flow-level
simulator and ns-3 play them (:mod:`validation.compare`, ``rfabric validate``). This is the only package
that imports ns-3 (PyPI ``ns3``, GPL-2.0, bindings through cppyy), lazily on the first
:func:`run_packet`; :func:`available` says whether it is installed without importing it.

>>> from validation import PacketOptions
>>> PacketOptions().tcp, PacketOptions().mtu_bytes
('cubic', 9000)
"""

from __future__ import annotations

import logging

from validation._loader import available, load_times
from validation.backend import PacketOptions, PacketTrace, circuit_states, pinned_routes, run_packet

# A library never prints: without a handler of the application's, log records go nowhere instead of to
# logging.lastResort on stderr (Python logging HOWTO, "Configuring Logging for a Library"); rfabric.cli installs one.
logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = ["PacketOptions", "PacketTrace", "available", "circuit_states", "load_times", "pinned_routes",
           "run_packet"]
