"""The volume-level evaluation engine: every question about every volume, through inference's own inferer.

Each iteration takes one volume of a :class:`bundle.data.volumes.VolumeQuestionDataset` and asks
each of its questions with the :class:`bundle.inference.SliceInferer` that inference uses (the
presence gate, the 3D clean-up, ``batch_size`` slices per forward pass), on the grid it was loaded
on, where the label map lies too. ``engine.state.output`` is the list of
:class:`bundle.metrics.volumes.VolumeRecord` of the volume; :class:`bundle.handlers.VolumeMetricsWriter`
turns them into the table. A volume's dialogues are asked turn by turn, each turn after the earlier
ones as answered on each slice (as the chat asks them); their follow-up turns are recorded with
their turn number (the first turn is a label question, already recorded as a single question).
"""

from __future__ import annotations

from typing import Any

import torch
from monai.engines import SupervisedEvaluator
from monai.engines.utils import IterationEvents

from bundle.data.volumes import VolumeQuestion
from bundle.engines.precision import engine_autocast
from bundle.inference import keys as K
from bundle.inference.dialogue import Dialogue
from bundle.metrics.volumes import VolumeRecord, volume_record


class VolumeQuestionEvaluator(SupervisedEvaluator):
    """Asks every question of each volume and records the outcomes.

    Args:
        slice_axis: the axis the inferer slices along (the same as the inferer's).
        **kwargs: :class:`monai.engines.SupervisedEvaluator` arguments: ``device``, ``val_data_loader``
            (``collate_fn=bundle.inference.no_collation``), ``network``, ``inferer``, ``val_handlers``,
            ``amp``, ``amp_kwargs``.
    """

    def __init__(self, slice_axis: int = 2, **kwargs: Any) -> None:
        kwargs.setdefault("decollate", False)
        super().__init__(**kwargs)
        self.slice_axis = slice_axis

    def _iteration(self, engine: VolumeQuestionEvaluator, batchdata: list[dict]) -> list[VolumeRecord]:
        records = [record for item in batchdata for record in self.ask_all(engine, item)]
        engine.state.output = records
        engine.fire_event(IterationEvents.FORWARD_COMPLETED)
        engine.fire_event(IterationEvents.MODEL_COMPLETED)
        return records

    def ask_all(self, engine: VolumeQuestionEvaluator, item: dict) -> list[VolumeRecord]:
        """The records of one volume's questions."""
        volume = item["image"].to(engine.state.device, non_blocking=engine.non_blocking)
        spacing = [float(s) for s in item["image"].pixdim]
        records = [self.ask(engine, volume, item, question, spacing) for question in item["questions"]]
        for turns in item.get("dialogues", ()):
            dialogue = Dialogue(item["name"])
            for number, question in enumerate(turns, start=1):
                record = self.ask(engine, volume, item, question, spacing, dialogue)
                if number > 1:
                    record.turn = number
                    records.append(record)
        return records

    def ask(
        self,
        engine: VolumeQuestionEvaluator,
        volume: torch.Tensor,
        item: dict,
        question: VolumeQuestion,
        spacing,
        dialogue: Dialogue | None = None,
    ) -> VolumeRecord:
        """One question's outcome (a turn of ``dialogue``, after its earlier turns, when given)."""
        with engine.mode(engine.network), engine_autocast(engine):
            if dialogue is None:
                out = engine.inferer(volume, engine.network, query=question.text, name=item["name"])
            else:
                out = dialogue.ask(engine.inferer, volume, engine.network, question.text, item["name"])
        presence = {p.index: p.presence for p in out[K.PREDICTIONS]}
        return volume_record(
            volume=item["name"],
            label=question.label,
            kind=question.kind,
            outside=question.outside,
            pred=out[K.PRED].as_tensor()[0] > 0,
            truth=item["label"] == question.value,
            spacing=spacing,
            slice_axis=self.slice_axis,
            presence=presence,
        )
