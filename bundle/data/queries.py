"""Questions for a target: plain label questions and MLMR-SD-style reasoning prompt pools.

A prompt pool holds, for one class, ``long`` and ``short`` reasoning descriptions with aligned
``long_explanation`` / ``short_explanation`` lists (explanation i explains description i).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bundle.data.paths import read_json
from bundle.prompts import QUERY_KINDS, label_question, reasoning_question
from common.errors import ConfigError, DataError

REASONING_KINDS = ("short", "long")
DEFAULT_KIND_WEIGHTS = {"label": 0.7, "short": 0.15, "long": 0.15}  # paper: label : reasoning = 7 : 3


@dataclass
class PromptPool:
    """Reasoning descriptions for one class (MLMR-SD format)."""

    long: list[str] = field(default_factory=list)
    short: list[str] = field(default_factory=list)
    long_explanation: list[str] = field(default_factory=list)
    short_explanation: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, values: Mapping, where: str) -> PromptPool:
        """Validates one pool; ``where`` names it in errors (file and class)."""
        pool = cls(
            **{
                k: [str(x) for x in values.get(k) or []]
                for k in ("long", "short", "long_explanation", "short_explanation")
            }
        )
        for kind in REASONING_KINDS:
            explanations = getattr(pool, f"{kind}_explanation")
            if explanations and len(explanations) != len(getattr(pool, kind)):
                raise DataError(f"{where}: '{kind}' and '{kind}_explanation' have different lengths")
        return pool

    def has(self, kind: str) -> bool:
        """Whether the pool holds descriptions of ``kind``."""
        return bool(getattr(self, kind))


def parse_prompt_pools(data: Mapping, where: str) -> dict[str, PromptPool]:
    """``{class name: pool}`` from a parsed json mapping."""
    if not isinstance(data, Mapping):
        raise DataError(f"{where}: prompt pools must be an object keyed by class name")
    return {str(name).lower(): PromptPool.from_dict(pool, f"{where} [{name}]") for name, pool in data.items()}


def read_prompt_pools(path: str | Path) -> dict[str, PromptPool]:
    """Reads an MLMR-SD prompt-pool json file."""
    path = Path(path)
    return parse_prompt_pools(read_json(path, "prompt pool file"), str(path))


@dataclass
class Query:
    """A question about one target, with the explanation its answer carries.

    Attributes:
        kind: ``label``, ``short`` or ``long``.
        question: the question text.
        explanation: what the answer says after the candidate tokens (reasoning questions and
            absent targets); None for a plain label question about a present target.
        present: whether the structure asked about is on the image (False: a negative question,
            answered with the rejection token).
        answer: the whole answer of a turn that segments nothing (a dialogue's text-only turn, taken
            verbatim); None: the answer is built from the candidate tokens and ``explanation``.
    """

    kind: str
    question: str
    explanation: str | None
    present: bool = True
    answer: str | None = None


class QuestionSampler:
    """Chooses a query kind and a question for a class.

    Args:
        pools: class name -> reasoning pool (may be empty: label questions only).
        kind_weights: relative frequency of ``label``, ``short`` and ``long`` queries; a kind
            without descriptions for the class falls back to a label question.
    """

    def __init__(
        self, pools: Mapping[str, PromptPool] | None = None, kind_weights: Mapping[str, float] | None = None
    ) -> None:
        weights = dict(DEFAULT_KIND_WEIGHTS if kind_weights is None else kind_weights)
        unknown = set(weights) - set(QUERY_KINDS)
        if unknown or not any(w > 0 for w in weights.values()) or any(w < 0 for w in weights.values()):
            raise ConfigError(f"query kind weights must be non-negative over {QUERY_KINDS}, got {weights}")
        self.pools = dict(pools or {})
        self.kind_weights = weights

    def kinds_for(self, class_name: str, extra: Mapping[str, PromptPool] | None = None) -> list[str]:
        """The kinds available for ``class_name`` (always ``label``)."""
        pool = self._pool(class_name, extra)
        return ["label"] + [k for k in REASONING_KINDS if pool is not None and pool.has(k)]

    def sample(self, class_name: str, rng: random.Random, extra: Mapping[str, PromptPool] | None = None) -> Query:
        """A random query for ``class_name`` (``extra``: per-entry pools that take precedence)."""
        available = self.kinds_for(class_name, extra)
        weights = [self.kind_weights.get(k, 0.0) for k in available]
        kind = rng.choices(available, weights)[0] if sum(weights) > 0 else "label"
        return self.query(class_name, kind, rng, extra)

    def query(
        self, class_name: str, kind: str, rng: random.Random, extra: Mapping[str, PromptPool] | None = None
    ) -> Query:
        """A query of a given kind (a random description from the pool)."""
        if kind == "label":
            return Query("label", label_question(class_name, rng), None)
        pool = self._pool(class_name, extra)
        if pool is None or not pool.has(kind):
            raise DataError(f"no '{kind}' descriptions for class {class_name!r}")
        texts = getattr(pool, kind)
        index = rng.randrange(len(texts))
        explanations = getattr(pool, f"{kind}_explanation")
        return Query(kind, reasoning_question(texts[index]), explanations[index] if explanations else None)

    def _pool(self, class_name: str, extra: Mapping[str, PromptPool] | None) -> PromptPool | None:
        name = class_name.lower()
        if extra and name in extra:
            return extra[name]
        return self.pools.get(name)
