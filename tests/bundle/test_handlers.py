"""MetricsJsonWriter: the metrics file after a run, its structure, rank 0 only, never partial; what an evaluation
prints and what TensorBoard gets of the losses."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import ignite.distributed as idist
import pytest
import torch
from ignite.engine import Engine, Events

from bundle.handlers import EvaluationReport, MetricsJsonWriter, loss_scalars, metrics_table
from bundle.metrics import BoxAccuracy, BoxIoU, CIoU, Dice, GIoU

# Engine metrics as the five metrics leave them: base names, per-kind keys, scalars under attached names.
METRICS = {
    "dice": 0.5, "dice_label": 0.6, "dice_long": 0.4, "val_mean_dice": 0.5,
    "giou": 0.4, "giou_label": 0.5, "giou_long": 0.3,
    "ciou": 0.45, "ciou_label": 0.55, "ciou_long": 0.35,
    "box_iou": 0.3, "box_iou_label": 0.35,
    "box_acc": 0.25, "box_acc_label": 0.5,
}  # fmt: skip


def _engine_with(metrics: dict) -> Engine:
    """An engine whose run ends with ``metrics`` in its state."""
    engine = Engine(lambda _, batch: batch)
    engine.add_event_handler(Events.EPOCH_COMPLETED, lambda e: e.state.metrics.update(metrics))
    return engine


def _run_writer(engine: Engine, output_dir: Path, **kwargs) -> Path:
    writer = MetricsJsonWriter(output_dir, **kwargs)
    writer.attach(engine)
    engine.run([0], max_epochs=1)
    return output_dir / kwargs.get("filename", "metrics.json")


def test_writes_overall_values_and_a_section_per_kind_seen(tmp_path):
    path = _run_writer(_engine_with(METRICS), tmp_path / "eval" / "run1")
    assert json.loads(path.read_text()) == {
        "dice": 0.5, "giou": 0.4, "ciou": 0.45, "box_iou": 0.3, "box_acc": 0.25,
        "label": {"dice": 0.6, "giou": 0.5, "ciou": 0.55, "box_iou": 0.35, "box_acc": 0.5},
        "long": {"dice": 0.4, "giou": 0.3, "ciou": 0.35},
    }  # fmt: skip


def test_writes_the_real_metrics_of_an_evaluation_run(tmp_path):
    output = {
        "pred_masks": [torch.tensor([[3.0, -3.0]]), torch.tensor([[-3.0], [-3.0]])],
        "masks": [torch.tensor([[1.0, 1.0]]), torch.tensor([[0.0], [0.0]])],
        "pred_boxes": torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 1.0, 1.0]]),
        "boxes": torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.0, 0.0]]),
        "box_valid": torch.tensor([True, False]),
        "present": torch.tensor([True, True]),
        "kinds": ["short", "long"],
        "turns": [1, 1],
    }
    engine = Engine(lambda _, batch: batch)
    for metric in (Dice(), GIoU(), CIoU(), BoxIoU(), BoxAccuracy()):
        metric.attach(engine, f"val_{metric.name}")
    writer = MetricsJsonWriter(tmp_path, filename="test_metrics.json")
    writer.attach(engine)
    engine.run([output], max_epochs=1)
    written = json.loads((tmp_path / "test_metrics.json").read_text())
    assert written["dice"] == pytest.approx((2 / 3 + 1) / 2) and written["ciou"] == pytest.approx(0.5)
    assert written["short"] == pytest.approx({"dice": 2 / 3, "giou": 0.5, "ciou": 0.5, "box_iou": 1.0, "box_acc": 1.0})
    assert written["long"] == {"dice": 1.0, "giou": 1.0, "ciou": 1.0}  # no box in the long row
    assert "label" not in written


def test_writes_only_the_named_metrics(tmp_path):
    path = _run_writer(_engine_with(METRICS), tmp_path, metric_names=("dice",))
    assert json.loads(path.read_text()) == {"dice": 0.5, "label": {"dice": 0.6}, "long": {"dice": 0.4}}


def test_metrics_not_attached_are_left_out_with_a_warning(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="bundle.handlers"):
        path = _run_writer(_engine_with({"dice": 0.5, "dice_short": 0.7}), tmp_path)
    assert json.loads(path.read_text()) == {"dice": 0.5, "short": {"dice": 0.7}}
    assert "giou" in caplog.text and "box_acc" in caplog.text


def test_writes_when_the_run_completes_not_before(tmp_path):
    engine = _engine_with(METRICS)
    writer = MetricsJsonWriter(tmp_path)
    writer.attach(engine)
    assert engine.has_event_handler(writer, Events.COMPLETED)
    assert not engine.has_event_handler(writer, Events.EPOCH_COMPLETED)


def test_ranks_other_than_zero_write_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(idist, "get_rank", lambda: 1)
    _run_writer(_engine_with(METRICS), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_failed_write_leaves_the_previous_file_whole_and_no_partial_file(tmp_path, monkeypatch):
    previous = '{"dice": 0.1}\n'
    (tmp_path / "metrics.json").write_text(previous)

    def half_then_fail(self, text, *args, **kwargs):
        with open(self, "w") as stream:
            stream.write(text[: len(text) // 2])
        raise OSError("disk full")

    monkeypatch.setattr(Path, "write_text", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        _run_writer(_engine_with(METRICS), tmp_path)
    monkeypatch.undo()
    assert (tmp_path / "metrics.json").read_text() == previous
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_every_loss_term_becomes_its_own_scalar():
    output = {"loss": 3.0, "losses": {"loss": 3.0, "text": 1.0, "mask": 1.5, "box": 0.5}}
    assert loss_scalars(output) == {
        "train_loss/total": 3.0, "train_loss/text": 1.0, "train_loss/mask": 1.5, "train_loss/box": 0.5,
    }  # fmt: skip


def test_the_metrics_table_has_a_row_per_kind_seen_then_all():
    summary = MetricsJsonWriter(".").summary(METRICS)
    lines = metrics_table(summary).splitlines()
    assert lines[0] == "| query kind | Dice | gIoU | cIoU | box IoU | box Acc (IoU > 0.5) |"
    assert lines[2].startswith("| label question | 0.600 | 0.500 | 0.550 | 0.350 | 0.500 |")
    assert lines[3] == "| long reasoning question | 0.400 | 0.300 | 0.350 | - | - |"
    assert lines[-1] == "| all | 0.500 | 0.400 | 0.450 | 0.300 | 0.250 |"


class _Slices:
    def counts(self):
        return {"volumes": 1, "slices": 12, "questions": 30}


def test_the_evaluation_report_says_what_was_evaluated_then_where_the_metrics_are(tmp_path, capsys):
    engine = _engine_with(METRICS)
    writer = MetricsJsonWriter(tmp_path)
    writer.attach(engine)
    EvaluationReport(tmp_path / "ckpt", "test", _Slices(), writer).attach(engine)
    engine.run([0], max_epochs=1)
    lines = capsys.readouterr().out.splitlines()
    assert lines[:4] == [
        "MediSee evaluation",
        f"  checkpoint: {tmp_path / 'ckpt'}",
        "  split: test (1 volume, 12 slices, 30 questions)",
        f"  metrics: {tmp_path / 'metrics.json'}",
    ]
    assert lines[4].startswith("| query kind | Dice") and lines[-1].startswith("| all | 0.500")
