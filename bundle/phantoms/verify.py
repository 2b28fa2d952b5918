"""Checks that every question's facts hold on every axial slice of a phantom where its label is present."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from bundle.phantoms.anatomy import LABELS
from bundle.phantoms.facts import Fact, SliceView, fact_holds
from bundle.phantoms.geometry import slice_world
from bundle.phantoms.phantom import Phantom
from bundle.phantoms.questions import DATASET_POOLS, QuestionPool

NAMES = {name: value for value, name in LABELS.items()}


def label_facts(name: str, pools: list[QuestionPool]) -> list[Fact]:
    """The distinct facts the questions of ``pools`` claim, in first-seen order."""
    return list(dict.fromkeys(fact for pool in pools for question in pool.questions for fact in question.facts))


def slice_views(phantom: Phantom) -> Iterator[tuple[int, SliceView]]:
    """Each axial slice of ``phantom`` with the scanner positions of its voxels."""
    for k in range(phantom.label.shape[2]):
        world = slice_world(phantom.affine, phantom.label.shape[:2], k)
        yield k, SliceView(phantom.label[:, :, k], phantom.image[:, :, k], world, NAMES)


def violations(phantom: Phantom, pools: Mapping[str, QuestionPool] = DATASET_POOLS) -> list[str]:
    """Every failing (label, fact, slice) of ``phantom``'s questions, as readable lines (empty: all true).

    Args:
        phantom: the volume.
        pools: the dataset-wide pools; the phantom's own per-entry pools are checked too.
    """
    facts = {}
    for value, name in phantom.labels.items():
        label_pools = [pool for pool in (pools.get(name), phantom.questions.get(name)) if pool is not None]
        facts[value] = (name, label_facts(name, label_pools))
    failures = []
    for k, view in slice_views(phantom):
        for value, (name, label_checks) in facts.items():
            target = view.labels == value
            if not target.any():
                continue
            failures += [f"{name}: '{fact}' fails on slice {k}" for fact in label_checks
                         if not fact_holds(fact, target, view)]  # fmt: skip
    return failures
