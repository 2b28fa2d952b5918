"""Errors raised by the MediSee network package.

Every error names the file, directory or config key it is about, so that the command-line
entry points can print one readable line instead of a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable


class MediSeeError(Exception):
    """Base class for user-facing MediSee errors (bad input, not a bug)."""


class WeightsError(MediSeeError):
    """A checkpoint is missing, unreadable, corrupt, or does not match the model."""


class ConfigError(MediSeeError):
    """A configuration value is invalid; the message names the config key."""


class InputError(MediSeeError):
    """A model input (batch) violates the forward contract."""


class DataError(MediSeeError):
    """A data file or dataset description is missing, unreadable or inconsistent (names the file)."""


def list_names(names, limit: int = 8) -> str:
    """Formats a collection of names for an error message, eliding the tail of long lists."""
    names = sorted(names)
    shown = ", ".join(names[:limit])
    if len(names) > limit:
        shown += f", ... ({len(names) - limit} more)"
    return shown


def root_cause(exc: BaseException) -> MediSeeError | None:
    """The MediSeeError behind ``exc``, if any.

    MONAI's ConfigParser re-raises failures of ``_target_`` components as RuntimeError with the
    original as ``__cause__``; command-line entry points use this to print the readable message.
    """
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, MediSeeError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def run_command(action: Callable[[], object], debug: bool = False) -> int:
    """Runs a command-line action; a MediSee error becomes one ``error: ...`` line and exit code 1.

    Other exceptions (bugs) propagate with their traceback, as does everything when ``debug``.
    """
    try:
        action()
    except Exception as exc:
        cause = root_cause(exc)
        if debug or cause is None:
            raise
        print(f"error: {cause}", file=sys.stderr)
        return 1
    return 0
