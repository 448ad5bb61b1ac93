"""Options of the flow-level simulator (the ``sim`` section of a run config), owned and parsed here.

:func:`parse_sim_options` is the one parser of the section (the deprecated key ``ecmp`` is renamed to
``routing`` with a ``FutureWarning``); :class:`SimConfig` holds every default.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rfabric.errors import ConfigError
from rfabric.parsing import bounded, check_fields, choice, parse_dataclass, positive, suggest

ROUTINGS = ("hash", "split", "spray", "adaptive")


@dataclass(frozen=True, kw_only=True, slots=True, init=False)
class SimConfig:
    """Flow-level simulator options (see ``rfabric.sim``).

    ``routing``: ``spray`` (default; every flow spread over all equal-cost paths), ``split`` (the same,
    walked arc by arc: small fabrics), ``hash`` (per-flow ECMP) or ``adaptive`` (least-loaded path per
    GPU pair); see :mod:`rfabric.sim.routing`. ``ecmp`` is the deprecated name of ``routing``: accepted
    as a YAML key and a keyword with a ``FutureWarning``, and readable (``.ecmp`` returns ``routing``).
    """

    routing: str = choice("spray", choices=ROUTINGS)
    merge_tolerance: float = bounded(0.0, ge=0.0, lt=1.0)
    """Drain, at each drain event, the flows that would drain within this fraction of their own duration (0 = exact; 0.01 keeps step times within ~0.03 %, see rfabric.sim.engine)."""
    steps: int = positive(1)
    """RL steps simulated back to back (the iteration time is their mean)."""
    link_latency: bool = True
    """Add each flow's path latency (switch and link hops) to its finish time."""

    def __init__(self, *, routing: str = "spray", merge_tolerance: float = 0.0, steps: int = 1,
                 link_latency: bool = True, ecmp: str | None = None) -> None:
        if ecmp is not None:
            if routing not in ("spray", ecmp):
                raise ConfigError("sim.ecmp", f"conflicts with sim.routing = {routing} (ecmp is the deprecated "
                                  "name of routing: keep only routing)", ecmp)
            _deprecated_ecmp()
            routing = ecmp
        if routing not in ROUTINGS:
            raise ConfigError("sim.routing", f"must be one of {', '.join(ROUTINGS)}; {suggest(routing, ROUTINGS)}",
                              routing)
        for name, value in (("routing", routing), ("merge_tolerance", merge_tolerance), ("steps", steps),
                            ("link_latency", link_latency)):
            object.__setattr__(self, name, value)
        check_fields(self)

    @property
    def ecmp(self) -> str:
        """Deprecated name of :attr:`routing`."""
        return self.routing


def _deprecated_ecmp(stacklevel: int = 4) -> None:
    warnings.warn("sim.ecmp is deprecated: use sim.routing (hash | split | spray | adaptive)", FutureWarning,
                  stacklevel=stacklevel)


def sim_section(raw: Any) -> Any:
    """``sim`` with the deprecated key ``ecmp`` renamed to ``routing`` (a ``FutureWarning``)."""
    if not isinstance(raw, Mapping) or "ecmp" not in raw:
        return raw
    out = dict(raw)
    ecmp = out.pop("ecmp")
    if ecmp not in ROUTINGS:
        raise ConfigError("sim.ecmp", f"must be one of {', '.join(ROUTINGS)}; {suggest(str(ecmp), ROUTINGS)} "
                          "(ecmp is the deprecated name of sim.routing)", ecmp)
    if "routing" in out and out["routing"] != ecmp:
        raise ConfigError("sim.ecmp", f"conflicts with sim.routing = {out['routing']} (ecmp is the deprecated "
                          "name of routing: keep only routing)", ecmp)
    _deprecated_ecmp(5)  # the caller of parse_run_config, through parse_sim_options
    out["routing"] = ecmp
    return out


def parse_sim_options(raw: Any, key: str = "sim") -> SimConfig:
    """The ``sim`` section of a run config as a :class:`SimConfig`.

    Parameters
    ----------
    raw : mapping or None
        The section as written (human units; None or empty for every default).
    key : str
        Dotted path of the section, for messages.

    Returns
    -------
    SimConfig

    Raises
    ------
    ConfigError
        Naming ``sim.<key>`` for an unknown key, a wrong type, a value out of bounds, or ``ecmp`` that
        conflicts with ``routing``.
    """
    return parse_dataclass(SimConfig, sim_section(raw), key)
