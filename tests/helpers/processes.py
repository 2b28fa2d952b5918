"""Bundle commands in a child process, with the child's own peak memory (``wait4``'s rusage)."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from tests.helpers.configs import ROOT

GIB = 2**30
ADDRESS_SPACE_LIMIT = 24 * GIB
"""A safety net: a child that tried to build a model it was meant to refuse fails instead of exhausting RAM."""


@dataclass(frozen=True)
class Measured:
    """A finished child: its exit status, its stderr and its peak resident memory."""

    returncode: int
    stderr: str
    peak_rss_gib: float


def _limit_address_space() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_LIMIT, ADDRESS_SPACE_LIMIT))


def run_measured(args: Sequence[str]) -> Measured:
    """Runs ``python ARGS`` from the bundle root; returns its status, stderr and peak RSS (Linux)."""
    child = subprocess.Popen(
        [sys.executable, *args], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        encoding="utf-8", errors="replace", preexec_fn=_limit_address_space,
    )  # fmt: skip
    try:
        stderr = child.stderr.read()
        _, status, usage = os.wait4(child.pid, 0)
    finally:
        child.stderr.close()
    child.returncode = os.waitstatus_to_exitcode(status)  # so Popen does not wait for it again
    return Measured(child.returncode, stderr, usage.ru_maxrss * 1024 / GIB)  # Linux reports KiB
