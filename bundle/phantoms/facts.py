"""Facts that questions state about a label, and how to check one on an axial slice.

A question's location or attribute claims are recorded as ``Fact``s next to its text. A fact
must hold on every axial slice where its label is present, judged only from that slice (its
voxels, their HU and their scanner RAS+ positions): that is what "true for what is visible"
means here. ``bundle.phantoms.verify`` runs the checks over whole volumes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

import numpy as np


class Relation(str, Enum):
    """What a fact claims; positional ones compare centroids in RAS+ (x: patient's right)."""

    LEFT_OF = "on the patient's left of"
    RIGHT_OF = "on the patient's right of"
    ANTERIOR_TO = "anterior to"
    POSTERIOR_TO = "posterior to"
    BRIGHTER_THAN = "brighter (mean HU) than"
    DARKER_THAN = "darker (mean HU) than"
    TOUCHES = "touching"
    LARGER_THAN = "larger (area on the slice) than"
    WITHIN = "within"
    MAX_HU_ABOVE = "with some voxels above (HU)"
    MIN_HU_BELOW = "with some voxels below (HU)"
    MIN_HU_ABOVE = "with every voxel above (HU)"


REFERENCED = {Relation.LEFT_OF, Relation.RIGHT_OF, Relation.ANTERIOR_TO, Relation.POSTERIOR_TO,
              Relation.BRIGHTER_THAN, Relation.DARKER_THAN, Relation.TOUCHES, Relation.WITHIN,
              Relation.LARGER_THAN}  # fmt: skip
# Centroid axis (RAS+) and the sign the difference target - reference must have.
POSITIONAL = {Relation.LEFT_OF: (0, -1.0), Relation.RIGHT_OF: (0, 1.0),
              Relation.ANTERIOR_TO: (1, 1.0), Relation.POSTERIOR_TO: (1, -1.0)}  # fmt: skip


@dataclass(frozen=True)
class Fact:
    """One checkable claim about a label.

    Attributes:
        relation: what is claimed.
        reference: label names the claim is relative to (their union), for relations that need one.
        hu: the threshold for the HU relations.
    """

    relation: Relation
    reference: tuple[str, ...] = ()
    hu: float | None = None

    def __str__(self) -> str:
        other = " or ".join(self.reference) if self.reference else f"{self.hu:g}"
        return f"{self.relation.value} {other}"


@dataclass(frozen=True)
class SliceView:
    """One axial slice: labels, HU and scanner RAS+ position of every voxel.

    Attributes:
        labels: ``(X, Y)`` label values.
        image: ``(X, Y)`` HU.
        world: ``(X, Y, 3)`` voxel-centre positions (RAS+ mm).
        names: label value by name.
    """

    labels: np.ndarray
    image: np.ndarray
    world: np.ndarray
    names: Mapping[str, int]

    def mask(self, names: tuple[str, ...]) -> np.ndarray:
        """Voxels carrying any of the label ``names`` (unknown names match nothing)."""
        values = [self.names[name] for name in names if name in self.names]
        return np.isin(self.labels, values)


def _touches(target: np.ndarray, reference: np.ndarray) -> bool:
    """Whether ``target`` and ``reference`` share an in-plane edge (4-neighbourhood)."""
    grown = target.copy()
    grown[1:, :] |= target[:-1, :]
    grown[:-1, :] |= target[1:, :]
    grown[:, 1:] |= target[:, :-1]
    grown[:, :-1] |= target[:, 1:]
    return bool((grown & reference).any())


def _centroid_inside_box(target: np.ndarray, reference: np.ndarray) -> bool:
    """Whether the voxel-index centroid of ``target`` is inside the bounding box of ``reference``."""
    centre = np.argwhere(target).mean(axis=0)
    where = np.argwhere(reference)
    return bool(np.all(centre >= where.min(axis=0)) and np.all(centre <= where.max(axis=0)))


def _referenced_holds(fact: Fact, target: np.ndarray, reference: np.ndarray, view: SliceView) -> bool:
    if fact.relation in POSITIONAL:
        axis, sign = POSITIONAL[fact.relation]
        difference = view.world[target][:, axis].mean() - view.world[reference][:, axis].mean()
        return bool(sign * difference > 0)
    if fact.relation in (Relation.BRIGHTER_THAN, Relation.DARKER_THAN):
        difference = view.image[target].mean() - view.image[reference].mean()
        return bool(difference > 0) == (fact.relation is Relation.BRIGHTER_THAN)
    if fact.relation is Relation.TOUCHES:
        return _touches(target, reference)
    if fact.relation is Relation.LARGER_THAN:
        return bool(target.sum() > reference.sum())
    return _touches(target, reference) and _centroid_inside_box(target, reference)


def fact_holds(fact: Fact, target: np.ndarray, view: SliceView) -> bool:
    """Whether ``fact`` holds on the slice for the voxels ``target`` (non-empty).

    A fact relative to a reference is false when the reference is absent from the slice: the
    claim would not be visible there.
    """
    if fact.relation in REFERENCED:
        reference = view.mask(fact.reference) & ~target
        return bool(reference.any()) and _referenced_holds(fact, target, reference, view)
    values = view.image[target]
    if fact.relation is Relation.MAX_HU_ABOVE:
        return bool(values.max() > fact.hu)
    if fact.relation is Relation.MIN_HU_BELOW:
        return bool(values.min() < fact.hu)
    return bool(values.min() > fact.hu)


def left_of(*reference: str) -> Fact:
    """The label is on the patient's left of ``reference``."""
    return Fact(Relation.LEFT_OF, reference)


def right_of(*reference: str) -> Fact:
    """The label is on the patient's right of ``reference``."""
    return Fact(Relation.RIGHT_OF, reference)


def anterior_to(*reference: str) -> Fact:
    """The label is anterior to ``reference``."""
    return Fact(Relation.ANTERIOR_TO, reference)


def posterior_to(*reference: str) -> Fact:
    """The label is posterior to ``reference``."""
    return Fact(Relation.POSTERIOR_TO, reference)


def brighter_than(*reference: str) -> Fact:
    """The label's mean HU is above ``reference``'s."""
    return Fact(Relation.BRIGHTER_THAN, reference)


def darker_than(*reference: str) -> Fact:
    """The label's mean HU is below ``reference``'s."""
    return Fact(Relation.DARKER_THAN, reference)


def touches(*reference: str) -> Fact:
    """The label shares an edge with ``reference``."""
    return Fact(Relation.TOUCHES, reference)


def within(*reference: str) -> Fact:
    """The label touches ``reference`` and its centroid is inside ``reference``'s bounding box."""
    return Fact(Relation.WITHIN, reference)


def larger_than(*reference: str) -> Fact:
    """The label covers more voxels of the slice than ``reference``."""
    return Fact(Relation.LARGER_THAN, reference)


def has_hu_above(hu: float) -> Fact:
    """Some voxel of the label is brighter than ``hu`` (e.g. bone)."""
    return Fact(Relation.MAX_HU_ABOVE, hu=hu)


def has_hu_below(hu: float) -> Fact:
    """Some voxel of the label is darker than ``hu`` (e.g. gas)."""
    return Fact(Relation.MIN_HU_BELOW, hu=hu)


def all_hu_above(hu: float) -> Fact:
    """Every voxel of the label is brighter than ``hu`` (e.g. no gas)."""
    return Fact(Relation.MIN_HU_ABOVE, hu=hu)
