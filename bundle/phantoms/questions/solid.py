"""Question pools for the solid organs: liver, spleen and the two kidneys.

Location claims only use references present on every slice the target is on (spine, aorta,
inferior vena cava), so each claim is visible wherever the question is asked.
"""

from __future__ import annotations

from collections.abc import Callable

from bundle.phantoms.anatomy import AORTA, IVC, LEFT_KIDNEY, LIVER, RIGHT_KIDNEY, SPINE, SPLEEN
from bundle.phantoms.facts import Fact, darker_than, left_of, posterior_to, right_of
from bundle.phantoms.questions.pool import QuestionPool, attribute, location

_SPINE, _AORTA, _IVC = SPINE.name, AORTA.name, IVC.name

LIVER_POOL = QuestionPool(
    long=(
        attribute("Which large solid organ, with smooth and uniformly grey tissue on this contrast CT, produces bile, "
                  "stores glycogen and clears toxins and drugs from the blood?",
                  "This is the liver. It is the body's largest solid organ and appears as homogeneous soft tissue, "
                  "less dense than the contrast-filled aorta; it makes bile, stores glycogen and detoxifies the blood.",
                  darker_than(_AORTA)),
        attribute("Which organ receives nutrient-rich blood from the intestines through the portal vein and appears as "
                  "an even, mid-grey solid organ, clearly less bright than the enhanced aorta?",
                  "The liver. Portal venous blood from the gut drains into it for processing, and on CT its parenchyma "
                  "is uniform soft tissue that is darker than the contrast-enhanced aorta.",
                  darker_than(_AORTA)),
        location("Which solid organ occupies the patient's right upper abdomen, lying to the right of both the "
                 "vertebral column and the aorta, beneath the right dome of the diaphragm?",
                 "The liver sits in the right upper quadrant under the right hemidiaphragm; on this slice it lies on "
                 "the patient's right of the spine and of the aorta.",
                 right_of(_SPINE), right_of(_AORTA)),
        location("On the patient's right side of this slice, lateral to the spine, which large gland that produces "
                 "bile should be outlined?",
                 "The liver is the bile-producing gland on the patient's right, lateral to the vertebral column.",
                 right_of(_SPINE)),
    ),
    short=(
        attribute("Which organ makes bile?", "The liver: this homogeneous solid organ produces bile."),
        attribute("Which organ stores glycogen and detoxifies blood?",
                  "The liver stores glycogen and detoxifies the blood; it is the large uniform solid organ here."),
        location("Which big gland lies right of the spine?",
                 "The liver, the body's largest gland, lies on the patient's right of the spine.", right_of(_SPINE)),
        location("Which bile-making organ is right of the aorta?",
                 "The liver makes bile and lies on the patient's right of the aorta.", right_of(_AORTA)),
    ),
)  # fmt: skip

SPLEEN_POOL = QuestionPool(
    long=(
        attribute("Which crescent-shaped solid organ filters worn-out red blood cells from the circulation and stores "
                  "immune cells, appearing as uniform soft tissue less bright than the aorta?",
                  "This is the spleen. It removes aged red blood cells and hosts lymphocytes; on contrast CT it is a "
                  "homogeneous crescent of soft tissue, darker than the enhanced aorta.",
                  darker_than(_AORTA)),
        attribute("Which blood-filtering lymphoid organ, smooth and homogeneous with a concave inner surface, is "
                  "responsible for immune surveillance of the blood?",
                  "The spleen, the largest lymphoid organ, filters the blood and mounts immune responses; it has a "
                  "homogeneous parenchyma and a concave hilar surface."),
        location("Which solid organ lies in the patient's left upper abdomen, laterally, on the patient's left of both "
                 "the spine and the aorta?",
                 "The spleen occupies the left upper quadrant laterally; on this slice it is on the patient's left of "
                 "the vertebral column and of the aorta.",
                 left_of(_SPINE), left_of(_AORTA)),
        location("Which organ on the patient's left of the aorta and the spine breaks down worn-out red blood cells?",
                 "The spleen breaks down aged red blood cells and lies on the patient's left of the aorta and spine.",
                 left_of(_AORTA), left_of(_SPINE)),
    ),
    short=(
        attribute("Which organ removes old red blood cells?", "The spleen removes aged red blood cells."),
        attribute("Which lymphoid organ filters the blood?",
                  "The spleen, the largest lymphoid organ, filters the blood."),
        location("Which immune organ lies left of the spine?",
                 "The spleen, an immune organ, lies on the patient's left of the spine.", left_of(_SPINE)),
        location("Which organ left of the aorta recycles red cells?",
                 "The spleen recycles red cells and lies on the patient's left of the aorta.", left_of(_AORTA)),
    ),
)  # fmt: skip


