"""NIfTI label-map datasets described by an MSD-style ``dataset.json`` (what ``bundle.phantoms`` writes).

``dataset.json``: ``labels`` (``{"0": "background", "1": "liver", ...}``), optional ``prompts``
(MLMR-SD pools per label name), optional ``dialogues`` (follow-up pools per label name, the schema
in :mod:`bundle.data.dialogues`), and splits (``training`` / ``validation`` / ``test``) listing
``{"image", "label"}`` paths relative to the file, each optionally with its own ``prompts`` and
``dialogues``.
Volumes are reoriented (``axcodes``), sliced along ``slice_axis``, and every slice where a label is
present becomes an image whose targets are those labels.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Mapping
from pathlib import Path

import numpy as np
import torch

from bundle.data.base import TargetDataset
from bundle.data.dialogues import DialogueSampler, FollowUp, parse_dialogue_pools
from bundle.data.paths import check_on_missing, keep_or_raise, missing_files, read_json, resolve_inside
from bundle.data.queries import DEFAULT_KIND_WEIGHTS, PromptPool, QuestionSampler, parse_prompt_pools
from common.errors import ConfigError, DataError
from transforms.intensity import FiniteValuesd, intensity_transform
from transforms.loading import load_volume, nifti_header_shape
from transforms.slicing import take_slice

DATASET_FILE = "dataset.json"
BACKGROUND = "background"
SPLITS = ("training", "validation", "test")


class VolumeCache:
    """A small LRU cache of loaded volumes (slices of one volume are read many times)."""

    def __init__(self, size: int) -> None:
        self.size = max(size, 1)
        self._items: OrderedDict[Hashable, torch.Tensor] = OrderedDict()

    def get(self, key: Hashable, load) -> torch.Tensor:
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        value = load()
        self._items[key] = value
        if len(self._items) > self.size:
            self._items.popitem(last=False)
        return value


def read_dataset_json(dataset_dir: Path) -> dict:
    """Parses ``dataset_dir/dataset.json`` with readable errors."""
    path = dataset_dir / DATASET_FILE
    data = read_json(path, DATASET_FILE, " (check config 'dataset_dir')")
    if not isinstance(data, Mapping) or not isinstance(data.get("labels"), Mapping):
        raise DataError(f"{path}: needs a 'labels' object mapping label values to names")
    return data


def check_pair(image: Path, label: Path, where: str) -> None:
    """Checks from the headers that image and label are 3D volumes of one shape.

    Images are read lazily during training: a bad one must stop the run here, not hours later.

    Raises:
        DataError: naming the entry and the file (empty, not NIfTI, 2D, 4D, or shapes that differ).
    """
    shapes = [nifti_header_shape(path) for path in (image, label)]
    if shapes[0] != shapes[1]:
        raise DataError(f"{where}: image {image} has shape {shapes[0]} but label {label} has {shapes[1]}")


def label_names(data: Mapping) -> dict[int, str]:
    """``{value: lower-case name}`` of a parsed ``dataset.json``'s labels, background left out."""
    return {int(k): str(v).lower() for k, v in data["labels"].items() if str(v).lower() != BACKGROUND}


