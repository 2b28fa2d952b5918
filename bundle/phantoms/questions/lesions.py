"""Question pools for the lesions: a hypodense liver lesion and a renal cyst (either kidney).

The dataset-level cyst pool never says which kidney; that is in the per-entry pools
(``bundle.phantoms.questions.entries``).
"""

from __future__ import annotations

from bundle.phantoms.anatomy import AORTA, LEFT_KIDNEY, LIVER, LIVER_LESION, RENAL_CYST, RIGHT_KIDNEY, SPINE
from bundle.phantoms.facts import darker_than, posterior_to, right_of, within
from bundle.phantoms.questions.pool import QuestionPool, attribute, location

_SPINE, _AORTA, _LIVER = SPINE.name, AORTA.name, LIVER.name
KIDNEYS = (RIGHT_KIDNEY.name, LEFT_KIDNEY.name)

LIVER_LESION_POOL = QuestionPool(
    long=(
        attribute("Which rounded area inside the liver appears hypodense, clearly darker than the normal liver "
                  "parenchyma around it, and may represent a tumour, metastasis or abscess?",
                  "The liver lesion: a focal hypodense area within the liver, darker than the surrounding parenchyma, "
                  "such as a metastasis, tumour or abscess.",
                  within(_LIVER), darker_than(_LIVER)),
        attribute("Which focal abnormality shows lower attenuation than the healthy liver tissue that contains it, "
                  "standing out as a dark round spot?",
                  "The liver lesion has lower attenuation than the normal liver around it, so it appears as a dark "
                  "focal spot within the organ.",
                  within(_LIVER), darker_than(_LIVER)),
        location("Which abnormal spot lies within the liver, on the patient's right of the spine?",
                 "The liver lesion lies within the liver, on the patient's right of the vertebral column.",
                 within(_LIVER), right_of(_SPINE)),
        location("Inside the organ in the right upper abdomen, on the patient's right of the vertebral column, which "
                 "focal lesion should be outlined?",
                 "The liver lesion: a focal lesion inside the liver, which lies on the patient's right of the spine.",
                 within(_LIVER), right_of(_SPINE)),
    ),
    short=(
        attribute("Which dark spot is in the liver?",
                  "The liver lesion is a hypodense spot within the liver.", within(_LIVER), darker_than(_LIVER)),
        attribute("Which hypodense lesion is there?",
                  "The liver lesion is darker than the liver tissue around it.", darker_than(_LIVER)),
        location("What lesion lies within the liver?", "The liver lesion lies within the liver.", within(_LIVER)),
        location("Which abnormality is right of the spine, in the liver?",
                 "The liver lesion lies in the liver, on the patient's right of the spine.",
                 right_of(_SPINE), within(_LIVER)),
    ),
)  # fmt: skip

RENAL_CYST_POOL = QuestionPool(
    long=(
        attribute("Which round, water-density lesion, much darker than the enhancing kidney tissue around it, is a "
                  "simple fluid-filled cyst?",
                  "The renal cyst: a round fluid-filled lesion of water density within a kidney, darker than the "
                  "enhancing renal parenchyma.",
                  within(*KIDNEYS), darker_than(*KIDNEYS)),
        attribute("Which smooth, homogeneous fluid-filled pocket arising from a kidney is usually a harmless finding "
                  "in adults?",
                  "The renal cyst: simple renal cysts are common, benign, homogeneous fluid collections in the kidney.",
                  within(*KIDNEYS)),
        location("Which fluid lesion sits within one of the kidneys, posterior to the aorta in the retroperitoneum?",
                 "The renal cyst lies within a kidney, in the retroperitoneum posterior to the aorta.",
                 within(*KIDNEYS), posterior_to(_AORTA)),
        location("Which round structure is embedded in a kidney, behind the level of the aorta?",
                 "The renal cyst is embedded in a kidney, posterior to the aorta.",
                 within(*KIDNEYS), posterior_to(_AORTA)),
    ),
    short=(
        attribute("Which cyst is in the kidney?", "The renal cyst is a fluid-filled cyst in the kidney.",
                  within(*KIDNEYS)),
        attribute("Which dark round lesion is in a kidney?",
                  "The renal cyst is a round lesion darker than the kidney around it.",
                  within(*KIDNEYS), darker_than(*KIDNEYS)),
        location("What lesion lies in a kidney?", "The renal cyst lies within a kidney.", within(*KIDNEYS)),
        location("Which cyst is behind the aorta, in a kidney?",
                 "The renal cyst lies within a kidney, posterior to the aorta.",
                 posterior_to(_AORTA), within(*KIDNEYS)),
    ),
)  # fmt: skip

POOLS = {LIVER_LESION.name: LIVER_LESION_POOL, RENAL_CYST.name: RENAL_CYST_POOL}
