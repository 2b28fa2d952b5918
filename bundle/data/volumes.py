"""Whole volumes with every question of the label set, for volume-level evaluation (``configs/evaluate_volumes.json``).

One item is one volume of a NIfTI dataset split (``dataset.json``, as :mod:`bundle.data.nifti`
reads it): the image loaded and preprocessed as inference does (reoriented, finite values,
windowed), its label map on the same grid, and one question per (label, kind) for *every* label of
the dataset's label set, whether the volume holds it or not, plus label questions about structures
outside the label set (which no volume holds). Questions are chosen from (seed, volume, label,
kind) alone, so every model is asked the same ones.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from bundle.data.dialogues import FOLLOW_UP, NOTHING, DialogueSampler, FollowUp, parse_dialogue_pools
from bundle.data.nifti import DATASET_FILE, SPLITS, check_pair, label_names, read_dataset_json
from bundle.data.paths import resolve_inside
from bundle.data.queries import DEFAULT_KIND_WEIGHTS, QuestionSampler, parse_prompt_pools
from bundle.prompts import QUERY_KINDS, label_question
from common.errors import ConfigError, DataError
from transforms.intensity import FiniteValuesd, intensity_transform
from transforms.loading import load_volume

OUTSIDE_LABEL = -1
NOTHING_LABEL = -2
"""The label value of a follow-up answered "nothing" (no voxel carries it)."""
"""Label value of a question about a structure outside the label set: no voxel holds it."""
DEFAULT_OUTSIDE = ("heart", "left lung")


@dataclass(frozen=True)
class VolumeQuestion:
    """One question about a volume.

    Attributes:
        label: the label's name (or the outside structure's).
        value: its value in the label map (:data:`OUTSIDE_LABEL` for a structure outside the label set).
        kind: ``label``, ``short``, ``long`` or ``follow_up``.
        text: the question.
    """

    label: str
    value: int
    kind: str
    text: str

    @property
    def outside(self) -> bool:
        """Whether the structure is outside the dataset's label set."""
        return self.value == OUTSIDE_LABEL


