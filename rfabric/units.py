"""Units: SI inside the code, human units only in YAML.

The loader converts a YAML key with a human-unit suffix to the SI field of the same stem exactly once,
e.g. ``nic_gbps: 400`` becomes ``nic_bps = 4.0e11`` and ``ocs_reconfig_ms: 10`` becomes
``ocs_reconfig_s = 0.01``.

>>> convert_key("nic_gbps", 400)
('nic_bps', 400000000000.0)
>>> convert_key("ocs_reconfig_ms", 10)
('ocs_reconfig_s', 0.01)
"""

from __future__ import annotations

KBPS = 1e3
MBPS = 1e6
GBPS = 1e9
TBPS = 1e12
US = 1e-6
MS = 1e-3
NS = 1e-9
KB = 1e3
MB = 1e6
GB = 1e9
TB = 1e12
KIB = 2.0**10
MIB = 2.0**20
GIB = 2.0**30
TIB = 2.0**40

#: human suffix -> (SI suffix, factor)
HUMAN_SUFFIXES: dict[str, tuple[str, float]] = {
    "_kbps": ("_bps", KBPS),
    "_mbps": ("_bps", MBPS),
    "_gbps": ("_bps", GBPS),
    "_tbps": ("_bps", TBPS),
    "_ns": ("_s", NS),
    "_us": ("_s", US),
    "_ms": ("_s", MS),
    "_kb": ("_bytes", KB),
    "_mb": ("_bytes", MB),
    "_gb": ("_bytes", GB),
    "_tb": ("_bytes", TB),
    "_kib": ("_bytes", KIB),
    "_mib": ("_bytes", MIB),
    "_gib": ("_bytes", GIB),
    "_tflops": ("_flops", 1e12),
    "_pflops": ("_flops", 1e15),
    "_kw": ("_w", 1e3),
}


def convert_key(key: str, value: object) -> tuple[str, object]:
    """Map a human-unit key/value to its SI field name and value; other keys pass through."""
    for suffix, (si_suffix, factor) in HUMAN_SUFFIXES.items():
        if key.endswith(suffix):
            stem = key[: -len(suffix)]
            if isinstance(value, bool) or not isinstance(value, int | float):
                return stem + si_suffix, value  # type-checked later, with the human key in the message
            return stem + si_suffix, float(value) * factor
    return key, value


def human_key(si_key: str) -> list[str]:
    """All human-unit spellings that map to an SI field name (for error messages and suggestions)."""
    out = []
    for suffix, (si_suffix, _) in HUMAN_SUFFIXES.items():
        if si_key.endswith(si_suffix):
            out.append(si_key[: -len(si_suffix)] + suffix)
    return out


def fmt_bps(bps: float) -> str:
    """Format a rate with a human unit: ``fmt_bps(4e11) == '400 Gb/s'``."""
    for unit, f in (("Tb/s", TBPS), ("Gb/s", GBPS), ("Mb/s", MBPS), ("kb/s", KBPS)):
        if abs(bps) >= f:
            return f"{bps / f:.4g} {unit}"
    return f"{bps:.4g} b/s"


def fmt_bytes(n: float) -> str:
    """Format a byte count: ``fmt_bytes(2.5e9) == '2.5 GB'``."""
    for unit, f in (("TB", TB), ("GB", GB), ("MB", MB), ("kB", KB)):
        if abs(n) >= f:
            return f"{n / f:.4g} {unit}"
    return f"{n:.4g} B"


def fmt_s(t: float) -> str:
    """Format a duration: ``fmt_s(0.0125) == '12.5 ms'``."""
    if abs(t) >= 1 or t == 0:
        return f"{t:.4g} s"
    for unit, f in (("ms", MS), ("us", US), ("ns", NS)):
        if abs(t) >= f:
            return f"{t / f:.4g} {unit}"
    return f"{t:.4g} s"
