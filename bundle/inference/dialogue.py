"""Dialogues: several questions about one volume, each follow-up seeing the earlier turns.

A :class:`Dialogue` keeps, for one loaded volume, the earlier turns (each question with the slices
where its target was found) and the volume's slice encodings (:class:`SliceEncodings`), so its
first question encodes the slices and every later one reuses them. On each slice, a follow-up's
conversation holds the earlier turns as answered there: "It is [SEG] and [BBOX]." where that turn
found its target on the slice, "It is [REJ]." where it did not (:mod:`bundle.prompts`).

Turn ``K`` (from 1) of volume ``NAME`` writes ``NAME_turnK_mask.nii.gz``, ``NAME_turnK_result.json``
and ``NAME_turnK_overlay.png``; :class:`SaveDialogueSummary` writes ``NAME_dialogue.json``, one line
per turn (question, answer, slices found, volume, files).

A dialogue file (``--dialogue FILE.json``) is a JSON list of turns, each a question string or an
object with a ``"question"`` string.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine, Events
from monai.data import MetaTensor

from bundle.inference import keys as K
from bundle.inference.encodings import SliceEncodings
from bundle.inference.inferer import PastTurn, ProgressCallback, SliceInferer
from bundle.inference.outputs import OutputLayout, turn_name
from common.errors import DataError
from common.files import write_json
from transforms.keys import FILENAME


def read_dialogue(path: str | os.PathLike) -> list[str]:
    """The questions of a dialogue file, in order (see the module doc): read as data, never as config.

    Raises:
        DataError: naming the file and what is wrong with it (unreadable, not JSON, not a list of questions).
    """
    source = Path(path).expanduser()
    try:
        turns = json.loads(source.read_text(encoding="utf-8"))
    except OSError as error:
        raise DataError(f"config 'dialogue': cannot read {source}: {error.strerror or error}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(f"config 'dialogue': {source} is not a JSON file: {error}") from None
    if not isinstance(turns, list) or not turns:
        raise DataError(f"config 'dialogue': {source} must hold a non-empty JSON list of questions")
    questions = []
    for k, turn in enumerate(turns, 1):
        text = turn.get("question") if isinstance(turn, Mapping) else turn
        if not isinstance(text, str) or not text.strip():
            raise DataError(
                f"config 'dialogue': turn {k} of {source} must be a question string or an object with a "
                f"non-empty 'question' string, got {turn!r}"
            )
        questions.append(text.strip())
    return questions


class Dialogue:
    """One conversation about one loaded volume.

    Args:
        name: the volume's name (turn outputs are named after it).
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.turns: list[PastTurn] = []
        self.encodings = SliceEncodings()

    @property
    def next_turn(self) -> int:
        """The number (from 1) the next question will have."""
        return len(self.turns) + 1

    def ask(
        self,
        inferer: SliceInferer,
        volume: MetaTensor,
        network: torch.nn.Module,
        question: str,
        name: str = "",
        on_progress: ProgressCallback | None = None,
    ) -> dict[str, Any]:
        """Answers ``question`` after the earlier turns; returns the inferer's outputs (see :class:`SliceInferer`).

        Args:
            inferer: the volume inferer.
            volume: the preprocessed (C, X, Y, Z) volume on the model's device (the same for every turn).
            network: the MediSee model in eval mode.
            question: the question.
            name: the turn's output name, for the progress bar.
            on_progress: called with (slices done, slices in all) as the slices are processed.
        """
        outputs = inferer(
            volume,
            network,
            query=question,
            name=name,
            history=self.turns,
            encodings=self.encodings,
            on_progress=on_progress,
        )
        self.turns.append(PastTurn(str(question), frozenset(p.index for p in outputs[K.SLICES])))
        return outputs

    def new(self) -> None:
        """Forgets the earlier turns (the slice encodings stay: the volume is the same)."""
        self.turns.clear()


def turn_entry(entry: Mapping[str, Any], number: int, question: str) -> dict[str, Any]:
    """The entry of turn ``number`` (from 1) of a dialogue about ``entry``'s volume: named ``NAME_turnK``, asking ``question``."""
    name = entry[K.NAME]
    return {**entry, K.NAME: turn_name(name, number), K.QUERY: question, K.TURN: number, K.DIALOGUE_NAME: name}


def turn_line(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The summary line of one turn's entry merged with its outputs (after postprocessing)."""
    result = entry.get(K.RESULT, {})
    return {
        "turn": entry[K.TURN],
        "question": str(entry[K.QUERY]),
        "answer": entry.get(K.ANSWER),
        "found": bool(result.get("found")),
        "slices": [s["index"] for s in result.get("slices", [])],
        "volume_ml": result.get("volume_ml"),
        "files": {kind: str(path) for kind, path in entry.get(K.OUTPUT_FILES, {}).items()},
    }


class SaveDialogueSummary:
    """Writes ``NAME_dialogue.json`` for each dialogue of an iteration: its turns, one line each.

    Args:
        layout: the output folder and the overwrite rule.
    """

    def __init__(self, layout: OutputLayout) -> None:
        self.layout = layout

    def attach(self, engine: Engine) -> None:
        """Registers the handler on ``engine``."""
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        """Groups the iteration's turn outputs by volume and writes each dialogue's summary."""
        dialogues: dict[str, list[dict[str, Any]]] = {}
        for entry, output in zip(engine.state.batch, engine.state.output):
            if K.TURN in entry:
                dialogues.setdefault(entry[K.DIALOGUE_NAME], []).append({**entry, **output})
        for name, turns in dialogues.items():
            self.write(name, turns)

    def write(self, name: str, turns: Sequence[Mapping[str, Any]]) -> Path:
        """Writes the summary of volume ``name``'s turns (atomically); returns its path."""
        path = self.layout.claim(name, K.DIALOGUE_FILE)
        image = turns[0][K.IMAGE]
        source = image.meta.get(FILENAME) if isinstance(image, MetaTensor) else image
        write_json(path, {"image": None if source is None else str(source), "turns": [turn_line(t) for t in turns]})
        return path