def _kidney_pool(side: str, lateral: Callable[..., Fact], great_vessel: str) -> QuestionPool:
    """The kidney on ``side`` ('right'/'left'); ``lateral`` is right_of/left_of; ``great_vessel`` is on that side."""
    name = f"{side} kidney"
    return QuestionPool(
        long=(
            attribute(f"Which bean-shaped organ with a brightly enhancing outer cortex, lying on the patient's {side}, "
                      "filters the blood to produce urine?",
                      f"The {name}: a bean-shaped organ whose contrast-enhanced cortex is brighter than its medulla; "
                      f"it filters blood and makes urine, and it lies on the patient's {side} of the spine.",
                      lateral(_SPINE)),
            attribute("Which paired urine-producing organ, recognisable by its bright rim of cortex around a darker "
                      f"medulla and a notch at its hilum, is the one on the patient's {side}?",
                      f"The {name}. Kidneys show an enhancing cortex around the medulla and a medial hilum notch; this "
                      f"one is on the patient's {side} of the spine.",
                      lateral(_SPINE)),
            location(f"Which organ lies beside the vertebral column on the patient's {side}, posterior and lateral to "
                     f"the {great_vessel}, in the retroperitoneum?",
                     f"The {name} is retroperitoneal, on the patient's {side} of the spine, posterior and lateral to "
                     f"the {great_vessel}.",
                     lateral(_SPINE), posterior_to(great_vessel), lateral(great_vessel)),
            location(f"Which organ sits in the posterior abdomen, behind the level of the aorta and on the patient's "
                     f"{side} of the spine?",
                     f"The {name} lies posterior to the aorta, on the patient's {side} of the vertebral column.",
                     posterior_to(_AORTA), lateral(_SPINE)),
        ),
        short=(
            attribute(f"Which {side}-sided organ makes urine?", f"The {name} filters blood to produce urine.",
                      lateral(_SPINE)),
            attribute(f"Which bean-shaped organ is on the patient's {side}?",
                      f"The {name} is the bean-shaped organ on the patient's {side}.", lateral(_SPINE)),
            location(f"Which organ is {side} of the spine, behind the {great_vessel}?",
                     f"The {name} lies on the patient's {side} of the spine, posterior to the {great_vessel}.",
                     lateral(_SPINE), posterior_to(great_vessel)),
            location(f"Which retroperitoneal organ lies {side} of the {great_vessel}?",
                     f"The {name} is retroperitoneal and lateral to the {great_vessel}, on the patient's {side}.",
                     lateral(great_vessel)),
        ),
    )  # fmt: skip


RIGHT_KIDNEY_POOL = _kidney_pool("right", right_of, _IVC)
LEFT_KIDNEY_POOL = _kidney_pool("left", left_of, _AORTA)

POOLS = {LIVER.name: LIVER_POOL, SPLEEN.name: SPLEEN_POOL, RIGHT_KIDNEY.name: RIGHT_KIDNEY_POOL,
         LEFT_KIDNEY.name: LEFT_KIDNEY_POOL}  # fmt: skip
