"""The small phantom dataset most data tests read (the ``phantom_dataset`` fixture of ``tests/conftest.py``)."""

from __future__ import annotations

from pathlib import Path

from bundle.phantoms import write_dataset

PHANTOM_SHAPE = (64, 64, 16)
"""Grid of the small dataset's volumes."""


def write_small_dataset(out: Path) -> Path:
    """Three phantoms of :data:`PHANTOM_SHAPE` (seed 11) with a ``dataset.json``: two training volumes, one validation."""
    write_dataset(out, n=3, seed=11, shape=PHANTOM_SHAPE, val_fraction=0.34, test_fraction=0.0)
    return out


def write_split_dataset(out: Path) -> Path:
    """Four phantoms of :data:`PHANTOM_SHAPE` (seed 5), one per split at least: two training, one validation, one test."""
    write_dataset(out, n=4, seed=5, shape=PHANTOM_SHAPE, val_fraction=0.25, test_fraction=0.25)
    return out
