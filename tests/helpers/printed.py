"""What a run may print on stdout: the allow-list of its lines, and lines that repeat (one per rank)."""

from __future__ import annotations

import re
from collections import Counter

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3} - ")
"""The time ``configs/logging.conf`` puts before a log record."""
INFERENCE_LINES = (
    re.compile(r"MediSee inference: \d+ volume\(s\)( on \d+ process\(es\))?"),
    re.compile(r"\S+: (target on \d+ slices \(\d+\.\.\d+\), \d+\.\d+ mL|no target found)"),
    re.compile(r"  answer: .+"),
    re.compile(r"  (mask|result|overlay): \S+"),
)
"""Every line an inference run prints on stdout: the summary, the answer and the outputs' paths."""


def unexpected_lines(stdout: str, allowed=INFERENCE_LINES) -> list[str]:
    """The non-empty lines of ``stdout`` that no pattern of ``allowed`` matches in full."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    return [line for line in lines if not any(pattern.fullmatch(line) for pattern in allowed)]


def repeated_lines(stdout: str) -> list[str]:
    """The log records of ``stdout`` (their times removed) printed more than once, e.g. once by each rank.

    Summary lines may repeat (two volumes with the same answer); a log record from the same code never should.
    """
    counts = Counter(TIMESTAMP.sub("", line) for line in stdout.splitlines() if TIMESTAMP.match(line))
    return [line for line, count in counts.items() if count > 1]
