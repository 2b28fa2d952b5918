"""A session: the model built once, one volume loaded and encoded once, then any number of questions.

Every question through ``monai.bundle run`` builds the model, reads the volume and encodes every
slice again. A :class:`Session` builds the parts of the inference workflow once, from the same
configs and overrides (``configs/model.json`` + ``configs/inference.json``: the network, the
preprocessing, the :class:`bundle.inference.SliceInferer`, the postprocessing that writes the
outputs), and keeps them. :meth:`Session.open` loads a volume; :meth:`Session.ask` answers a
question as the next turn of a :class:`bundle.inference.Dialogue` about it (the slice encodings
computed on the first question, reused by every later one), writing ``NAME_turnK_*`` as the
inference workflow's ``--dialogue`` does; :meth:`Session.new` starts a new dialogue about the same
volume; :meth:`Session.save` writes ``NAME_dialogue.json``. The configs' ``initialize`` runs first,
as in the workflow.

Questions are data: they go to the inferer as text and never through the config parser.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from monai.bundle import ConfigParser

from bundle.engines.precision import autocast
from bundle.inference import keys as K
from bundle.inference.dialogue import Dialogue, SaveDialogueSummary, turn_entry
from bundle.inference.inputs import datalist
from bundle.inference.outputs import OutputLayout
from bundle.inference.settings import check_query, check_query_fits
from common.errors import DataError

PARTS = ("network", "preprocessing", "inferer", "postprocessing", "output_layout", "prompts")
"""The inference workflow's config ids a session builds once."""


class Session:
    """The inference workflow's parts, kept between questions.

    Args:
        parser: the inference configs with their overrides (nothing parsed yet).

    Raises:
        ConfigError, WeightsError: as the inference workflow raises them when its parts are built.
    """

    def __init__(self, parser: ConfigParser) -> None:
        # the workflow's own set-up first: its log filters, one-line errors and seed (a random-weights model
        # is the same as the workflow's)
        parser.get_parsed_content("initialize")
        parts = {name: parser.get_parsed_content(name) for name in PARTS}
        self.network: torch.nn.Module = parts["network"]
        self.preprocessing = parts["preprocessing"]
        self.inferer = parts["inferer"]
        self.postprocessing = parts["postprocessing"]
        self.layout: OutputLayout = parts["output_layout"]
        self.prompts = parts["prompts"]
        self.device = torch.device(parser.get_parsed_content("device"))
        self.amp = bool(parser.get_parsed_content("amp"))
        self.amp_kwargs = parser.get_parsed_content("amp_kwargs")
        self.answer_settings = (
            parser.get_parsed_content("max_new_tokens"),
            parser.get_parsed_content("generate_answer"),
        )
        self.summary = SaveDialogueSummary(self.layout)
        self.network.eval()
        self.entry: dict[str, Any] | None = None
        self.volume: torch.Tensor | None = None
        self.dialogue: Dialogue | None = None
        self.turns: list[dict[str, Any]] = []

    @classmethod
    def from_configs(
        cls, config_files: Sequence[str | os.PathLike], overrides: Mapping[str, Any] | None = None
    ) -> Session:
        """A session of the inference workflow declared by ``config_files`` (e.g. ``configs/model.json`` and
        ``configs/inference.json``), with config ``overrides`` (``{"checkpoint": ..., "batch_size": 4}``)."""
        parser = ConfigParser()
        parser.read_config([str(f) for f in config_files])
        for key, value in (overrides or {}).items():
            parser[key] = value
        return cls(parser)

    @property
    def name(self) -> str:
        """The open volume's name."""
        if self.entry is None:
            raise DataError("no volume is open: open one first")
        return self.entry[K.NAME]

    def open(self, image: str | os.PathLike) -> str:
        """Loads the volume (a NIfTI file or a DICOM series folder) and starts a dialogue about it; returns its name.

        Raises:
            DataError: the image is missing, unreadable or not one volume.
        """
        entries = datalist(str(image), "(no question yet)")
        if len(entries) != 1:
            raise DataError(f"{image} holds {len(entries)} volumes; a session opens one (name a file or a series)")
        self.entry = self.preprocessing(entries[0])
        self.volume = self.entry[K.IMAGE].to(self.device)
        self.dialogue = Dialogue(self.entry[K.NAME])
        self.turns = []
        return self.name

    def new(self) -> None:
        """Starts a new dialogue about the open volume (its slice encodings are kept)."""
        if self.dialogue is None:
            raise DataError("no volume is open: open one first")
        self.dialogue.new()

    def ask(self, question: Any) -> dict[str, Any]:
        """Answers ``question`` as the next turn and writes its outputs; returns the turn's entry with its outputs.

        The result holds ``K.ANSWER``, ``K.RESULT`` (slices, 3D box, volume in mL, presence) and
        ``K.OUTPUT_FILES`` (``NAME_turnK_mask.nii.gz``, ``_result.json``, ``_overlay.png``); turns are
        numbered across the whole session, so a new dialogue never overwrites an earlier one's files.

        Raises:
            ConfigError: the question is empty or too long for the model.
            DataError: no volume is open, or a turn's outputs exist (and ``overwrite`` is off).
        """
        if self.dialogue is None or self.entry is None or self.volume is None:
            raise DataError("no volume is open: open one first")
        text = check_query(question)
        earlier = [past.question for past in self.dialogue.turns]
        check_query_fits(self.prompts, [{K.QUERY: text, K.DIALOGUE: [*earlier, text]}], *self.answer_settings)
        entry = turn_entry(self.entry, len(self.turns) + 1, text)
        self.layout.check_free([entry])  # before any model work, as the workflow's pre-flight
        with torch.no_grad(), autocast(self.device, self.amp, self.amp_kwargs):
            outputs = self.dialogue.ask(self.inferer, self.volume, self.network, text, entry[K.NAME])
        turn = self.postprocessing({**entry, **outputs})
        self.turns.append(turn)
        return turn

    def save(self) -> Path:
        """Writes ``NAME_dialogue.json``: every turn of the session so far; returns its path.

        Raises:
            DataError: nothing was asked yet, or the file exists (and ``overwrite`` is off).
        """
        if not self.turns:
            raise DataError("nothing to save: ask a question first")
        return self.summary.write(self.name, self.turns)
