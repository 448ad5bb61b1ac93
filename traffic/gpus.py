"""The GPU catalogue: ``workload.gpu: h800 | h100 | h200 | h20 | b200 | a100`` (or a mapping).

Each GPU is one YAML file in ``traffic/data/gpus/`` with its public source: dense BF16 tensor-core FLOP/s
(``peak_tflops``; NVIDIA datasheets quote 2:4-sparse figures, halved here), HBM bandwidth
(``hbm_bytes_per_s``) and capacity (``memory_gb``), and NVLink bandwidth per GPU and direction
(``nvlink_gbps``; datasheets quote the bidirectional total, halved here). Utilisations (``mfu``,
``decode_mbu``) are workload properties, not catalogue entries.

``workload.gpu`` may be a name, a mapping with a ``name`` (the catalogue entry, then the mapping's keys
override it) or a mapping without one (overrides of the default, the H800).

>>> expand_gpu("h20", "workload.gpu")["peak_tflops"]
148
>>> expand_gpu({"name": "h100", "mfu": 0.3}, "workload.gpu")["mfu"]
0.3
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rfabric.errors import ConfigError
from rfabric.parsing import read_yaml, suggest

GPUS_DIR = Path(__file__).parent / "data" / "gpus"

#: the GPU of the paper's clusters, used when ``workload.gpu`` names none
DEFAULT_GPU = "h800"


@functools.cache
def catalogue() -> dict[str, dict[str, Any]]:
    """Every shipped GPU entry by (lower-case) name."""
    out: dict[str, dict[str, Any]] = {}
    for p in sorted(GPUS_DIR.glob("*.yaml")):
        data = read_yaml(str(p))
        out[p.stem.lower()] = dict(data)
    return out


def available_gpus() -> list[str]:
    return sorted(catalogue())


def expand_gpu(value: Any, key: str) -> dict[str, Any]:
    """The ``workload.gpu`` value as a full mapping of :class:`traffic.spec.GpuSpec` keys.

    Raises ConfigError on ``key`` (``key.name`` for a name inside a mapping) for an unknown GPU.
    """
    if value is None:
        return dict(catalogue()[DEFAULT_GPU])
    if isinstance(value, str):
        return dict(_entry(value, key))
    if isinstance(value, Mapping):
        if "name" in value:
            return {**_entry(value["name"], f"{key}.name"), **value}
        return {**catalogue()[DEFAULT_GPU], **value}
    raise ConfigError(key, f"must be a GPU name ({', '.join(available_gpus())}) or a mapping", value)


def _entry(name: Any, key: str) -> dict[str, Any]:
    if not isinstance(name, str):
        raise ConfigError(key, "must be a GPU name", name)
    cat = catalogue()
    if name.lower() not in cat:
        raise ConfigError(key, f"unknown GPU; {suggest(name.lower(), available_gpus())} "
                          f"(known: {', '.join(available_gpus())})", name)
    return cat[name.lower()]
