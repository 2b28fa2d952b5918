"""Checks that every question's facts hold on every axial slice of a phantom where its label is present,
and that every follow-up's facts hold where it and the previous turn's label are."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from bundle.phantoms.anatomy import LABELS
from bundle.phantoms.facts import Fact, SliceView, fact_holds
from bundle.phantoms.geometry import slice_world
from bundle.phantoms.phantom import Phantom
from bundle.phantoms.questions import DATASET_POOLS, QuestionPool
from bundle.phantoms.questions.follow_ups import DATASET_FOLLOW_UPS, PhantomFollowUp, entry_follow_ups

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


def _visible_facts(facts, view: SliceView) -> list[Fact]:
    """The facts whose references are all on the slice (a comparison with an absent label is not asked of it)."""
    return [fact for fact in facts if all(view.mask((name,)).any() for name in fact.reference)]


def follow_up_violations(phantom: Phantom, follow_ups: Sequence[PhantomFollowUp] | None = None) -> list[str]:
    """Every failing (follow-up, slice) of ``phantom``'s dialogues, as readable lines (empty: all true).

    A follow-up with a target is checked on the slices holding both its target and the previous
    turn's label; one answered "nothing" checks that the label it denies never satisfies its facts.

    Args:
        phantom: the volume.
        follow_ups: the dataset-wide follow-ups (default ``DATASET_FOLLOW_UPS``); the phantom's own are checked too.
    """
    present = set(phantom.labels.values())
    base = DATASET_FOLLOW_UPS if follow_ups is None else follow_ups
    checked = [*base, *entry_follow_ups(phantom.findings, present)]
    failures = []
    for k, view in slice_views(phantom):
        for follow_up in checked:
            after = view.mask((follow_up.after,))
            name = follow_up.target or follow_up.denies
            target = view.mask((name,))
            if not (after.any() and target.any()):
                continue
            facts = _visible_facts(follow_up.facts, view)
            holds = [fact_holds(fact, target, view) for fact in facts]
            wrong = not all(holds) if follow_up.target else any(holds)
            if wrong:
                failures.append(f"after {follow_up.after}: '{follow_up.question}' ({name}) fails on slice {k}")
    return failures
