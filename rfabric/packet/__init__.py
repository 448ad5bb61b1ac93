"""Packet-level cross-check of the flow-level simulator on ns-3 (optional extra ``packet``).

ns-3 (PyPI ``ns3``, GPL-2.0) is imported lazily, on the first :func:`run_packet`; the rest of RFabric
never needs it. :func:`available` says whether it is installed without importing it.

>>> from rfabric.packet import PacketOptions
>>> PacketOptions().tcp, PacketOptions().mtu_bytes
('cubic', 9000)
"""

from __future__ import annotations

from rfabric.packet._loader import available, load_times
from rfabric.packet.backend import PacketOptions, PacketTrace, circuit_states, run_packet

__all__ = ["PacketOptions", "PacketTrace", "available", "circuit_states", "load_times", "run_packet"]
