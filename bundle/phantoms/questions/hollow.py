"""Question pools for the hollow organs: stomach and gallbladder.

The gallbladder's claims refer to the liver, which is beside it on every slice by construction
(it hangs above the liver floor, see ``bundle.phantoms.organs.build_gallbladder``).
"""

from __future__ import annotations

from bundle.phantoms.anatomy import AORTA, GALLBLADDER, LIVER, SPINE, STOMACH
from bundle.phantoms.facts import anterior_to, darker_than, left_of, right_of, touches
from bundle.phantoms.questions.pool import QuestionPool, attribute, location

_SPINE, _AORTA, _LIVER = SPINE.name, AORTA.name, LIVER.name

STOMACH_POOL = QuestionPool(
    long=(
        attribute("Which hollow, thick-walled organ holding swallowed fluid or gas, with contents much darker than the "
                  "contrast-filled vessels, stores food and begins its digestion with acid?",
                  "The stomach: a muscular hollow organ whose fluid or gas content is far darker than the enhanced "
                  "aorta; it stores food and secretes acid and pepsin.",
                  darker_than(_AORTA)),
        attribute("Which muscular food reservoir, whose contents are water-density fluid or black gas rather than "
                  "solid tissue, secretes gastric acid?",
                  "The stomach holds swallowed fluid and air instead of solid parenchyma, and its lining secretes "
                  "gastric acid."),
        location("Which hollow organ lies in the patient's left upper abdomen, anterior to the aorta and on the "
                 "patient's left of the spine?",
                 "The stomach sits in the left upper quadrant, in front of the aorta and on the patient's left of the "
                 "vertebral column.",
                 left_of(_SPINE), anterior_to(_AORTA)),
        location("Which organ sits in front of the spine and the aorta, on the patient's left, receiving food from the "
                 "oesophagus?",
                 "The stomach receives food from the oesophagus; it lies anterior to the spine and aorta, on the "
                 "patient's left.",
                 anterior_to(_SPINE), anterior_to(_AORTA), left_of(_SPINE)),
    ),
    short=(
        attribute("Which organ digests food with acid?", "The stomach digests food with acid and pepsin."),
        attribute("Which hollow organ holds swallowed gas or fluid?",
                  "The stomach is the hollow organ that holds swallowed gas and fluid."),
        location("Which hollow organ is left of the aorta, in front of it?",
                 "The stomach lies on the patient's left of the aorta and anterior to it.",
                 left_of(_AORTA), anterior_to(_AORTA)),
        location("Which organ is in front of the aorta on the left?",
                 "The stomach lies anterior to the aorta, on the patient's left of the spine.",
                 anterior_to(_AORTA), left_of(_SPINE)),
    ),
)  # fmt: skip

GALLBLADDER_POOL = QuestionPool(
    long=(
        attribute("Which pear-shaped sac of water-density bile, darker than the liver tissue it lies against, stores "
                  "and concentrates bile for fat digestion?",
                  "The gallbladder: a pear-shaped sac of bile, fluid density and therefore darker than the adjacent "
                  "liver; it stores and concentrates bile.",
                  darker_than(_LIVER), touches(_LIVER)),
        attribute("Which small fluid-filled organ with a thin wall, lower in density than the adjacent liver, "
                  "contracts after meals to release bile?",
                  "The gallbladder contracts after fatty meals to release bile; its fluid content is darker than the "
                  "liver beside it.",
                  darker_than(_LIVER), touches(_LIVER)),
        location("Which organ nestles against the liver on the patient's right, in front of the spine, in a fossa on "
                 "the liver's undersurface?",
                 "The gallbladder lies in the gallbladder fossa on the undersurface of the liver, on the patient's "
                 "right and anterior to the spine.",
                 touches(_LIVER), right_of(_SPINE), anterior_to(_SPINE)),
        location("Which structure lies on the patient's right of the spine, set into the undersurface of the liver?",
                 "The gallbladder is set into the liver's undersurface, on the patient's right of the spine.",
                 right_of(_SPINE), touches(_LIVER)),
    ),
    short=(
        attribute("Which sac stores bile?", "The gallbladder stores and concentrates bile."),
        attribute("Which bile-filled sac touches the liver?",
                  "The gallbladder holds bile and lies against the liver.", touches(_LIVER), darker_than(_LIVER)),
        location("Which sac sits against the liver, right of the spine?",
                 "The gallbladder lies against the liver on the patient's right of the spine.",
                 touches(_LIVER), right_of(_SPINE)),
        location("What organ hangs beneath the liver?",
                 "The gallbladder hangs from the undersurface of the liver.", touches(_LIVER)),
    ),
)  # fmt: skip

POOLS = {STOMACH.name: STOMACH_POOL, GALLBLADDER.name: GALLBLADDER_POOL}
