"""Per-entry question pools: facts true only of one volume (which kidney has the cyst, what the stomach holds).

Pools are built from the patient's findings, so a volume gets them only when it shows the finding.
"""

from __future__ import annotations

from collections.abc import Mapping

from bundle.phantoms.anatomy import (
    AORTA,
    GAS_HU,
    RENAL_CYST,
    RENAL_CYST_SIDE_FINDING,
    SPINE,
    STOMACH,
    STOMACH_CONTENT_FINDING,
    Side,
    StomachContent,
)  # fmt: skip
from bundle.phantoms.facts import Fact, all_hu_above, anterior_to, darker_than, has_hu_below, left_of, right_of, within
from bundle.phantoms.questions.pool import QuestionPool, attribute, location

_SPINE, _AORTA = SPINE.name, AORTA.name


def renal_cyst_pool(side: Side) -> QuestionPool:
    """Questions naming the kidney the cyst is in."""
    kidney = f"{side.value} kidney"
    lateral = right_of(_SPINE) if side is Side.RIGHT else left_of(_SPINE)
    return QuestionPool(
        long=(
            attribute(f"Which round water-density cyst, darker than the enhancing renal tissue around it, arises from "
                      f"the {kidney}?",
                      f"The renal cyst: a fluid-filled cyst within the {kidney}, darker than the kidney's enhancing "
                      "parenchyma.",
                      within(kidney), darker_than(kidney)),
            location(f"Which fluid-filled lesion lies in the kidney on the patient's {side.value} of the spine?",
                     f"The renal cyst lies in the {kidney}, on the patient's {side.value} of the vertebral column.",
                     within(kidney), lateral),
        ),
        short=(
            attribute(f"Which cyst is in the {kidney}?", f"The renal cyst lies within the {kidney}.", within(kidney)),
            location(f"What lesion is in the kidney {side.value} of the spine?",
                     f"The renal cyst, in the {kidney} on the patient's {side.value} of the spine.",
                     within(kidney), lateral),
        ),
    )  # fmt: skip


def _stomach_pool(content: str, filled: str, look: str, fact: Fact) -> QuestionPool:
    """Questions about a stomach holding ``content`` (``filled``) that looks ``look``, checked by ``fact``."""
    return QuestionPool(
        long=(
            attribute(f"Which hollow organ is filled with {content}, appearing {look} on this CT, on the patient's "
                      "left in front of the aorta?",
                      f"The stomach: here it holds {content}, which looks {look}, and it lies on the patient's left, "
                      "anterior to the aorta.",
                      fact, left_of(_SPINE), anterior_to(_AORTA)),
            location(f"On the patient's left of the spine and anterior to the aorta, which organ contains {content}?",
                     f"The stomach lies on the patient's left, anterior to the aorta, and contains {content}.",
                     left_of(_SPINE), anterior_to(_AORTA), fact),
        ),
        short=(
            attribute(f"Which organ is filled with {content}?", f"The stomach, which here holds {content}.", fact),
            location(f"Which {filled} organ is left of the spine?",
                     f"The stomach holds {content} and lies on the patient's left of the spine.",
                     fact, left_of(_SPINE)),
        ),
    )  # fmt: skip


STOMACH_POOLS: Mapping[StomachContent, QuestionPool] = {
    StomachContent.GAS: _stomach_pool("swallowed gas", "gas-filled", "black like air", has_hu_below(GAS_HU)),
    StomachContent.FLUID: _stomach_pool(
        "fluid without any gas", "fluid-filled", "of water density", all_hu_above(GAS_HU)
    ),
}


def entry_pools(findings: Mapping[str, str], present: set[str]) -> dict[str, QuestionPool]:
    """The per-entry pools of one volume, by label name, for the labels ``present`` in it."""
    pools = {}
    if RENAL_CYST.name in present and RENAL_CYST_SIDE_FINDING in findings:
        pools[RENAL_CYST.name] = renal_cyst_pool(Side(findings[RENAL_CYST_SIDE_FINDING]))
    content = StomachContent(findings[STOMACH_CONTENT_FINDING]) if STOMACH_CONTENT_FINDING in findings else None
    if STOMACH.name in present and content in STOMACH_POOLS:
        pools[STOMACH.name] = STOMACH_POOLS[content]
    return pools
