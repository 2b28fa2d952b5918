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

What belongs to one open volume (its entry, slice encodings, dialogue and turns) is a
:class:`Conversation`; a front end serving several users keeps one each and makes it current with
:meth:`Session.use` before asking (the model is shared, so questions are answered one at a time).

Questions are data: they go to the inferer as text and never through the config parser.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from monai.bundle import ConfigParser

from bundle.engines.precision import autocast
from bundle.inference import keys as K
from bundle.inference.dialogue import Dialogue, SaveDialogueSummary, turn_entry
from bundle.inference.inferer import ProgressCallback
from bundle.inference.inputs import datalist
from bundle.inference.outputs import OutputLayout
from bundle.inference.settings import check_query, check_query_fits
from common.errors import DataError

PARTS = ("network", "preprocessing", "inferer", "postprocessing", "output_layout", "prompts")
"""The inference workflow's config ids a session builds once."""
LOADER_STEPS = 1
"""The preprocessing's first step reads the volume (``LoadInputd``); the rest normalise its intensities."""


@dataclass
class Conversation:
    """One open volume and the dialogue about it.

    Attributes:
        entry: the preprocessed datalist entry (``K.IMAGE`` is the model's input volume).
        volume: the input volume on the model's device.
        dialogue: the earlier turns and the volume's slice encodings.
        turns: every turn asked since the volume was opened (postprocessed entries, outputs included).
        output_dir: where this conversation's outputs go (None: the configs' ``output_dir``).
        source: the volume as read, in its own intensities (e.g. HU) on the model's grid (RAS), for display;
            None unless asked for when opening.
    """

    entry: dict[str, Any]
    volume: torch.Tensor
    dialogue: Dialogue
    turns: list[dict[str, Any]] = field(default_factory=list)
    output_dir: Path | None = None
    source: torch.Tensor | None = None

    @property
    def name(self) -> str:
        """The volume's name."""
        return self.entry[K.NAME]


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
        self.default_output_dir = self.layout.output_dir
        self.conversation: Conversation | None = None

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
    def current(self) -> Conversation:
        """The open volume's conversation.

        Raises:
            DataError: no volume is open.
        """
        if self.conversation is None:
            raise DataError("no volume is open: open one first")
        return self.conversation

    @property
    def name(self) -> str:
        """The open volume's name."""
        return self.current.name

    @property
    def volume(self) -> torch.Tensor:
        """The open volume, as the model sees it."""
        return self.current.volume

    @property
    def dialogue(self) -> Dialogue:
        """The open volume's dialogue."""
        return self.current.dialogue

    @property
    def turns(self) -> list[dict[str, Any]]:
        """Every turn asked about the open volume."""
        return self.current.turns

    def open(
        self, image: str | os.PathLike, output_dir: str | os.PathLike | None = None, keep_source: bool = False
    ) -> Conversation:
        """Loads the volume (a NIfTI file or a DICOM series folder), starts a dialogue about it and makes it current.

        Args:
            image: the volume.
            output_dir: where its turns' outputs go (default: the configs' ``output_dir``).
            keep_source: keep a copy of the volume as read (:attr:`Conversation.source`), for display.

        Raises:
            DataError: the image is missing, unreadable or not one volume.
        """
        entries = datalist(str(image), "(no question yet)")
        if len(entries) != 1:
            raise DataError(f"{image} holds {len(entries)} volumes; a session opens one (name a file or a series)")
        loaded = self.preprocessing(entries[0], end=LOADER_STEPS)
        # the intensity steps work in place: the copy for display is taken before them
        source = loaded[K.IMAGE].as_tensor().clone() if keep_source else None
        entry = self.preprocessing(loaded, start=LOADER_STEPS)
        volume = entry[K.IMAGE].to(self.device)
        where = None if output_dir is None else Path(output_dir)
        conversation = Conversation(entry, volume, Dialogue(entry[K.NAME]), output_dir=where, source=source)
        self.use(conversation)
        return conversation

    def use(self, conversation: Conversation) -> None:
        """Makes ``conversation`` current: later questions are about its volume and write to its folder."""
        self.conversation = conversation
        self.layout.output_dir = conversation.output_dir or self.default_output_dir

    def new(self) -> None:
        """Starts a new dialogue about the open volume (its slice encodings are kept)."""
        self.dialogue.new()

    def ask(self, question: Any, on_progress: ProgressCallback | None = None) -> dict[str, Any]:
        """Answers ``question`` as the next turn and writes its outputs; returns the turn's entry with its outputs.

        The result holds ``K.ANSWER``, ``K.RESULT`` (slices, 3D box, volume in mL, presence),
        ``K.OUTPUT_FILES`` (``NAME_turnK_mask.nii.gz``, ``_result.json``, ``_overlay.png``) and
        ``K.LOADED_PRED`` (the mask on the model's grid); turns are numbered across the whole session,
        so a new dialogue never overwrites an earlier one's files.

        Args:
            question: the question (text, never parsed as config).
            on_progress: called with (slices done, slices in all) as the slices are processed.

        Raises:
            ConfigError: the question is empty or too long for the model.
            DataError: no volume is open, or a turn's outputs exist (and ``overwrite`` is off).
        """
        conversation = self.current
        text = check_query(question)
        earlier = [past.question for past in conversation.dialogue.turns]
        check_query_fits(self.prompts, [{K.QUERY: text, K.DIALOGUE: [*earlier, text]}], *self.answer_settings)
        entry = turn_entry(conversation.entry, len(conversation.turns) + 1, text)
        self.layout.check_free([entry])  # before any model work, as the workflow's pre-flight
        with torch.no_grad(), autocast(self.device, self.amp, self.amp_kwargs):
            outputs = conversation.dialogue.ask(
                self.inferer, conversation.volume, self.network, text, entry[K.NAME], on_progress
            )
        turn = self.postprocessing({**entry, **outputs})
        turn[K.LOADED_PRED] = outputs[K.PRED]
        conversation.turns.append(turn)
        return turn

    def save(self) -> Path:
        """Writes ``NAME_dialogue.json``: every turn of the session so far; returns its path.

        Raises:
            DataError: nothing was asked yet, or the file exists (and ``overwrite`` is off).
        """
        if not self.turns:
            raise DataError("nothing to save: ask a question first")
        return self.summary.write(self.name, self.turns)
