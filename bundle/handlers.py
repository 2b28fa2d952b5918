"""Ignite handlers of the MediSee workflows, and what they print or log."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import ignite.distributed as idist
from ignite.engine import Engine, Events

from bundle.metrics import METRIC_NAMES, PRESENCE_METRIC_NAMES, metric_key, turn_key
from bundle.prompts import MAX_TURNS, QUERY_KINDS
from common.files import write_json

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
        optional_names: names reported when the engine has them, without a warning when it has not
            (the presence metrics: a split without negatives has no value for some of them).
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        filename: str = "metrics.json",
        metric_names: Sequence[str] = METRIC_NAMES,
        optional_names: Sequence[str] = PRESENCE_METRIC_NAMES,
    ) -> None:
        self.path = Path(output_dir) / filename
        self.metric_names = tuple(metric_names)
        self.optional_names = tuple(optional_names)

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
        names = self.metric_names + self.optional_names
        summary: dict[str, Any] = {name: float(metrics[name]) for name in names if name in metrics}
        groups = {kind: lambda name, kind=kind: metric_key(name, kind) for kind in QUERY_KINDS}
        groups |= {f"turn{k}": lambda name, k=k: turn_key(name, k) for k in range(1, MAX_TURNS + 1)}
        for group, key_of in groups.items():
            values = {name: float(metrics[key_of(name)]) for name in names if key_of(name) in metrics}
            if values:
                summary[group] = values
        return summary


LOSS_TAG = "train_loss"
"""TensorBoard group of the training losses: ``train_loss/total``, ``train_loss/text``, ``train_loss/mask`` ..."""


def loss_scalars(output: Mapping[str, Any], tag: str = LOSS_TAG) -> dict[str, float]:
    """Every loss term of a training iteration as a TensorBoard scalar (``TensorBoardStatsHandler``'s ``output_transform``).

    The trainer's output holds the total under ``loss`` and each term under ``losses`` (the console's
    StatsHandler prints them all); TensorBoard gets the same terms, the total as ``{tag}/total``.
    """
    return {f"{tag}/{'total' if name == 'loss' else name}": float(value) for name, value in output["losses"].items()}


METRIC_HEADINGS = {
    "dice": "Dice",
    "giou": "gIoU",
    "ciou": "cIoU",
    "box_iou": "box IoU",
    "box_acc": "box Acc (IoU > 0.5)",
    "presence_precision": "presence precision",
    "presence_recall": "presence recall",
    "presence_f1": "presence F1",
    "negatives_with_mask": "negatives w/ mask",
}
"""Column heading of each metric in the printed table (as the README's)."""
KIND_ROWS = {
    "label": "label question",
    "short": "short reasoning question",
    "long": "long reasoning question",
    "follow_up": "follow-up question",
}


def metrics_table(summary: Mapping[str, Any]) -> str:
    """The metrics of :meth:`MetricsJsonWriter.summary` as a Markdown table: one row per query kind, then all."""
    names = [name for name in METRIC_HEADINGS if name in summary]
    rows = [(KIND_ROWS[kind], summary[kind]) for kind in QUERY_KINDS if kind in summary] + [("all", summary)]
    rows += [(f"turn {k}", summary[f"turn{k}"]) for k in range(1, MAX_TURNS + 1) if f"turn{k}" in summary]
    lines = [
        "| query kind | " + " | ".join(METRIC_HEADINGS[n] for n in names) + " |",
        "|" + " --- |" * (len(names) + 1),
    ]
    for title, values in rows:
        cells = ["-" if values.get(n) is None else f"{values[n]:.3f}" for n in names]
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


class EvaluationReport:
    """Says what an evaluation evaluates when it starts, and where its metrics went and what they are when it ends.

    Printed (rank 0): the checkpoint, the split with its volumes, slices and questions, then, at the end,
    the path of ``metrics.json`` and the metrics table.

    Args:
        checkpoint: the checkpoint evaluated (None: random heads).
        split: the split's name.
        dataset: the evaluated dataset (its ``counts()``, if it has them).
        writer: the :class:`MetricsJsonWriter` of the run (its path and its summary of the metrics).
    """

    def __init__(
        self, checkpoint: str | os.PathLike | None, split: str, dataset: Any, writer: MetricsJsonWriter
    ) -> None:
        self.checkpoint = None if checkpoint is None else os.path.abspath(checkpoint)
        self.split, self.dataset, self.writer = split, dataset, writer

    def attach(self, engine: Engine) -> None:
        """Prints when ``engine`` starts and after it completes (attach it after the writer)."""
        engine.add_event_handler(Events.STARTED, self.started)
        engine.add_event_handler(Events.COMPLETED, self.completed)

    def started(self, engine: Engine) -> None:
        """Prints the checkpoint and the split."""
        counts = self.dataset.counts() if hasattr(self.dataset, "counts") else {"questions": len(self.dataset)}
        held = ", ".join(f"{number} {name[:-1] if number == 1 else name}" for name, number in counts.items())
        self._print(
            "MediSee evaluation",
            f"  checkpoint: {self.checkpoint or 'none (random heads)'}",
            f"  split: {self.split} ({held})",
        )

    def completed(self, engine: Engine) -> None:
        """Prints the metrics file's path and the table."""
        if idist.get_rank() == 0:  # the file as written: what the table shows is what was saved
            summary = json.loads(self.writer.path.read_text(encoding="utf-8"))
            self._print(f"  metrics: {self.writer.path}", metrics_table(summary))

    @staticmethod
    def _print(*lines: str) -> None:
        if idist.get_rank() == 0:
            print(*lines, sep="\n", flush=True)


VOLUME_TABLE_COLUMNS = (
    ("dice_3d", "3D Dice"),
    ("hd95_mm", "HD95 mm"),
    ("msd_mm", "MSD mm"),
    ("volume_error_ml", "vol err mL"),
    ("slice_f1", "slice F1"),
    ("presence_auroc", "AUROC"),
    ("target_free_slices_with_mask", "free slices w/ mask"),
    ("absent_reported_found", "absent found"),
)
"""Columns of the printed volume table: (key of :func:`bundle.metrics.volumes.group_summary`, heading)."""


def volume_table(summary: Mapping[str, Any]) -> str:
    """The volume-level summary as a Markdown table: overall, per query kind, per dialogue turn, per label."""
    rows = [("all", summary["overall"])]
    rows += [(f"{kind} questions", values) for kind, values in summary["kinds"].items()]
    rows += [(f"turn {turn}", values) for turn, values in summary.get("turns", {}).items()]
    rows += list(summary["labels"].items())

    def cell(value: Any) -> str:
        return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)

    head = ["questions about", "n", *(title for _, title in VOLUME_TABLE_COLUMNS)]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for name, values in rows:
        cells = [name, str(values["questions"]), *(cell(values[key]) for key, _ in VOLUME_TABLE_COLUMNS)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


class VolumeMetricsWriter:
    """Collects the :class:`bundle.metrics.volumes.VolumeRecord` of a volume-level evaluation, then writes
    ``volume_metrics.json`` (the summary, and every question's outcome) and prints the table.

    Args:
        output_dir: directory of the file (created if missing).
        filename: file name.
    """

    def __init__(self, output_dir: str | os.PathLike, filename: str = "volume_metrics.json") -> None:
        self.path = Path(output_dir) / filename
        self.records: list = []

    def attach(self, engine: Engine) -> None:
        """Collects each iteration's records and reports when the run completes."""
        engine.add_event_handler(Events.STARTED, self.reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self.collect)
        engine.add_event_handler(Events.COMPLETED, self.report)

    def reset(self, engine: Engine) -> None:
        """Forgets earlier runs."""
        self.records = []

    def collect(self, engine: Engine) -> None:
        """Adds the records of the volume just evaluated."""
        self.records += list(engine.state.output)

    def report(self, engine: Engine) -> None:
        """Writes the file and prints the table."""
        from bundle.metrics.volumes import summarize

        summary = summarize(self.records)
        questions = [
            {
                "volume": r.volume,
                "label": r.label,
                "kind": r.kind,
                "present": r.present,
                "found": r.found,
                "dice_3d": r.dice,
                "hd95_mm": r.hd95,
                "volume_error_ml": r.volume_error_ml,
            }
            for r in self.records
        ]
        write_json(self.path, {**summary, "questions": questions})
        best = summary["best_presence_threshold"]
        lines = [volume_table(summary)]
        if best is not None:
            lines.append(f"best presence_threshold on these volumes (slice F1): {best}")
        print(*lines, f"volume metrics: {self.path}", sep="\n", flush=True)