class NiftiSliceDataset(TargetDataset):
    """Slices of NIfTI volumes with label maps, one target per label present on a slice.

    Args:
        dataset_dir: folder holding ``dataset.json``.
        split: ``training``, ``validation`` or ``test``.
        slice_axis: spatial axis to slice along after reorientation (2 = axial for RAS).
        axcodes: orientation volumes are brought to before slicing.
        intensity: ``mr``, a CT window preset (e.g. ``abdomen``) or ``{"a_min": .., "a_max": ..}``.
        min_target_pixels: a label counts as present on a slice from this many pixels.
        on_missing: ``error`` or ``skip`` entries whose files are missing.
        kind_weights: query kind frequencies in train mode (default label 0.7, short 0.15, long 0.15).
        cache_size: volumes kept in memory.
        dialogue_fraction: share of training rows that go on into follow-up turns (needs ``dialogues``
            in ``dataset.json``; 0: single questions only).
        max_turns: the longest training dialogue (with ``dialogue_fraction``).
        follow_ups: in ``eval`` mode, also ask each target's follow-ups (measured per turn).
        **kwargs: :class:`TargetDataset` options (max_targets, mode, kinds, seed, negative_fraction, negatives).
    """

    def __init__(
        self,
        dataset_dir: str | Path,
        split: str = "training",
        slice_axis: int = 2,
        axcodes: str = "RAS",
        intensity: str | Mapping = "abdomen",
        min_target_pixels: int = 1,
        on_missing: str = "error",
        kind_weights: Mapping[str, float] | None = None,
        cache_size: int = 4,
        dialogue_fraction: float = 0.0,
        max_turns: int = 3,
        follow_ups: bool = False,
        **kwargs,
    ) -> None:
        if split not in SPLITS:
            raise ConfigError(f"split must be one of {SPLITS}, got {split!r}")
        if slice_axis not in (0, 1, 2):
            raise ConfigError(f"slice_axis must be 0, 1 or 2, got {slice_axis}")
        self.dataset_dir = Path(dataset_dir)
        data = read_dataset_json(self.dataset_dir)
        listed_in = self.dataset_dir / DATASET_FILE
        pools = parse_prompt_pools(data.get("prompts") or {}, str(listed_in))
        dialogues = self._dialogue_sampler(
            data, listed_in, dialogue_fraction, max_turns, follow_ups, kwargs.get("mode")
        )
        super().__init__(
            sampler=QuestionSampler(pools, kind_weights or DEFAULT_KIND_WEIGHTS), dialogues=dialogues, **kwargs
        )
        self.label_names = label_names(data)
        self.slice_axis, self.axcodes, self.min_target_pixels = slice_axis, axcodes, min_target_pixels
        self._intensity = [FiniteValuesd(keys=["image"]), intensity_transform(intensity)]
        self._entries: list[dict] = []
        check_on_missing(on_missing)
        for number, entry in enumerate(data.get(split) or []):
            try:
                files = [resolve_inside(self.dataset_dir, entry[k], listed_in) for k in ("image", "label")]
            except (KeyError, TypeError):
                raise DataError(f"{listed_in}: {split}[{number}] needs 'image' and 'label' paths") from None
            if keep_or_raise(missing_files(files), listed_in, on_missing, f"{split}[{number}]"):
                check_pair(*files, f"{listed_in} {split}[{number}]")
                where = f"{listed_in} {split}[{number}]"
                extra = parse_prompt_pools(entry.get("prompts") or {}, where)
                follow = parse_dialogue_pools(entry.get("dialogues") or {}, where)
                self._entries.append({"image": files[0], "label": files[1], "prompts": extra, "dialogues": follow})
        if not self._entries:
            # an empty split would fail later inside the engine with no word about the data
            raise DataError(f"{listed_in}: split '{split}' lists no usable volumes (check config 'dataset_dir')")
        self._images, self._labels = VolumeCache(cache_size), VolumeCache(cache_size)
        self.index_images(self._slices_with_targets())

    def _slices_with_targets(self) -> list[tuple[Hashable, list[int]]]:
        images = []
        for index in range(len(self._entries)):
            labels = self._label_volume(index)
            others = tuple(a for a in range(labels.ndim) if a != self.slice_axis)
            per_slice: list[list[int]] = [[] for _ in range(labels.shape[self.slice_axis])]
            for value in self.label_names:
                for slice_index in np.flatnonzero((labels == value).sum(axis=others) >= self.min_target_pixels):
                    per_slice[slice_index].append(value)
            images += [((index, s), targets) for s, targets in enumerate(per_slice)]
        return images

    def _label_volume(self, index: int) -> np.ndarray:
        def load():
            volume = load_volume(self._entries[index]["label"], axcodes=self.axcodes)
            return np.rint(np.asarray(volume[0])).astype(np.int64)

        return self._labels.get(index, load)

    def _image_volume(self, index: int) -> torch.Tensor:
        def load():
            data = {"image": load_volume(self._entries[index]["image"], axcodes=self.axcodes)}
            for transform in self._intensity:
                data = transform(data)
            return torch.as_tensor(data["image"]).float()

        return self._images.get(index, load)

    def counts(self) -> dict[str, int]:
        """``volumes`` of the split, their ``slices`` with questions, ``questions`` and (when asked) ``dialogues``."""
        counts = super().counts()
        dialogues = {"dialogues": counts["dialogues"]} if "dialogues" in counts else {}
        return {
            "volumes": len(self._entries),
            "slices": counts["images"],
            "questions": counts["questions"],
            **dialogues,
        }

    def load_image(self, image_key: Hashable) -> torch.Tensor:
        index, slice_index = image_key
        return take_slice(self._image_volume(index), self.slice_axis, slice_index).clone()

    def load_mask(self, image_key: Hashable, target_key: Hashable, shape: tuple[int, int]) -> torch.Tensor:
        index, slice_index = image_key
        labels = np.take(self._label_volume(index), slice_index, axis=self.slice_axis)
        mask = torch.from_numpy(labels == target_key)
        if tuple(mask.shape) != tuple(shape):
            raise DataError(f"{self._entries[index]['label']}: label map does not match its image's shape")
        return mask

    def class_name(self, image_key: Hashable, target_key: Hashable) -> str:
        return self.label_names[target_key]

    def entry_pools(self, image_key: Hashable) -> Mapping[str, PromptPool]:
        return self._entries[image_key[0]]["prompts"]

    def entry_dialogues(self, image_key: Hashable) -> Mapping[str, list[FollowUp]]:
        return self._entries[image_key[0]]["dialogues"]

    @staticmethod
    def _dialogue_sampler(
        data: Mapping, listed_in: Path, fraction: float, max_turns: int, follow_ups: bool, mode: str | None
    ) -> DialogueSampler | None:
        """The follow-up pools, when training on dialogues (``dialogue_fraction``) or asking follow-ups in eval."""
        wanted = follow_ups if mode == "eval" else fraction > 0
        if not wanted:
            return None
        pools = parse_dialogue_pools(data.get("dialogues") or {}, str(listed_in))
        in_entries = any(
            isinstance(entry, Mapping) and entry.get("dialogues") for split in SPLITS for entry in data.get(split) or []
        )
        if not pools and not in_entries:
            option = "follow_ups" if mode == "eval" else "dialogue_fraction"
            raise ConfigError(f"'{option}' asks for dialogues but {listed_in} has no 'dialogues' pools")
        return DialogueSampler(pools, fraction, max_turns)

    def dataset_labels(self) -> list[str]:
        return list(self.label_names.values())

    def source(self, image_key: Hashable) -> str:
        index, slice_index = image_key
        return f"{self._entries[index]['image']}#slice{slice_index}"
