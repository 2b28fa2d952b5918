"""Writes a phantom dataset: NIfTI images and label maps plus an MSD-like ``dataset.json``, all or nothing."""

from __future__ import annotations

import gzip
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from bundle.phantoms.anatomy import LABELS
from bundle.phantoms.phantom import DEFAULT_SHAPE, SPLIT_STREAM, Phantom, generate_phantom, volume_streams
from bundle.phantoms.questions import DATASET_POOLS
from bundle.phantoms.questions.follow_ups import DATASET_FOLLOW_UPS, dialogue_pools
from common.errors import ConfigError
from common.files import atomic_path, write_json

SPLITS = ("training", "validation", "test")
IMAGES, LABEL_MAPS = "imagesTr", "labelsTr"  # every split's files live here, as the contract says
MIN_SHAPE = (64, 64, 16)  # coarser grids lose the thin cortical bone the spine questions mention
GZIP_LEVEL = 6  # the default 9 costs several times longer for a few percent
NAME = "MediSee phantoms"
DESCRIPTION = (
    "Synthetic abdominal CT phantoms (bundle.phantoms): world-space anatomy sampled through non-RAS, "
    "sometimes oblique affines, with MLMR-SD-style reasoning question pools per label and follow-up "
    "questions for dialogues."
)


Shape = tuple[int, int, int]
GRID_SALT = 7919
"""Separates the per-volume grid draw from the volume's other random streams (which it leaves as they are)."""


def as_shapes(shape: Shape | Sequence[Shape]) -> list[tuple[int, ...]]:
    """One grid (three sizes) or several, as a list of grids."""
    if len(shape) and all(isinstance(size, (int, np.integer)) for size in shape):
        return [tuple(int(size) for size in shape)]
    return [tuple(int(size) for size in grid) for grid in shape]


def volume_shape(seed: int, index: int, shapes: Sequence[Shape]) -> Shape:
    """The grid of volume ``index``: one of ``shapes``, drawn from (seed, index) alone."""
    if len(shapes) == 1:
        return tuple(shapes[0])
    return tuple(shapes[int(np.random.default_rng([seed, index, GRID_SALT]).integers(len(shapes)))])


def check_options(n: int, seed: int, shapes: Sequence[Shape], val_fraction: float, test_fraction: float) -> None:
    """Raises ConfigError, naming the option, for values a dataset cannot be made from."""
    if n < 1:
        raise ConfigError(f"--n must be at least 1, got {n}")
    if seed < 0:
        raise ConfigError(f"--seed must be non-negative, got {seed}")
    for shape in shapes or [()]:
        if len(shape) != 3 or any(size < low for size, low in zip(shape, MIN_SHAPE)):
            raise ConfigError(
                f"--shape must be three sizes of at least {' '.join(map(str, MIN_SHAPE))}, got {list(shape)}"
            )
    for option, value in (("--val-fraction", val_fraction), ("--test-fraction", test_fraction)):
        if not 0.0 <= value < 1.0:
            raise ConfigError(f"{option} must be in [0, 1), got {value}")
    n_val, n_test = split_sizes(n, val_fraction, test_fraction)
    if n_val + n_test >= n:
        raise ConfigError(f"--val-fraction {val_fraction} and --test-fraction {test_fraction} leave no training "
                          f"volume out of --n {n}")  # fmt: skip


def split_sizes(n: int, val_fraction: float, test_fraction: float) -> tuple[int, int]:
    """(validation, test) sizes: the rounded shares, and at least one each if asked for while training keeps one."""
    fractions = (val_fraction, test_fraction)
    sizes = [math.floor(n * fraction + 0.5) for fraction in fractions]
    for i, fraction in enumerate(fractions):
        if fraction > 0 and sizes[i] == 0 and n - sum(sizes) > 1:
            sizes[i] = 1
    return sizes[0], sizes[1]


def assign_splits(n: int, seed: int, val_fraction: float, test_fraction: float) -> list[str]:
    """The split of each volume, from a per-volume random key (exact split sizes, stable across n)."""
    keys = [volume_streams(seed, index)[SPLIT_STREAM].random() for index in range(n)]
    order = np.argsort(keys, kind="stable")
    n_val, n_test = split_sizes(n, val_fraction, test_fraction)
    splits = ["training"] * n
    for rank, index in enumerate(order):
        if rank < n_test:
            splits[index] = "test"
        elif rank < n_test + n_val:
            splits[index] = "validation"
    return splits


