"""MedSeg-QA-style conversation json: multi-turn conversations about 2D images, read as MediSee dialogues.

The file is a JSON list (LLaVA's conversation layout, which MedSeg-QA-style releases use)::

    [{"image": "images/case1_040.png",
      "conversations": [
          {"from": "human", "value": "<image>\\nWhich organ here stores bile?"},
          {"from": "gpt", "value": "It is [SEG]. The gallbladder stores bile made by the liver."},
          {"from": "human", "value": "Is it inflamed?"},
          {"from": "gpt", "value": "Its wall is not thickened, so there is no sign of inflammation."}],
      "masks": ["masks/case1_040_gallbladder.png", null],
      "classes": ["gallbladder", null]}]

Mapping onto MediSee dialogues (one conversation row, read once per segmenting turn):

- ``conversations`` alternate ``human`` and ``gpt``, from ``human``; each pair is a turn. ``<image>``
  and the newline after it are dropped from the question (the prompt places the image itself).
- A ``gpt`` value holding a segmentation placeholder (``[SEG]`` or ``<SEG>``) is a segmenting turn:
  its answer becomes "It is [SEG] and [BBOX]." followed, as the explanation, by the text after the
  last placeholder (the lead-in before it, such as "It is" or "Sure,", is dropped). Its target is
  that turn's PNG in ``masks`` (one entry per ``gpt`` turn) or, for every segmenting turn, the single
  ``mask``. A ``null`` mask of a segmenting turn means the target is not on the image: the answer is
  "It is [REJ]." with the same explanation (needs a model with presence).
- Any other ``gpt`` value is a text-only turn: answered verbatim (its cross entropy trains), no
  mask, not measured.
- ``classes`` (one per ``gpt`` turn) or ``class_text`` (one for all) names the targets for logs and
  metrics; default ``target``. The first turn is a ``long`` question, later ones ``follow_up``.

Images and masks are grey PNGs as in SA-Med2D (masks 0 / 255), paths relative to the json's folder.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from bundle.data.base import Drawn, TargetDataset
from bundle.data.dialogues import FOLLOW_UP
from bundle.data.images2d import binary_mask, grey_image
from bundle.data.paths import check_on_missing, keep_or_raise, missing_files, read_json, resolve_inside
from bundle.data.queries import Query
from common.errors import DataError

SEG_PLACEHOLDER = re.compile(r"\[SEG\]|<SEG>")
IMAGE_PLACEHOLDER = re.compile(r"<image>\s*")
DEFAULT_CLASS = "target"
FIRST_KIND = "long"


@dataclass(frozen=True)
class ConversationTurn:
    """One parsed turn: its query, the class it asks about and its mask (None: none, or not on the image)."""

    query: Query
    class_name: str
    mask: Path | None


def _text(message, role: str, where: str) -> str:
    if not isinstance(message, Mapping) or message.get("from") != role or not isinstance(message.get("value"), str):
        raise DataError(f"{where}: expected a {{'from': '{role}', 'value': ...}} message")
    return message["value"]


def _per_turn(entry: Mapping, many: str, one: str, turns: int, where: str) -> list:
    """``entry[many]`` (one value per gpt turn) or ``entry[one]`` repeated."""
    if many in entry:
        values = entry[many]
        if not isinstance(values, Sequence) or isinstance(values, str) or len(values) != turns:
            raise DataError(f"{where}: '{many}' must list one value per gpt turn ({turns})")
        return list(values)
    return [entry.get(one)] * turns


def parse_conversation(entry, root: Path, where: str, listed_in: Path) -> tuple[Path, list[ConversationTurn]]:
    """The image and turns of one conversation entry (see the module docstring for the mapping)."""
    if not isinstance(entry, Mapping) or not isinstance(entry.get("image"), str):
        raise DataError(f"{where} needs an 'image' path")
    messages = entry.get("conversations")
    if not isinstance(messages, Sequence) or not messages or len(messages) % 2:
        raise DataError(f"{where}: 'conversations' must hold human/gpt pairs")
    count = len(messages) // 2
    masks = _per_turn(entry, "masks", "mask", count, where)
    classes = _per_turn(entry, "classes", "class_text", count, where)
    turns = []
    for k in range(count):
        question = IMAGE_PLACEHOLDER.sub("", _text(messages[2 * k], "human", f"{where} message {2 * k}")).strip()
        answer = _text(messages[2 * k + 1], "gpt", f"{where} message {2 * k + 1}").strip()
        if not question:
            raise DataError(f"{where} message {2 * k}: the question is empty")
        kind = FIRST_KIND if k == 0 else FOLLOW_UP
        name = str(classes[k] or DEFAULT_CLASS).lower()
        if not SEG_PLACEHOLDER.search(answer):
            turns.append(ConversationTurn(Query(kind, question, None, answer=answer), name, None))
            continue
        # what follows the last placeholder explains; the words before it ("It is", "Sure,") are the
        # lead-in our own answer prefix replaces
        after = SEG_PLACEHOLDER.split(answer)[-1].lstrip(" .,;:")
        explanation = " ".join(after.split()) or None
        mask = resolve_inside(root, masks[k], listed_in) if masks[k] is not None else None
        turns.append(ConversationTurn(Query(kind, question, explanation, present=mask is not None), name, mask))
    if all(turn.query.answer is not None for turn in turns):
        raise DataError(f"{where}: no gpt turn segments anything (none holds [SEG])")
    return resolve_inside(root, entry["image"], listed_in), turns


class ConversationDataset(TargetDataset):
    """Conversations about 2D images (MedSeg-QA style): each entry is one dialogue row, as written.

    Args:
        json_path: the conversation json (a list of entries).
        on_missing: ``error`` (default) or ``skip`` entries whose files are missing.
        **kwargs: :class:`TargetDataset` options (mode, seed); questions come from the file, so the
            question sampler, negatives and dialogue pools do not apply.
    """

    def __init__(self, json_path: str | Path, on_missing: str = "error", **kwargs) -> None:
        super().__init__(**kwargs)
        self.json_path = Path(json_path)
        data = read_json(self.json_path, "conversation json")
        if not isinstance(data, Sequence) or isinstance(data, str):
            raise DataError(f"{self.json_path}: expected a list of conversations")
        check_on_missing(on_missing)
        self._entries: list[tuple[Path, list[ConversationTurn]]] = []
        for number, entry in enumerate(data):
            where = f"{self.json_path} [{number}]"
            image, turns = parse_conversation(entry, self.json_path.parent, where, self.json_path)
            files = [image] + [turn.mask for turn in turns if turn.mask is not None]
            if keep_or_raise(missing_files(files), self.json_path, on_missing, f"entry {number}"):
                self._entries.append((image, turns))
        self.index_images([(i, [0]) for i in range(len(self._entries))])
        # one item per conversation in either mode: its questions are the file's, not one per kind
        self._items = [(i, [0], None, ()) for i in range(len(self._entries))]

    def draw(self, index: int) -> tuple[Hashable, list[list[Drawn]]]:
        """The entry's one row, as written (nothing is drawn)."""
        image_key = self._items[index][0]
        turns = self._entries[image_key][1]
        return image_key, [[(k, turn.class_name, turn.query) for k, turn in enumerate(turns)]]

    def load_image(self, image_key: Hashable) -> torch.Tensor:
        return grey_image(self._entries[image_key][0])

    def load_mask(self, image_key: Hashable, target_key: Hashable, shape: tuple[int, int]) -> torch.Tensor:
        mask = self._entries[image_key][1][target_key].mask
        return torch.zeros(shape, dtype=torch.bool) if mask is None else binary_mask(mask, shape)

    def class_name(self, image_key: Hashable, target_key: Hashable) -> str:
        return self._entries[image_key][1][target_key].class_name

    def source(self, image_key: Hashable) -> str:
        return str(self._entries[image_key][0])
