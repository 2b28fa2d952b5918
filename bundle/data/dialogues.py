"""Dialogue pools: follow-up questions that refer to the previous turn's target, for training on dialogues.

A dataset's ``dialogues`` object (in ``dataset.json``, and per entry, which takes precedence class
by class like ``prompts``) maps the class a turn asked about to the follow-ups that may come next::

    "dialogues": {
        "right kidney": [
            {"question": "And the one on the other side?", "target": "left kidney",
             "explanation": "The left kidney, the right kidney's pair on the patient's left."}
        ],
        "spleen": [
            {"question": "Is there a lesion inside it?", "target": null,
             "explanation": "No lesion is inside the spleen in this image."}
        ]
    }

``target`` is a label name, or null for a follow-up whose answer is "nothing" on every image
(answered with the rejection token and the explanation). A follow-up whose target is not on a
slice is answered with the rejection token there, so dialogue pools need a model with presence
(``medisee_config#presence: "token"``) unless every target is on every slice it is asked about.
A dialogue starts with an ordinary question about a target and continues while the last target
has follow-ups, up to ``max_turns``.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bundle.data.queries import Query
from bundle.prompts import MAX_TURNS, absence_explanation
from common.errors import ConfigError, DataError

FOLLOW_UP = "follow_up"
"""The query kind of a follow-up turn."""
NOTHING = "nothing"
"""The class name metrics and logs give a follow-up whose answer is nothing."""


@dataclass(frozen=True)
class FollowUp:
    """A question that refers to the previous turn's target.

    Attributes:
        question: the text, e.g. "And the one on the other side?".
        target: the label it asks for, or None when the answer is nothing on any image.
        explanation: what the answer says after its candidate (or rejection) tokens.
    """

    question: str
    target: str | None
    explanation: str | None = None

    def query(self, present: bool) -> Query:
        """The follow-up as a query about an image where its target is ``present`` or not."""
        if self.target is None or present:
            return Query(FOLLOW_UP, self.question, self.explanation, present=self.target is not None)
        return Query(FOLLOW_UP, self.question, absence_explanation(self.target, FOLLOW_UP), present=False)


def parse_dialogue_pools(data: Mapping, where: str) -> dict[str, list[FollowUp]]:
    """``{class name: follow-ups}`` from a parsed ``dialogues`` object; ``where`` names it in errors."""
    if not isinstance(data, Mapping):
        raise DataError(f"{where}: 'dialogues' must be an object keyed by class name")
    pools = {}
    for name, follow_ups in data.items():
        if not isinstance(follow_ups, Sequence) or isinstance(follow_ups, str):
            raise DataError(f"{where}: dialogues [{name}] must be a list of follow-ups")
        pools[str(name).lower()] = [
            _follow_up(item, f"{where}: dialogues [{name}][{i}]") for i, item in enumerate(follow_ups)
        ]
    return pools


def _follow_up(item, where: str) -> FollowUp:
    if not isinstance(item, Mapping) or not isinstance(item.get("question"), str) or not item["question"].strip():
        raise DataError(f"{where} needs a non-empty 'question' string")
    target = item.get("target")
    if target is not None and (not isinstance(target, str) or not target.strip()):
        raise DataError(f"{where}: 'target' must be a label name or null, got {target!r}")
    explanation = item.get("explanation")
    if explanation is not None and not isinstance(explanation, str):
        raise DataError(f"{where}: 'explanation' must be a string")
    if target is None and not (explanation or "").strip():
        raise DataError(f"{where}: a follow-up without a target needs the 'explanation' its answer gives")
    return FollowUp(item["question"].strip(), None if target is None else target.strip().lower(), explanation)


class DialogueSampler:
    """Chooses which training rows become dialogues, and their follow-ups.

    Args:
        pools: class name -> follow-ups (the dataset's ``dialogues``).
        fraction: share of training rows that continue into a dialogue (when their class has follow-ups).
        max_turns: the longest dialogue (2 to ``MAX_TURNS``); each dialogue draws its length up to it.
    """

    def __init__(
        self, pools: Mapping[str, Sequence[FollowUp]] | None = None, fraction: float = 0.0, max_turns: int = 3
    ) -> None:
        if not 0.0 <= fraction <= 1.0:
            raise ConfigError(f"'dialogue_fraction' must be in [0, 1], got {fraction}")
        if not 2 <= max_turns <= MAX_TURNS:
            raise ConfigError(f"'max_turns' must be from 2 to {MAX_TURNS}, got {max_turns}")
        self.pools = {name: list(follow_ups) for name, follow_ups in (pools or {}).items()}
        self.fraction = float(fraction)
        self.max_turns = int(max_turns)

    def follow_ups(self, class_name: str, extra: Mapping[str, Sequence[FollowUp]] | None = None) -> list[FollowUp]:
        """The follow-ups after a turn about ``class_name`` (``extra``: the entry's, which take precedence)."""
        name = class_name.lower()
        if extra and name in extra:
            return list(extra[name])
        return self.pools.get(name, [])

    def chain(
        self, class_name: str, rng: random.Random, extra: Mapping[str, Sequence[FollowUp]] | None = None
    ) -> list[FollowUp]:
        """Follow-ups after a first turn about ``class_name``: a random length up to ``max_turns`` - 1,
        shorter when a target has no follow-ups of its own (or the answer is nothing)."""
        length = rng.randint(1, self.max_turns - 1)
        chain: list[FollowUp] = []
        name: str | None = class_name
        while name is not None and len(chain) < length:
            options = self.follow_ups(name, extra)
            if not options:
                break
            chain.append(rng.choice(options))
            name = chain[-1].target
        return chain

    def eval_chains(
        self, class_name: str, key: str, extra: Mapping[str, Sequence[FollowUp]] | None = None
    ) -> list[tuple[list[FollowUp], random.Random]]:
        """The follow-up chains evaluation asks after a first turn about ``class_name``: each of its
        follow-ups, then (within ``max_turns``) one of that target's own, chosen by ``key`` and the
        question. Each chain comes with the generator that chose it, for the dialogue's other choices."""
        chains = []
        for follow_up in self.follow_ups(class_name, extra):
            rng = random.Random(f"{key}/{follow_up.question}")
            chain = [follow_up]
            more = self.follow_ups(follow_up.target, extra) if follow_up.target else []
            if more and self.max_turns > 2:
                chain.append(rng.choice(more))
            chains.append((chain, rng))
        return chains

    def continues(self, class_name: str, rng: random.Random, extra=None) -> bool:
        """Whether a training row about ``class_name`` continues into a dialogue (drawn at ``fraction``;
        without dialogues nothing is drawn, so the rows' other random choices stay as they were)."""
        if self.fraction <= 0 or not self.follow_ups(class_name, extra):
            return False
        return rng.random() < self.fraction
