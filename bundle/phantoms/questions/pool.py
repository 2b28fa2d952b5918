"""Questions with their explanations and the facts they claim, grouped into MLMR-SD-style pools."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from bundle.phantoms.facts import Fact


class Perspective(str, Enum):
    """The two MLMR-SD question perspectives (paper Sec. 3)."""

    ATTRIBUTE = "attribute"  # the target's own intensity, shape or function
    LOCATION = "location"  # its position relative to other structures or the patient's sides


@dataclass(frozen=True)
class Question:
    """One implicit question about a label.

    Attributes:
        text: the question (never names the label).
        explanation: the answer's explanation (names the label and says why).
        perspective: attribute- or location-oriented.
        facts: every visual claim of the text and explanation, checkable on each slice.
    """

    text: str
    explanation: str
    perspective: Perspective
    facts: tuple[Fact, ...] = ()


@dataclass(frozen=True)
class QuestionPool:
    """Long and short questions for one label (explanation i explains question i)."""

    long: tuple[Question, ...]
    short: tuple[Question, ...]

    @property
    def questions(self) -> tuple[Question, ...]:
        """All questions, long first."""
        return self.long + self.short

    def to_json(self) -> dict[str, list[str]]:
        """The pool as MLMR-SD writes it: ``long``, ``short`` and their aligned explanations."""
        return {
            "long": [q.text for q in self.long],
            "short": [q.text for q in self.short],
            "long_explanation": [q.explanation for q in self.long],
            "short_explanation": [q.explanation for q in self.short],
        }


def attribute(text: str, explanation: str, *facts: Fact) -> Question:
    """An attribute-oriented question."""
    return Question(text, explanation, Perspective.ATTRIBUTE, facts)


def location(text: str, explanation: str, *facts: Fact) -> Question:
    """A location-oriented question."""
    return Question(text, explanation, Perspective.LOCATION, facts)
