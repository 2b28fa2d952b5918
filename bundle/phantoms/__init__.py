"""Synthetic CT phantoms for MediSee: abdominal anatomy, non-RAS affines and reasoning question pools.

``generate_phantom(seed, index)`` renders one volume; ``write_dataset(out, n, seed)`` (or
``python -m bundle.phantoms``) writes an MSD-like dataset with ``dataset.json``. The anatomy
table is ``bundle.phantoms.anatomy``; question pools are ``bundle.phantoms.questions``.
"""

from __future__ import annotations

from bundle.phantoms.anatomy import LABELS, ORGANS
from bundle.phantoms.dataset import write_dataset
from bundle.phantoms.phantom import DEFAULT_SHAPE, Phantom, generate_phantom
from bundle.phantoms.questions import DATASET_POOLS, QuestionPool
from bundle.phantoms.verify import violations

__all__ = [
    "DATASET_POOLS", "DEFAULT_SHAPE", "LABELS", "ORGANS", "Phantom", "QuestionPool", "generate_phantom",
    "violations", "write_dataset",
]  # fmt: skip