def save_nifti(array: np.ndarray, affine: np.ndarray, path: Path) -> None:
    """Writes a gzipped NIfTI-1 with ``affine`` as both sform and qform (scanner), atomically.

    The gzip header carries no time stamp, so the same array always gives the same bytes.
    """
    image = nib.Nifti1Image(array, affine)
    image.header.set_xyzt_units("mm")
    image.set_sform(affine, code="scanner")
    image.set_qform(affine, code="scanner")
    with atomic_path(path) as tmp:
        tmp.write_bytes(gzip.compress(image.to_bytes(), compresslevel=GZIP_LEVEL, mtime=0))


def volume_name(index: int) -> str:
    """File stem of volume ``index`` (``phantom_007``)."""
    return f"phantom_{index:03d}"


def write_volume(directory: Path, phantom: Phantom, name: str) -> dict[str, Any]:
    """Saves ``phantom``'s image and label map under ``directory`` and returns its dataset.json entry."""
    entry = {"image": f"{IMAGES}/{name}.nii.gz", "label": f"{LABEL_MAPS}/{name}.nii.gz"}
    save_nifti(phantom.image, phantom.affine, directory / entry["image"])
    save_nifti(phantom.label, phantom.affine, directory / entry["label"])
    return {
        **entry,
        "present": sorted(phantom.labels.values()),
        "prompts": phantom.prompts,
        "dialogues": phantom.dialogues,
    }


def _check_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a directory")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ConfigError(f"--out {out} exists and is not empty; pass --overwrite to replace it")


def _progress_line(name: str, split: str, phantom: Phantom, seconds: float) -> str:
    shape = "x".join(map(str, phantom.image.shape))
    oblique = " oblique" if phantom.oblique else ""
    orientation = "".join(phantom.orientation)
    return f"{name} ({split}): {shape} {orientation}{oblique}, {len(phantom.labels)} labels, {seconds:.1f} s"


def dataset_description(
    seed: int, shapes: Sequence[Shape], entries: dict[str, list[dict]], present: set[int]
) -> dict[str, Any]:
    """The dataset.json content: labels and dataset-wide prompt pools for the labels that occur."""
    labels = {str(value): LABELS[value] for value in sorted(present | {0})}
    return {
        "name": NAME,
        "description": DESCRIPTION,
        "tensorImageSize": "3D",
        "modality": {"0": "CT"},
        "seed": seed,
        **({"shape": list(shapes[0])} if len(shapes) == 1 else {"shapes": [list(s) for s in shapes]}),
        "labels": labels,
        "prompts": {LABELS[value]: DATASET_POOLS[LABELS[value]].to_json() for value in sorted(present)},
        "dialogues": dialogue_pools(DATASET_FOLLOW_UPS, {LABELS[value] for value in present}),
        **{f"num{split.capitalize()}": len(entries[split]) for split in SPLITS},
        **entries,
    }


def write_dataset(
    out: str | os.PathLike,
    n: int,
    seed: int,
    shape: Shape | Sequence[Shape] = DEFAULT_SHAPE,
    val_fraction: float = 0.2,
    test_fraction: float = 0.1,
    overwrite: bool = False,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Generates ``n`` phantoms into ``out`` and returns the path of its ``dataset.json``.

    Everything is written into a temporary directory beside ``out`` that replaces ``out`` only
    when the last file (``dataset.json``) is written: a failure leaves no partial dataset.

    Args:
        out: the dataset directory; refused if it exists and is not empty, unless ``overwrite``.
        n: number of volumes (``phantom_000`` ...).
        seed: the series seed; volume i depends only on (seed, i).
        shape: voxels per volume (x, y, z), or several such grids: volume i then takes one, drawn from
            (seed, i) alone, so its anatomy is the same whatever grid it gets.
        val_fraction: share of volumes in the validation split.
        test_fraction: share of volumes in the test split.
        overwrite: replace an existing non-empty ``out``.
        progress: called with one line per volume.
    """
    shapes = as_shapes(shape)
    check_options(n, seed, shapes, val_fraction, test_fraction)
    out = Path(out)
    _check_out(out, overwrite)
    entries: dict[str, list[dict]] = {split: [] for split in SPLITS}
    present: set[int] = set()
    with atomic_path(out, is_dir=True) as tmp:
        for index, split in enumerate(assign_splits(n, seed, val_fraction, test_fraction)):
            start = time.perf_counter()
            phantom = generate_phantom(seed, index, volume_shape(seed, index, shapes))
            entries[split].append(write_volume(tmp, phantom, volume_name(index)))
            present |= set(phantom.labels)
            if progress is not None:
                progress(_progress_line(volume_name(index), split, phantom, time.perf_counter() - start))
        write_json(tmp / "dataset.json", dataset_description(seed, shapes, entries, present))
    return out / "dataset.json"
