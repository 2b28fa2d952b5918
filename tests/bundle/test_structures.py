"""Which questions and answers name a single structure (the clean-up keeps its largest piece)."""

import pytest

from bundle.inference.structures import names_single_structure


@pytest.mark.parametrize(
    ("texts", "single"),
    [
        (["Please segment and locate the liver in this image."], True),
        (["Which organ filters the blood?", "It is [SEG] and [BBOX]. The right kidney: a bean-shaped organ."], True),
        (["Please segment and locate the liver lesion in this image."], False),
        (["Where are the renal cysts?"], False),
        (["Segment the kidneys."], False),
        (["Which organ filters the blood?", None], False),
        (["Where is the deliverable?"], False),
    ],
)
def test_single_structures_are_named_organs_without_findings_or_plurals(texts, single):
    assert names_single_structure(texts) is single
