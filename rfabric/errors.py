"""One exception hierarchy for the whole project; user mistakes are ``ConfigError`` (CLI exit 2)."""

from __future__ import annotations


class RfabricError(Exception):
    """Base class of every error RFabric raises on purpose."""


class ConfigError(RfabricError, ValueError):
    """A user mistake in a configuration, a parameter or a file: the CLI prints it and exits with 2.

    ``key`` is the dotted path of the offending entry (``topology.nic_gbps``), ``value`` what was given.
    """

    def __init__(self, key: str, message: str, value: object = None, *, has_value: bool = True) -> None:
        self.key = key
        self.value = value
        self.message = message
        self.has_value = has_value
        shown = f" = {value!r}" if has_value and value is not None else ""
        super().__init__(f"{key}{shown}: {message}" if key else message)

    def __reduce__(self) -> tuple[object, ...]:  # picklable across process pools and Ray
        return (_config_error, (self.key, self.message, self.value, self.has_value))


def _config_error(key: str, message: str, value: object, has_value: bool) -> ConfigError:
    return ConfigError(key, message, value, has_value=has_value)


class SolverError(RfabricError):
    """A circuit solver could not run (not installed, bad backend). Infeasibility is a result, not this."""


class SimulationError(RfabricError):
    """The simulator met an inconsistent input (e.g. a flow between unreachable endpoints)."""
