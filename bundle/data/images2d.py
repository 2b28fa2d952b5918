"""2D readers: SA-Med2D-20M json datasets and the MediSee test jsonl (PNG images and masks)."""

from __future__ import annotations

import json
from collections.abc import Hashable, Mapping
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from bundle.data.base import TargetDataset
from bundle.data.paths import check_on_missing, keep_or_raise, missing_files, read_json, resolve_inside
from bundle.data.queries import PromptPool
from common.errors import DataError

MAX_8BIT = 255.0
MASK_THRESHOLD = 127  # SA-Med2D masks are 0 / 255


def read_png(path: Path, mode: str) -> np.ndarray:
    """A PNG as a 2D array (``L`` mode: grey levels)."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert(mode))
    except (OSError, UnidentifiedImageError) as exc:
        raise DataError(f"cannot read image {path}: {exc}") from None


def grey_image(path: Path) -> torch.Tensor:
    """(1, H, W) float image in [0, 1]."""
    return torch.from_numpy(read_png(path, "L").astype(np.float32) / MAX_8BIT)[None]


def binary_mask(path: Path, shape: tuple[int, ...]) -> torch.Tensor:
    """(H, W) bool mask, checked against the image's size."""
    mask = torch.from_numpy(read_png(path, "L") > MASK_THRESHOLD)
    if tuple(mask.shape) != tuple(shape):
        raise DataError(f"mask {path} is {tuple(mask.shape)}, its image is {tuple(shape)}")
    return mask


class SAMed2DDataset(TargetDataset):
    """SA-Med2D-20M: ``{image_path: {mask_path: class_name}}``, paths relative to the json's folder.

    Args:
        json_path: the dataset json.
        on_missing: ``error`` (default) or ``skip`` entries whose files are missing.
        **kwargs: :class:`TargetDataset` options (sampler, max_targets, mode, kinds, seed).
    """

    def __init__(self, json_path: str | Path, on_missing: str = "error", **kwargs) -> None:
        super().__init__(**kwargs)
        self.json_path = Path(json_path)
        root = self.json_path.parent
        data = read_json(self.json_path, "SA-Med2D json")
        if not isinstance(data, Mapping):
            raise DataError(f"{self.json_path}: expected an object {{image: {{mask: class}}}}")
        check_on_missing(on_missing)
        self._targets: dict[Path, list[tuple[Path, str]]] = {}
        for image, masks in data.items():
            if not isinstance(masks, Mapping):
                raise DataError(f"{self.json_path}: entry {image!r} must map mask paths to class names")
            image_path = resolve_inside(root, image, self.json_path)
            targets = [(resolve_inside(root, m, self.json_path), str(c).lower()) for m, c in masks.items()]
            files = [image_path] + [m for m, _ in targets]
            if keep_or_raise(missing_files(files), self.json_path, on_missing, f"image {image!r}"):
                self._targets[image_path] = targets
        self.index_images([(image, range(len(t))) for image, t in self._targets.items()])

    def load_image(self, image_key: Hashable) -> torch.Tensor:
        return grey_image(image_key)

    def load_mask(self, image_key: Hashable, target_key: Hashable, shape: tuple[int, int]) -> torch.Tensor:
        return binary_mask(self._targets[image_key][target_key][0], shape)

    def class_name(self, image_key: Hashable, target_key: Hashable) -> str:
        return self._targets[image_key][target_key][1]


class MediSeeTestDataset(TargetDataset):
    """The MediSee test jsonl: one target per line ``{"image","mask","class_text","long","short","bbox"}``.

    ``long`` and ``short`` are that line's reasoning descriptions; ``bbox`` is the normalised xyxy
    ground truth. Defaults to ``eval`` mode over the short and long queries.
    """

    def __init__(self, jsonl_path: str | Path, on_missing: str = "error", **kwargs) -> None:
        kwargs.setdefault("mode", "eval")
        kwargs.setdefault("kinds", ("short", "long"))
        super().__init__(**kwargs)
        self.path = Path(jsonl_path)
        root = self.path.parent
        check_on_missing(on_missing)
        self._lines: list[dict] = []
        try:
            lines = self.path.read_text().splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"cannot read MediSee test file {self.path}: {exc}") from None
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                record = {
                    "image": resolve_inside(root, entry["image"], self.path),
                    "mask": resolve_inside(root, entry["mask"], self.path),
                    "class": str(entry["class_text"]).lower(),
                    "pool": PromptPool(long=[entry["long"]], short=[entry["short"]]),
                    "bbox": torch.tensor([float(v) for v in entry["bbox"]]),
                }
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise DataError(f"{self.path} line {number}: {type(exc).__name__}: {exc}") from None
            if keep_or_raise(missing_files([record["image"], record["mask"]]), self.path, on_missing, f"line {number}"):
                self._lines.append(record)
        self.index_images([(i, [0]) for i in range(len(self._lines))])

    def load_image(self, image_key: Hashable) -> torch.Tensor:
        return grey_image(self._lines[image_key]["image"])

    def load_mask(self, image_key: Hashable, target_key: Hashable, shape: tuple[int, int]) -> torch.Tensor:
        return binary_mask(self._lines[image_key]["mask"], shape)

    def class_name(self, image_key: Hashable, target_key: Hashable) -> str:
        return self._lines[image_key]["class"]

    def entry_pools(self, image_key: Hashable) -> Mapping[str, PromptPool]:
        line = self._lines[image_key]
        return {line["class"]: line["pool"]}

    def given_box(self, image_key: Hashable, target_key: Hashable) -> torch.Tensor:
        return self._lines[image_key]["bbox"]

    def source(self, image_key: Hashable) -> str:
        return str(self._lines[image_key]["image"])
