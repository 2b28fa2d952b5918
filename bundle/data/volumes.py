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

from bundle.data.nifti import DATASET_FILE, SPLITS, check_pair, label_names, read_dataset_json
from bundle.data.paths import resolve_inside
from bundle.data.queries import DEFAULT_KIND_WEIGHTS, QuestionSampler, parse_prompt_pools
from bundle.prompts import QUERY_KINDS, label_question
from common.errors import ConfigError, DataError
from transforms.intensity import FiniteValuesd, intensity_transform
from transforms.loading import load_volume

OUTSIDE_LABEL = -1
"""Label value of a question about a structure outside the label set: no voxel holds it."""
DEFAULT_OUTSIDE = ("heart", "left lung")


@dataclass(frozen=True)
class VolumeQuestion:
    """One question about a volume.

    Attributes:
        label: the label's name (or the outside structure's).
        value: its value in the label map (:data:`OUTSIDE_LABEL` for a structure outside the label set).
        kind: ``label``, ``short`` or ``long``.
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
        self._intensity = [FiniteValuesd(keys=["image"]), intensity_transform(intensity)]
        self.entries = []
        for number, entry in enumerate(data.get(split) or []):
            try:
                files = [resolve_inside(self.dataset_dir, entry[k], listed_in) for k in ("image", "label")]
            except (KeyError, TypeError):
                raise DataError(f"{listed_in}: {split}[{number}] needs 'image' and 'label' paths") from None
            check_pair(*files, f"{listed_in} {split}[{number}]")
            pools = parse_prompt_pools(entry.get("prompts") or {}, f"{listed_in} {split}[{number}]")
            self.entries.append({"image": files[0], "label": files[1], "prompts": pools})
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
        }
