"""Follow-up questions for phantom dialogues: each refers to the previous turn's target ("it").

A follow-up names the label its answer is (or none, for "nothing"), and records its claims as
``Fact``s: about its target relative to the previous turn's label, checked on every axial slice
where both are present (and the fact's references are); a follow-up answered "nothing" names the
label it denies, checked never to satisfy the claim on any slice (``bundle.phantoms.verify``).
Chains go on through the targets' own follow-ups: right kidney -> the other side -> the other
side again; spine -> the artery in front of it -> the vein beside it -> the artery again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bundle.phantoms.anatomy import (
    AORTA,
    IVC,
    LEFT_KIDNEY,
    LIVER,
    LIVER_LESION,
    RENAL_CYST,
    RENAL_CYST_SIDE_FINDING,
    RIGHT_KIDNEY,
    SPINE,
    SPLEEN,
    Side,
)  # fmt: skip
from bundle.phantoms.facts import Fact, anterior_to, larger_than, left_of, right_of, within


@dataclass(frozen=True)
class PhantomFollowUp:
    """A follow-up after a turn about ``after``.

    Attributes:
        after: the previous turn's label ("it").
        question: the text.
        target: the label the answer is, or None: nothing (answered with the rejection token).
        explanation: what the answer says.
        facts: claims about ``target``, checked where it and ``after`` are on a slice.
        denies: for a follow-up answered "nothing", the label that never satisfies ``facts`` there.
    """

    after: str
    question: str
    target: str | None
    explanation: str
    facts: tuple[Fact, ...] = ()
    denies: str | None = None

    def to_json(self) -> dict:
        """The follow-up as ``dataset.json`` stores it (``bundle.data.dialogues``)."""
        return {"question": self.question, "target": self.target, "explanation": self.explanation}


_LIVER, _SPLEEN, _AORTA, _IVC, _SPINE = LIVER.name, SPLEEN.name, AORTA.name, IVC.name, SPINE.name
_RIGHT, _LEFT, _LESION, _CYST = RIGHT_KIDNEY.name, LEFT_KIDNEY.name, LIVER_LESION.name, RENAL_CYST.name
OTHER_SIDE = "And the one on the other side?"
LESION_INSIDE = "Is there a lesion inside it?"
CYST_INSIDE = "Is there a cyst inside it?"

DATASET_FOLLOW_UPS: tuple[PhantomFollowUp, ...] = (
    PhantomFollowUp(_RIGHT, OTHER_SIDE, _LEFT, "The left kidney, the right kidney's pair on the patient's left.",
                    (left_of(_RIGHT),)),
    PhantomFollowUp(_LEFT, OTHER_SIDE, _RIGHT, "The right kidney, the left kidney's pair on the patient's right.",
                    (right_of(_LEFT),)),
    PhantomFollowUp(_LIVER, LESION_INSIDE, _LESION, "The liver lesion, a hypodense spot within the liver.",
                    (within(_LIVER),)),
    PhantomFollowUp(_SPLEEN, LESION_INSIDE, None, "No lesion lies inside the spleen in this image.",
                    (within(_SPLEEN),), denies=_LESION),
    PhantomFollowUp(_LIVER, "And the organ on the opposite side of the abdomen that removes old red blood cells?",
                    _SPLEEN, "The spleen, on the patient's left, opposite the liver.", (left_of(_LIVER),)),
    PhantomFollowUp(_SPLEEN, "Which is larger on this image, it or the liver?", _LIVER,
                    "The liver covers more of this slice than the spleen.", (larger_than(_SPLEEN), right_of(_SPLEEN))),
    PhantomFollowUp(_SPINE, "Which artery runs just in front of it?", _AORTA,
                    "The aorta, the artery anterior to the vertebral column.", (anterior_to(_SPINE),)),
    PhantomFollowUp(_AORTA, "And the vein that runs beside it?", _IVC,
                    "The inferior vena cava, on the patient's right of the aorta.", (right_of(_AORTA),)),
    PhantomFollowUp(_IVC, "And the artery beside it?", _AORTA,
                    "The aorta, on the patient's left of the inferior vena cava.", (left_of(_IVC),)),
)  # fmt: skip


def cyst_follow_ups(side: Side) -> tuple[PhantomFollowUp, ...]:
    """ "Is there a cyst inside it?" after each kidney of a volume whose cyst is in the ``side`` kidney."""
    kidney, other = (_RIGHT, _LEFT) if side is Side.RIGHT else (_LEFT, _RIGHT)
    return (
        PhantomFollowUp(kidney, CYST_INSIDE, _CYST, f"The renal cyst, within the {kidney}.", (within(kidney),)),
        PhantomFollowUp(other, CYST_INSIDE, None, f"No cyst lies inside the {other} in this image.",
                        (within(other),), denies=_CYST),
    )  # fmt: skip


def entry_follow_ups(findings: Mapping[str, str], present: set[str]) -> tuple[PhantomFollowUp, ...]:
    """The per-entry follow-ups of one volume (its cyst's side), for the labels ``present`` in it."""
    if RENAL_CYST.name in present and RENAL_CYST_SIDE_FINDING in findings:
        return cyst_follow_ups(Side(findings[RENAL_CYST_SIDE_FINDING]))
    return ()


def dialogue_pools(follow_ups: Sequence[PhantomFollowUp], present: set[str]) -> dict[str, list[dict]]:
    """The ``dialogues`` object of ``follow_ups`` whose previous label is ``present``."""
    pools: dict[str, list[dict]] = {}
    for follow_up in follow_ups:
        if follow_up.after in present:
            pools.setdefault(follow_up.after, []).append(follow_up.to_json())
    return pools


def entry_dialogue_pools(findings: Mapping[str, str], present: set[str]) -> dict[str, list[dict]]:
    """A volume's own ``dialogues``: for each label with per-entry follow-ups, the dataset's follow-ups
    after it and its own (an entry's list replaces the dataset's for that label)."""
    own = entry_follow_ups(findings, present)
    labels = {f.after for f in own}
    merged = [f for f in DATASET_FOLLOW_UPS if f.after in labels] + list(own)
    return dialogue_pools(merged, present)
