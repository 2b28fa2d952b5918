"""The phantom series the generator tests look at, and what they read off it."""

from __future__ import annotations

import numpy as np

from bundle.phantoms import LABELS

SEED = 3  # six volumes of this series cover oblique grids, both lesions, each stomach content, both cyst sides
SHAPE = (64, 64, 16)
VOLUMES = 6
NAMES = {name: value for value, name in LABELS.items()}
POOL_KEYS = ("long", "short", "long_explanation", "short_explanation")


def world_centroid(label: np.ndarray, affine: np.ndarray, name: str) -> np.ndarray:
    """The RAS centroid (mm) of structure ``name`` in a label map."""
    ijk = np.argwhere(label == NAMES[name])
    return (ijk @ affine[:3, :3].T + affine[:3, 3]).mean(axis=0)


def all_entries(description: dict) -> list[dict]:
    """Every split's entries of a ``dataset.json``."""
    return description["training"] + description["validation"] + description["test"]
