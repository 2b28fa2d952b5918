"""The answer a person reads: the model's text without its candidate and rejection tokens.

MediSee's trained answer starts with "It is [SEG] and [BBOX]." (or "It is [REJ]."): the tokens are
where the model's states are read, not words. :class:`AnswerWording` removes that sentence and any
other token the model wrote (an untrained model writes "[SEG] [SEG] ..."), and tidies the spaces and
punctuation left behind. When nothing remains, which is the trained answer to a label question, the
answer names the structure the question asks about and says whether it was found. The token strings
come from the model's :class:`bundle.prompts.PromptBuilder`, so another candidate set (n = 1..3) is
worded the same way. The raw text stays in the result json as ``answer_raw``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bundle.inference.answer import NOT_FOUND
from bundle.inference.structures import structure_named
from bundle.prompts import ANSWER_PREFIX, CANDIDATE_JOINER, PromptBuilder

FOUND = "Found the {structure}."
"""The answer when the model's text holds nothing but tokens and the target was found."""
FOUND_UNNAMED = "Found the target."
"""The same when the question names no known structure."""
NOT_FOUND_NAMED = "The {structure} was not found on any slice of this volume."
"""The answer when the model's text holds nothing but tokens and no slice holds the target."""
_PLACEHOLDER = "\x00"


class AnswerWording:
    """Turns the model's generated text into the answer shown to a person.

    Args:
        tokens: the token strings to remove (the candidate tokens and the rejection token, if any).
    """

    def __init__(self, tokens: Sequence[str]) -> None:
        self.tokens = [t for t in tokens if t]
        # longest first, so a token that contains another one is removed whole
        alternatives = "|".join(re.escape(t) for t in sorted(self.tokens, key=len, reverse=True))
        self._token = re.compile(alternatives) if alternatives else None
        joiner = re.escape(CANDIDATE_JOINER.strip())
        # tokens joined as the answer prefix joins them ("[SEG] and [BBOX]", "[SEG], [SEG]") are one gap
        self._run = re.compile(rf"{_PLACEHOLDER}(?:\s*(?:{joiner}|,)?\s*{_PLACEHOLDER})+")
        head, _, tail = ANSWER_PREFIX.partition("{candidates}")
        self._prefix = re.compile(
            rf"{re.escape(head)}\s*{_PLACEHOLDER}(?:\s*(?:{joiner}|,))?\s*{re.escape(tail)}", re.IGNORECASE
        )

    @classmethod
    def for_prompts(cls, prompts: PromptBuilder) -> AnswerWording:
        """The wording of a model's answers: its candidate tokens and its rejection token."""
        return cls([*prompts.candidate_tokens, prompts.rejection_token])

    def strip_tokens(self, text: str) -> str:
        """``text`` without the tokens and the "It is ..." sentence that held them, spaces and punctuation tidied."""
        if self._token is None:
            return _tidy(text)
        text = self._run.sub(_PLACEHOLDER, self._token.sub(_PLACEHOLDER, text))
        text = self._prefix.sub(" ", text).replace(_PLACEHOLDER, " ")
        return _tidy(text)

    def __call__(self, generated: str | None, query: str, found: bool) -> str | None:
        """The answer to show for the model's ``generated`` text (None stays None: generation is off).

        Args:
            generated: the model's text (after the not-found rule of :func:`bundle.inference.answer.not_found_answer`).
            query: the question (names the structure when the text names nothing).
            found: whether any slice holds the target.
        """
        if generated is None:
            return None
        words = self.strip_tokens(generated)
        if words:
            return words
        structure = structure_named(query)
        if found:
            return FOUND.format(structure=structure) if structure else FOUND_UNNAMED
        return NOT_FOUND_NAMED.format(structure=structure) if structure else NOT_FOUND


def _tidy(text: str) -> str:
    """Single spaces, no space before punctuation, no punctuation left alone at the start or doubled."""
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"\s+([.,;:!?])", r"\1", text)
    text = re.sub(r"([.,;:!?])(?:\s*[.,;:])+", r"\1", text)  # "and ." / ". ." left by removed tokens
    text = re.sub(r"^[\s.,;:!?]+", "", text)
    text = re.sub(r"(?:^|\s)(?:and|,)\s*(?=[.!?]|$)", "", text)  # a joiner whose token went
    return text.strip()
