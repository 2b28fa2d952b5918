"""The segment's codes come from the structure the question, or else the answer, names."""

from __future__ import annotations

import pytest

from tests.bundle.deploy.runs import NEEDS_DEPLOY_EXTRA

pytest.importorskip("pydicom", reason=NEEDS_DEPLOY_EXTRA)

from pydicom.sr.codedict import codes  # noqa: E402

from bundle.deploy.structures import ABNORMAL, ANATOMY, GENERIC, name_structure  # noqa: E402


@pytest.mark.parametrize(
    ("query", "answer", "label", "category", "structure", "modifier", "region"),
    [
        ("Please segment the right kidney.", None, "Right kidney", ANATOMY, codes.SCT.Kidney, codes.SCT.Right, None),
        ("Where is the LIVER?", None, "Liver", ANATOMY, codes.SCT.Liver, None, None),
        ("Find the renal cyst.", None, "Kidney cyst", ABNORMAL, codes.SCT.Cyst, None, codes.SCT.Kidney),
        ("Is there a liver lesion?", None, "Liver lesion", ABNORMAL, codes.SCT.Lesion, None, codes.SCT.Liver),
        ("Segment the gall bladder.", None, "Gallbladder", ANATOMY, codes.SCT.Gallbladder, None, None),
        (
            "Where is the inferior vena cava?",
            None,
            "Inferior vena cava",
            ANATOMY,
            codes.SCT.InferiorVenaCava,
            None,
            None,
        ),
        (
            "Which organ filters blood and makes urine?",
            "It is the left kidney, which filters the blood.",
            "Left kidney",
            ANATOMY,
            codes.SCT.Kidney,
            codes.SCT.Left,
            None,
        ),
    ],
)
def test_a_named_structure_is_coded(query, answer, label, category, structure, modifier, region):
    found = name_structure(query, answer)
    assert (found.label, found.category, found.type, found.modifier, found.region) == (
        label,
        category,
        structure,
        modifier,
        region,
    )
    assert found.rgb != GENERIC.rgb


def test_the_question_wins_over_the_answer_and_nothing_known_is_generic():
    assert name_structure("Where is the spleen?", "It is the liver.").type == codes.SCT.Spleen
    generic = name_structure("What is the brightest thing here?", "D\x03D\x03")
    assert generic == GENERIC and generic.category == generic.type == codes.SCT.Tissue
    assert name_structure("Where is the bladderwrack?").type == codes.SCT.Tissue, "whole words only"
