"""One-line errors for the bundle command line.

``python -m monai.bundle run`` reports failures as tracebacks, and MONAI's ConfigParser wraps every
failure of a config item in RuntimeErrors, so a missing image ends in "RuntimeError: Failed to
evaluate ...". :func:`report_errors_briefly` makes an uncaught MediSee error (bad input or
settings, ``common.errors.MediSeeError``) print as ``error: <message>`` instead; Python still
exits with status 1. Other exceptions (bugs) keep their full traceback, and so does every error with
``--debug true``. In-process callers
(``monai.bundle.run``, ``ConfigWorkflow``) still receive the exception itself.
"""

from __future__ import annotations

import sys
from types import TracebackType

from common.errors import one_line, root_cause

_MARK = "_medisee_brief_errors"


def report_errors_briefly(debug: bool | str = False) -> None:
    """Installs the one-line error report as ``sys.excepthook`` (once; earlier hooks handle the rest).

    Args:
        debug: keep full tracebacks (the ``debug`` config id: ``--debug true``).
    """
    from bundle.inference.settings import flag  # settings imports the data readers: keep this module light

    previous = sys.excepthook
    if flag(debug, "debug") or getattr(previous, _MARK, False):
        return

    def hook(exc_type: type[BaseException], exc: BaseException, traceback: TracebackType | None) -> None:
        cause = root_cause(exc)
        if cause is None:
            previous(exc_type, exc, traceback)
        else:
            print(f"error: {one_line(cause)}", file=sys.stderr)

    setattr(hook, _MARK, True)
    sys.excepthook = hook
