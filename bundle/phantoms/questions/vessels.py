"""Question pools for the structures on every slice: aorta, inferior vena cava and spine."""

from __future__ import annotations

from bundle.phantoms.anatomy import AORTA, BONE_HU, IVC, SPINE
from bundle.phantoms.facts import anterior_to, brighter_than, darker_than, has_hu_above, left_of, posterior_to, right_of
from bundle.phantoms.questions.pool import QuestionPool, attribute, location

_SPINE, _AORTA, _IVC = SPINE.name, AORTA.name, IVC.name

AORTA_POOL = QuestionPool(
    long=(
        attribute("Which round, brightly contrast-filled vessel, the largest artery of the body, carries oxygenated "
                  "blood from the heart down to the abdomen and legs?",
                  "The aorta: a round vessel densely opacified by contrast, brighter than the inferior vena cava; it "
                  "carries oxygenated blood from the heart to the body.",
                  brighter_than(_IVC)),
        attribute("Which tubular structure with a round cross-section is brighter than the neighbouring vena cava "
                  "because it is filled with arterial contrast?",
                  "The aorta. Arterial contrast makes it brighter than the inferior vena cava, and its cross-section "
                  "is round.",
                  brighter_than(_IVC)),
        location("Which vessel runs just in front of the vertebral body, slightly to the patient's left of the "
                 "midline, with the inferior vena cava on its right?",
                 "The abdominal aorta descends anterior to the spine, just left of the midline, with the inferior vena "
                 "cava on the patient's right of it.",
                 anterior_to(_SPINE), left_of(_SPINE), left_of(_IVC)),
        location("Which round structure lies immediately anterior to the spine and to the patient's left of the "
                 "inferior vena cava?",
                 "The aorta lies anterior to the spine, on the patient's left of the inferior vena cava.",
                 anterior_to(_SPINE), left_of(_IVC)),
    ),
    short=(
        attribute("Which artery is the largest in the body?", "The aorta is the body's largest artery."),
        attribute("Which bright round vessel carries arterial blood?",
                  "The aorta carries arterial blood and is brighter than the vena cava.", brighter_than(_IVC)),
        location("Which vessel lies left of the IVC?",
                 "The aorta lies on the patient's left of the inferior vena cava.", left_of(_IVC)),
        location("What round vessel is in front of the spine, left of midline?",
                 "The aorta runs anterior to the spine, just left of the midline.",
                 anterior_to(_SPINE), left_of(_SPINE)),
    ),
)  # fmt: skip

IVC_POOL = QuestionPool(
    long=(
        attribute("Which large, flattened oval vein, less brightly opacified than the aorta, returns deoxygenated "
                  "blood from the legs and abdomen to the heart?",
                  "The inferior vena cava: an oval, thin-walled vein that enhances less than the aorta; it returns "
                  "blood from the lower body to the right atrium.",
                  darker_than(_AORTA)),
        attribute("Which thin-walled vessel with an oval cross-section carries venous blood back to the right atrium "
                  "and looks greyer than the neighbouring aorta?",
                  "The inferior vena cava carries venous blood to the right atrium; it is oval and darker than the "
                  "aorta on this contrast CT.",
                  darker_than(_AORTA)),
        location("Which vessel lies in front of the spine on the patient's right, alongside the aorta but to its "
                 "right?",
                 "The inferior vena cava runs anterior to the spine on the patient's right of the aorta.",
                 anterior_to(_SPINE), right_of(_AORTA), right_of(_SPINE)),
        location("Which large vein runs to the patient's right of the aorta, anterior to the vertebral body?",
                 "The inferior vena cava lies on the patient's right of the aorta, in front of the vertebral body.",
                 right_of(_AORTA), anterior_to(_SPINE)),
    ),
    short=(
        attribute("Which vein returns blood from the lower body?",
                  "The inferior vena cava returns blood from the lower body to the heart."),
        attribute("Which oval vessel is darker than the aorta?",
                  "The inferior vena cava is oval and darker than the aorta.", darker_than(_AORTA)),
        location("Which vessel lies right of the aorta?",
                 "The inferior vena cava lies on the patient's right of the aorta.", right_of(_AORTA)),
        location("Which large vein is in front of the spine?",
                 "The inferior vena cava runs anterior to the spine.", anterior_to(_SPINE)),
    ),
)  # fmt: skip

SPINE_POOL = QuestionPool(
    long=(
        attribute("Which structure is made of dense bone, the brightest tissue in this image, forming a ring that "
                  "protects the spinal cord?",
                  "The spine: its vertebral bone is the densest, brightest tissue on CT, and the vertebral arch "
                  "surrounds the spinal canal that holds the cord.",
                  has_hu_above(BONE_HU)),
        attribute("Which bony column, with a round vertebral body in front and an arch behind, supports the trunk and "
                  "encloses the spinal canal?",
                  "The spine (vertebral column): a vertebral body anteriorly and a bony arch posteriorly around the "
                  "spinal canal; it bears the weight of the trunk.",
                  has_hu_above(BONE_HU)),
        location("Which midline structure lies at the back of the abdomen, directly posterior to the aorta and the "
                 "inferior vena cava?",
                 "The spine is in the posterior midline, behind the aorta and the inferior vena cava.",
                 posterior_to(_AORTA), posterior_to(_IVC)),
        location("Which structure sits in the posterior midline, behind the great vessels, between the muscles of "
                 "the back?",
                 "The spine lies in the posterior midline, posterior to the aorta and the inferior vena cava, flanked "
                 "by the paraspinal muscles.",
                 posterior_to(_AORTA), posterior_to(_IVC)),
    ),
    short=(
        attribute("Which bony structure protects the spinal cord?",
                  "The spine: its bony arch protects the spinal cord.", has_hu_above(BONE_HU)),
        attribute("Which structure here has the density of bone?",
                  "The spine is bone, the densest tissue on CT.", has_hu_above(BONE_HU)),
        location("What lies behind the aorta in the midline?",
                 "The spine lies posterior to the aorta in the midline.", posterior_to(_AORTA)),
        location("Which bony column is posterior to the great vessels?",
                 "The spine lies posterior to the aorta and the inferior vena cava.",
                 posterior_to(_AORTA), posterior_to(_IVC)),
    ),
)  # fmt: skip

POOLS = {AORTA.name: AORTA_POOL, IVC.name: IVC_POOL, SPINE.name: SPINE_POOL}
