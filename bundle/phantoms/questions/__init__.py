"""MLMR-SD-style question pools for the phantom labels: dataset-wide ones and per-entry ones.

Dataset pools (``DATASET_POOLS``) hold for every volume where their label is present; per-entry
pools (``entry_pools``) hold for one volume's findings. Every visual claim is recorded as a
``Fact`` next to the text and is checked by ``bundle.phantoms.verify``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from bundle.phantoms.questions import hollow, lesions, solid, vessels
from bundle.phantoms.questions.entries import entry_pools
from bundle.phantoms.questions.pool import Perspective, Question, QuestionPool

DATASET_POOLS: Mapping[str, QuestionPool] = MappingProxyType(
    {**solid.POOLS, **vessels.POOLS, **hollow.POOLS, **lesions.POOLS}
)

__all__ = ["DATASET_POOLS", "Perspective", "Question", "QuestionPool", "entry_pools"]
