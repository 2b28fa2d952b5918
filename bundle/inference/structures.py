"""Whether a question (or its answer) is about one structure, whose mask should be one connected piece.

The 3D clean-up keeps only the largest component of a single organ (a liver is one piece; stray
blobs elsewhere are errors) but must not do so for findings that come in numbers (lesions, cysts,
nodules). A reasoning question rarely names its target, so the generated answer, which does
("The right kidney: ..."), is read too. The rule is deliberately plain: some single organ is named,
and nothing that comes in numbers (or a plural) is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

SINGLE_STRUCTURES = (
    "liver",
    "spleen",
    "right kidney",
    "left kidney",
    "aorta",
    "inferior vena cava",
    "spine",
    "stomach",
    "gallbladder",
    "pancreas",
    "urinary bladder",
    "heart",
    "right lung",
    "left lung",
    "brain",
    "prostate",
    "uterus",
)
"""Structures that are one connected piece in a scan."""
MULTIPLE_WORDS = (
    "lesion",
    "cyst",
    "nodule",
    "tumour",
    "tumor",
    "mass",
    "metastas",
    "stone",
    "calculi",
    "lymph node",
    "kidneys",
    "lungs",
)
"""Words of findings that may come in numbers, and plurals of paired organs."""


def _mentions(text: str, words: Iterable[str]) -> bool:
    return any(re.search(rf"\b{re.escape(word)}", text) for word in words)


def names_single_structure(
    texts: Sequence[str | None],
    single: Sequence[str] = SINGLE_STRUCTURES,
    multiple: Sequence[str] = MULTIPLE_WORDS,
) -> bool:
    """Whether ``texts`` (the question, the answer) name a single structure and nothing that comes in numbers."""
    text = " ".join(t for t in texts if t).lower()
    return _mentions(text, single) and not _mentions(text, multiple)
