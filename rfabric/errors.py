"""One exception hierarchy for the whole project; user mistakes are ``ConfigError`` (CLI exit 2).

Every exception RFabric raises on purpose is an :class:`RfabricError`:

- :class:`ConfigError` (a ``ValueError``): a user mistake in a configuration, naming the dotted key;
- :class:`InvalidArgumentError` (a ``ValueError``): a library function called with an argument outside its
  domain by code, not straight from a configuration key (the parsers check user input first and raise
  ``ConfigError``);
- :class:`SolverError`, :class:`SimulationError`: a stage could not run on its input;
- :class:`InternalError` (a ``RuntimeError``): an invariant of RFabric's own code broke (a bug);
- :class:`UnknownNameError` (a ``KeyError``): a look-up by name (a phase, a fabric) found nothing.

The builtin bases are kept so code that catches ``ValueError`` / ``RuntimeError`` keeps working;
``tests/test_errors_hierarchy.py`` fails if a bare ``raise ValueError(...)`` (or ``TypeError`` /
``RuntimeError`` / ``KeyError``) appears in the packages.
"""

from __future__ import annotations

import reprlib
from collections.abc import Iterable, Sequence

#: Longest shown value in a message: an alias bomb or a huge list is cut, never expanded in full.
MAX_SHOWN_CHARS = 120

_repr = reprlib.Repr()
_repr.maxstring = MAX_SHOWN_CHARS
_repr.maxother = MAX_SHOWN_CHARS
_repr.maxlist = _repr.maxtuple = _repr.maxdict = _repr.maxset = 8
_repr.maxlevel = 3


def shown(value: object) -> str:
    """A bounded ``repr`` of a user value for messages (at most about ``MAX_SHOWN_CHARS`` characters)."""
    text = _repr.repr(value)
    return text if len(text) <= MAX_SHOWN_CHARS else text[: MAX_SHOWN_CHARS - 3] + "..."


class RfabricError(Exception):
    """Base class of every error RFabric raises on purpose."""


class ConfigError(RfabricError, ValueError):
    """A user mistake in a configuration, a parameter or a file: the CLI prints it and exits with 2.

    ``key`` is the dotted path of the offending entry (``topology.nic_gbps``), ``value`` what was given
    (shown cut to :data:`MAX_SHOWN_CHARS`). ``structural`` marks a mistake in the shape of the input (an
    unknown key, a missing section) that is reported before mistakes in values. Several mistakes found at
    once are one :class:`ConfigErrors`; ``errors`` lists them (just ``(self,)`` for a single one).
    """

    def __init__(self, key: str, message: str, value: object = None, *, has_value: bool = True,
                 structural: bool = False) -> None:
        self.key = key
        self.value = value
        self.message = message
        self.has_value = has_value
        self.structural = structural
        text = f" = {shown(value)}" if has_value and value is not None else ""
        super().__init__(f"{key}{text}: {message}" if key else message)

    @property
    def errors(self) -> tuple[ConfigError, ...]:
        return (self,)

    @staticmethod
    def combine(errors: Iterable[ConfigError]) -> ConfigError:
        """One error for several: structural ones first, in the order found; raises nothing itself."""
        flat = [x for e in errors for x in e.errors]
        flat = [e for e in flat if e.structural] + [e for e in flat if not e.structural]
        if not flat:
            raise InvalidArgumentError("no errors to combine")
        return flat[0] if len(flat) == 1 else ConfigErrors(flat)

    def __reduce__(self) -> tuple[object, ...]:  # picklable across process pools and Ray
        return (_config_error, (self.key, self.message, self.value, self.has_value, self.structural))


class ConfigErrors(ConfigError):
    """Several configuration mistakes found in one pass; ``key``/``message``/``value`` are the first's and
    ``str()`` gives one line per mistake."""

    def __init__(self, errors: Sequence[ConfigError]) -> None:
        first = errors[0]
        super().__init__(first.key, first.message, first.value, has_value=first.has_value,
                         structural=first.structural)
        self._errors = tuple(errors)
        self.args = ("\n".join(str(e) for e in self._errors),)

    def __str__(self) -> str:
        return str(self.args[0])

    @property
    def errors(self) -> tuple[ConfigError, ...]:
        return self._errors

    def __reduce__(self) -> tuple[object, ...]:
        return (ConfigErrors, (self._errors,))


def _config_error(key: str, message: str, value: object, has_value: bool, structural: bool = False) -> ConfigError:
    return ConfigError(key, message, value, has_value=has_value, structural=structural)


class SolverError(RfabricError):
    """A circuit solver could not run (not installed, bad backend). Infeasibility is a result, not this."""


class SimulationError(RfabricError):
    """The simulator met an inconsistent input (e.g. a flow between unreachable endpoints)."""


class InvalidArgumentError(RfabricError, ValueError):
    """A library function got an argument outside its domain (a bad shape, a negative size, an unknown
    algorithm name) from calling code. User input is checked earlier by the configuration parsers, which
    raise :class:`ConfigError` naming the key; this is also a ``ValueError`` for callers that catch that."""


class InternalError(RfabricError, RuntimeError):
    """An invariant of RFabric's own code broke (e.g. an algorithm stopped making progress): a bug to report,
    never a user mistake. Also a ``RuntimeError``."""


class UnknownNameError(RfabricError, KeyError):
    """A look-up by name found nothing (``Workload.phase``, ``Comparison.row``, :func:`rfabric.results.compare`'s
    reference). Also a ``KeyError`` for callers that catch that; ``name`` is the missing name, ``args[0]``
    the name as ``KeyError`` has it, and ``str()`` a sentence listing the known names.

    >>> e = UnknownNameError("fabric", "ft", ["a", "b"])
    >>> str(e), e.name, isinstance(e, KeyError)
    ("unknown fabric 'ft'; known: ['a', 'b']", 'ft', True)
    """

    def __init__(self, what: str, name: object, known: Iterable[object] = ()) -> None:
        super().__init__(name)
        self.what = what
        self.name = name
        self.known = tuple(known)

    def __str__(self) -> str:
        return f"unknown {self.what} {self.name!r}; known: {shown(list(self.known))}"

    def __reduce__(self) -> tuple[object, ...]:  # picklable across process pools and Ray
        return (UnknownNameError, (self.what, self.name, self.known))
