"""Ignite handlers of the MediSee workflows."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import ignite.distributed as idist
from ignite.engine import Engine, Events

from bundle.metrics import METRIC_NAMES, metric_key
from bundle.prompts import QUERY_KINDS
from networks.files import write_json

logger = logging.getLogger(__name__)


class MetricsJsonWriter:
    """Writes an engine's final metrics to a json file, overall and per query kind.

    The file reads ``{"dice": .., "giou": .., ..., "label": {"dice": .., ...}, "short": {...},
    "long": {...}}``: each metric's overall value under its base name and each query kind's values
    in a section of its own; kinds the metrics did not see are left out. Only rank 0 writes, and it
    writes atomically, so a reader never sees a partial file.

    Args:
        output_dir: directory of the file (created if missing).
        filename: file name.
        metric_names: base names to report, as the metrics return them (``dice``, ``dice_long``, ...).
    """

    def __init__(
        self, output_dir: str | os.PathLike, filename: str = "metrics.json", metric_names: Sequence[str] = METRIC_NAMES
    ) -> None:
        self.path = Path(output_dir) / filename
        self.metric_names = tuple(metric_names)

    def attach(self, engine: Engine) -> None:
        """Writes the file each time ``engine`` completes a run."""
        engine.add_event_handler(Events.COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        """Writes ``engine.state.metrics`` (rank 0 only)."""
        if idist.get_rank() == 0:
            write_json(self.path, self.summary(engine.state.metrics))

    def summary(self, metrics: Mapping[str, Any]) -> dict[str, Any]:
        """The json structure of ``metrics``; names missing from them are left out with a warning."""
        missing = [name for name in self.metric_names if name not in metrics]
        if missing:
            # warn rather than fail: the run is over, and its other results are worth keeping
            logger.warning("metrics %s are not attached to the engine; %s omits them", missing, self.path)
        summary: dict[str, Any] = {name: float(metrics[name]) for name in self.metric_names if name in metrics}
        for kind in QUERY_KINDS:
            keys = {name: metric_key(name, kind) for name in self.metric_names}
            values = {name: float(metrics[key]) for name, key in keys.items() if key in metrics}
            if values:
                summary[kind] = values
        return summary