class VolumeQuestionDataset(Dataset):
    """The volumes of one split, each with every label asked every kind it has.

    Args:
        dataset_dir: folder holding ``dataset.json``.
        split: ``training``, ``validation`` or ``test``.
        intensity: ``mr``, a CT window preset or ``{"a_min", "a_max"}`` (as the training reader's).
        axcodes: orientation volumes are brought to (inference's: RAS).
        kinds: query kinds asked (a label without reasoning descriptions is asked the label question only).
        outside_structures: structures outside the label set, asked as label questions about every volume.
        seed: makes the question choice reproducible.
        follow_ups: also hold dialogues (the dataset's ``dialogues`` pools): each label's label
            question, then each of its follow-ups, then (``max_turns`` > 2) one more where the
            follow-up's target has follow-ups.
        max_turns: the longest dialogue asked.
    """

    def __init__(
        self,
        dataset_dir: str | Path,
        split: str = "test",
        intensity: str | Mapping = "abdomen",
        axcodes: str = "RAS",
        kinds: Sequence[str] = QUERY_KINDS,
        outside_structures: Sequence[str] = DEFAULT_OUTSIDE,
        seed: int = 0,
        follow_ups: bool = False,
        max_turns: int = 3,
    ) -> None:
        if split not in SPLITS:
            raise ConfigError(f"config 'eval_split' must be one of {SPLITS}, got {split!r}")
        unknown = set(kinds) - set(QUERY_KINDS)
        if unknown:
            raise ConfigError(f"unknown query kinds {sorted(unknown)}; known: {QUERY_KINDS}")
        self.dataset_dir = Path(dataset_dir)
        data = read_dataset_json(self.dataset_dir)
        listed_in = self.dataset_dir / DATASET_FILE
        self.labels = label_names(data)
        outside = [name.lower() for name in outside_structures if name.lower() not in self.labels.values()]
        self.outside = outside
        self.sampler = QuestionSampler(
            parse_prompt_pools(data.get("prompts") or {}, str(listed_in)), DEFAULT_KIND_WEIGHTS
        )
        self.kinds, self.axcodes, self.seed = list(kinds), axcodes, seed
        pools = parse_dialogue_pools(data.get("dialogues") or {}, str(listed_in)) if follow_ups else {}
        if follow_ups and not pools:
            raise ConfigError(f"'follow_ups' asks for dialogues but {listed_in} has no 'dialogues' pools")
        self.follow_ups = DialogueSampler(pools, 0.0, max_turns) if follow_ups else None
        self._intensity = [FiniteValuesd(keys=["image"]), intensity_transform(intensity)]
        self.entries = []
        for number, entry in enumerate(data.get(split) or []):
            try:
                files = [resolve_inside(self.dataset_dir, entry[k], listed_in) for k in ("image", "label")]
            except (KeyError, TypeError):
                raise DataError(f"{listed_in}: {split}[{number}] needs 'image' and 'label' paths") from None
            check_pair(*files, f"{listed_in} {split}[{number}]")
            where = f"{listed_in} {split}[{number}]"
            pools = parse_prompt_pools(entry.get("prompts") or {}, where)
            follow = parse_dialogue_pools(entry.get("dialogues") or {}, where)
            self.entries.append({"image": files[0], "label": files[1], "prompts": pools, "dialogues": follow})
        if not self.entries:
            raise DataError(f"{listed_in}: split '{split}' lists no volumes (check config 'dataset_dir')")

    def __len__(self) -> int:
        return len(self.entries)

    def questions(self, index: int) -> list[VolumeQuestion]:
        """Every question asked about volume ``index``."""
        extra = self.entries[index]["prompts"]
        asked = []
        for value, name in sorted(self.labels.items()):
            available = self.sampler.kinds_for(name, extra)
            for kind in (k for k in self.kinds if k in available):
                rng = random.Random(f"{self.seed}/{index}/{name}/{kind}")
                asked.append(VolumeQuestion(name, value, kind, self.sampler.query(name, kind, rng, extra).question))
        for name in self.outside:
            rng = random.Random(f"{self.seed}/{index}/{name}/label")
            asked.append(VolumeQuestion(name, OUTSIDE_LABEL, "label", label_question(name, rng)))
        return asked

    def dialogues(self, index: int) -> list[tuple[VolumeQuestion, ...]]:
        """The dialogues asked about volume ``index`` (none without ``follow_ups``)."""
        if self.follow_ups is None:
            return []
        extra = self.entries[index]["dialogues"]
        values = {name: value for value, name in self.labels.items()}
        asked = []
        for value, name in sorted(self.labels.items()):
            for chain, rng in self.follow_ups.eval_chains(name, f"{self.seed}/{index}/{name}", extra):
                turns = [VolumeQuestion(name, value, "label", label_question(name, rng))]
                turns += [self._follow_up_question(f, values) for f in chain]
                asked.append(tuple(turns))
        return asked

    @staticmethod
    def _follow_up_question(follow_up: FollowUp, values: dict[str, int]) -> VolumeQuestion:
        if follow_up.target is None:
            return VolumeQuestion(NOTHING, NOTHING_LABEL, FOLLOW_UP, follow_up.question)
        return VolumeQuestion(
            follow_up.target, values.get(follow_up.target, NOTHING_LABEL), FOLLOW_UP, follow_up.question
        )

    def __getitem__(self, index: int) -> dict:
        entry = self.entries[index]
        data = {"image": load_volume(entry["image"], axcodes=self.axcodes)}
        for transform in self._intensity:
            data = transform(data)
        labels = load_volume(entry["label"], axcodes=self.axcodes)
        label_map = torch.from_numpy(np.rint(np.asarray(labels[0])).astype(np.int16))
        return {
            "image": data["image"],
            "label": label_map,
            "name": Path(entry["image"]).name.split(".")[0],
            "questions": self.questions(index),
            "dialogues": self.dialogues(index),
        }
