"""Running the tiny inference workflow on phantom volumes and finding its outputs (the inference tests share these)."""

from __future__ import annotations

from pathlib import Path

import monai.bundle
import nibabel as nib
import numpy as np

from bundle.phantoms import generate_phantom
from tests.helpers.tiny import TINY
from tests.helpers.volumes import write_nifti

SHAPE = (64, 64, 16)
"""Grid of the phantoms :func:`save_phantom` writes."""
SEED = 5
QUERY = "Which organ here filters blood and makes urine?"
OUTPUT_SUFFIXES = {"mask": ".nii.gz", "result": ".json", "overlay": ".png"}
AIR_HU = -1000


def save_phantom(path: Path, index: int, blank: tuple[int, ...] = ()) -> Path:
    """Writes phantom ``index`` (never RAS-aligned; index 1 of this series is oblique) with nibabel,
    the file z slices ``blank`` set to constant air."""
    phantom = generate_phantom(SEED, index, shape=SHAPE)
    image = phantom.image.copy()
    image[..., list(blank)] = AIR_HU
    return write_nifti(path, image, phantom.affine)


def run_bundle(**overrides) -> None:
    """``monai.bundle.run`` of the tiny inference config with ``overrides`` (config ids)."""
    monai.bundle.run(config_file=TINY, logging_file=False, **overrides)


def outputs_of(folder: Path, name: str) -> dict[str, Path]:
    """The three output paths of volume ``name``."""
    return {kind: folder / f"{name}_{kind}{suffix}" for kind, suffix in OUTPUT_SUFFIXES.items()}


def mask_array(folder: Path, name: str) -> np.ndarray:
    """The voxels of volume ``name``'s mask file."""
    return np.asanyarray(nib.load(outputs_of(folder, name)["mask"]).dataobj)
