"""Whether a question (or its answer) is about one structure, whose mask should be one connected piece.

The 3D clean-up keeps only the largest component of a single organ (a liver is one piece; stray
blobs elsewhere are errors) but must not do so for findings that come in numbers (lesions, cysts,
nodules). A reasoning question rarely names its target, so the generated answer, which does
("The right kidney: ..."), is read too. The rule is deliberately plain: some single organ is named,
and nothing that comes in numbers (or a plural) is.

:func:`structure_named` says which structure a question asks about, for answers that name it
(:mod:`bundle.inference.wording`): the class of a label question, else the first single structure named.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from bundle.prompts import LABEL_QUESTIONS

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


_LABEL_PATTERNS = tuple(
    re.compile("^" + re.escape(template).replace(re.escape("{class_name}"), "(?P<name>.+?)") + "$", re.IGNORECASE)
    for template in LABEL_QUESTIONS
)


def structure_named(question: str | None, known: Sequence[str] = SINGLE_STRUCTURES) -> str | None:
    """The structure ``question`` asks about: a label question's class, else the first ``known`` one it names.

    Args:
        question: the question.
        known: structure names to look for in other questions (at the same place, the longest wins).

    Returns:
        The structure's name in lower case, or None when the question names none.
    """
    text = " ".join((question or "").split())
    for pattern in _LABEL_PATTERNS:
        match = pattern.match(text)
        if match:
            return match.group("name").strip().lower()
    lowered = text.lower()
    places = ((re.search(rf"\b{re.escape(name)}\b", lowered), name) for name in known)
    found = [(match.start(), -len(name), name) for match, name in places if match]
    return min(found)[2] if found else None
