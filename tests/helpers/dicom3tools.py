"""dicom3tools' checkers (``dciodvfy``, ``dcentvfy``) on files the tests write; they fail, never skip, when missing."""

from __future__ import annotations

import shutil
import subprocess

import pytest

DICOM3TOOLS = "install dicom3tools (apt-get install -y dicom3tools), as .ci/run does"
TIMEOUT_S = 120


def dicom3tools(tool: str, *files) -> list[str]:
    """The report of a dicom3tools checker on ``files``, one line per message."""
    executable = shutil.which(tool)
    if executable is None:
        pytest.fail(f"{tool} not found: {DICOM3TOOLS}")
    process = subprocess.run([executable, *map(str, files)], capture_output=True, text=True, timeout=TIMEOUT_S)
    return (process.stdout + process.stderr).splitlines()


def errors_of(report: list[str]) -> list[str]:
    """The lines of a report that are errors."""
    return [line for line in report if line.startswith("Error")]
