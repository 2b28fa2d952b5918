"""``VolumeEvaluator``: MONAI's SupervisedEvaluator over whole volumes, one question each.

Volumes differ in shape, so the loader does not collate them (``no_collation``): an iteration
receives a list of datalist entries and hands each volume, with its own question, to the
inferer. Outputs stay a list of per-volume dictionaries, which MONAI's postprocessing applies
to one by one (merged with their entry), so no decollation is needed.

An entry with a dialogue (``--dialogue``) becomes one entry per turn, named ``NAME_turnK``: its
turns are asked in order through one :class:`bundle.inference.dialogue.Dialogue`, so the volume's
slices are encoded once and each follow-up sees the earlier turns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch
from monai.engines import SupervisedEvaluator
from monai.engines.utils import IterationEvents
from monai.inferers import Inferer
from torch.utils.data import DataLoader

from bundle.engines.precision import engine_autocast
from bundle.inference import keys as K
from bundle.inference.dialogue import Dialogue, turn_entry


def no_collation(entries: list[dict]) -> list[dict]:
    """DataLoader ``collate_fn`` that keeps the entries of a batch as a list (volumes differ in shape)."""
    return entries


class VolumeEvaluator(SupervisedEvaluator):
    """Runs the inferer on each volume of the loader with that volume's question.

    Args:
        device: device the volumes are moved to (the model's).
        val_data_loader: yields lists of preprocessed datalist entries (``collate_fn=no_collation``).
        network: the MediSee model; run in eval mode under ``torch.no_grad()``.
        inferer: a :class:`bundle.inference.SliceInferer` (called as ``inferer(volume, network, query=..., name=...)``).
        postprocessing: per-volume dictionary transforms (invert, describe, write).
        val_handlers: ignite handlers, e.g. :class:`bundle.inference.InferenceSummary`.
        amp: autocast on the engine's device (the config derives it from ``dtype``:
            :mod:`bundle.engines.precision`).
        amp_kwargs: ``torch.autocast`` arguments (the dtype).
        kwargs: other :class:`monai.engines.SupervisedEvaluator` arguments (not ``decollate``).
    """

    def __init__(
        self,
        device: torch.device | str,
        val_data_loader: DataLoader,
        network: torch.nn.Module,
        inferer: Inferer,
        postprocessing: Callable | None = None,
        val_handlers: Sequence | None = None,
        amp: bool = False,
        amp_kwargs: dict | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            device=device,
            val_data_loader=val_data_loader,
            network=network,
            inferer=inferer,
            postprocessing=postprocessing,
            val_handlers=val_handlers,
            amp=amp,
            amp_kwargs=amp_kwargs,
            decollate=False,
            **kwargs,
        )

    def _iteration(self, engine: VolumeEvaluator, batchdata: list[dict]) -> list[dict]:
        """Infers every volume of the batch; returns one output dictionary per volume (per turn of a dialogue)."""
        entries, outputs = [], []
        for entry in batchdata:
            for item, output in self.infer_entry(engine, entry):
                entries.append(item)
                outputs.append(output)
        # postprocessing and the handlers pair each output with its entry: a dialogue's turns are entries
        engine.state.batch, engine.state.output = entries, outputs
        engine.fire_event(IterationEvents.FORWARD_COMPLETED)
        engine.fire_event(IterationEvents.MODEL_COMPLETED)  # postprocessing runs here
        return engine.state.output

    @classmethod
    def infer_entry(cls, engine: VolumeEvaluator, entry: Mapping[str, Any]) -> Iterator[tuple[dict, dict]]:
        """(entry, outputs) of one datalist entry: the volume's, or each turn's of its dialogue."""
        questions = entry.get(K.DIALOGUE)
        if not questions:
            yield dict(entry), cls.infer_volume(engine, entry)
            return
        volume = entry[K.IMAGE].to(engine.state.device, non_blocking=engine.non_blocking)
        dialogue = Dialogue(entry[K.NAME])
        for question in questions:
            turn = turn_entry(entry, dialogue.next_turn, question)
            with engine.mode(engine.network), engine_autocast(engine):
                outputs = dialogue.ask(engine.inferer, volume, engine.network, question, turn[K.NAME])
            yield turn, outputs

    @staticmethod
    def infer_volume(engine: VolumeEvaluator, entry: Mapping[str, Any]) -> dict:
        """The inferer's outputs for one datalist entry."""
        volume = entry[K.IMAGE].to(engine.state.device, non_blocking=engine.non_blocking)
        with engine.mode(engine.network), engine_autocast(engine):
            return engine.inferer(volume, engine.network, query=entry[K.QUERY], name=entry[K.NAME])
