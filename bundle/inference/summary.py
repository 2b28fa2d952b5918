"""``InferenceSummary``: the closing report of a run, one block per volume."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ignite.engine import Engine, Events

from bundle.inference import keys as K

ANSWER_PREVIEW_CHARS = 120
"""Longest answer shown in the summary (the JSON holds the whole answer)."""


def describe_volume(output: Mapping[str, Any]) -> list[str]:
    """Summary lines of one volume's output dictionary."""
    result = output.get(K.RESULT, {})
    slices = [s["index"] for s in result.get("slices", [])]
    if slices:
        found = f"target on {len(slices)} slices ({min(slices)}..{max(slices)}), {result.get('volume_ml', 0.0):.2f} mL"
    else:
        found = "no target found"
    lines = [f"{output[K.NAME]}: {found}"]
    if K.TURN in output:
        lines.append(f"  question: {str(output[K.QUERY])!r}")
    answer = output.get(K.ANSWER)
    if answer is not None:
        preview = answer if len(answer) <= ANSWER_PREVIEW_CHARS else answer[:ANSWER_PREVIEW_CHARS] + "..."
        lines.append(f"  answer: {preview!r}")
    files = output.get(K.OUTPUT_FILES, {})
    lines += [f"  {kind}: {files[kind]}" for kind in K.OUTPUT_SUFFIXES if kind in files]
    return lines


class InferenceSummary:
    """Collects each volume's findings and output files, and prints them when the run completes."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.volumes = 0

    def attach(self, engine: Engine) -> None:
        """Registers the handler's events on ``engine``."""
        engine.add_event_handler(Events.STARTED, self.reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self.collect)
        engine.add_event_handler(Events.COMPLETED, self.report)

    def reset(self, engine: Engine) -> None:
        """Forgets earlier runs."""
        self.lines, self.volumes = [], 0

    def collect(self, engine: Engine) -> None:
        """Adds the volumes of the iteration that just completed (entries and outputs after postprocessing)."""
        for entry, output in zip(engine.state.batch, engine.state.output):
            self.lines += describe_volume({**entry, **output})
            # a dialogue's turns are entries of one volume: it is counted at its first turn
            self.volumes += int(entry.get(K.TURN, 1) == 1)

    def report(self, engine: Engine) -> None:
        """Prints the summary."""
        print(f"MediSee inference: {self.volumes} volume(s)", *self.lines, sep="\n", flush=True)
