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


BRIEF_CHARS = 200
"""Longest library message quoted in a one-line error."""
UNSAFE_PICKLE = "Weights only load failed"
"""How torch.load(weights_only=True) starts its (multi-paragraph) refusal of pickled objects."""


def brief(exc: BaseException) -> str:
    """``Type: first line`` of a library error, shortened, for a one-line message.

    Libraries explain themselves in paragraphs (torch's weights-only refusal runs to a dozen
    lines); the command line prints one line per error, so only the gist is kept.
    """
    text = str(exc).strip()
    if text.startswith(UNSAFE_PICKLE):
        return "the file holds pickled objects other than tensors; refused (weights are loaded with weights_only=True)"
    lines = text.splitlines()
    first = lines[0] if lines else ""
    if len(first) > BRIEF_CHARS:
        first = first[:BRIEF_CHARS] + "..."
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def one_line(exc: BaseException) -> str:
    """The error's message on one line (a safety net: messages are written as one line already)."""
    return " ".join(line.strip() for line in str(exc).splitlines() if line.strip())


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
        print(f"error: {one_line(cause)}", file=sys.stderr)
        return 1
    return 0
