"""Negative questions: about a structure that is not on the image, so that the model learns to say so.

The paper (2D) trains and evaluates only images that hold the target; a volume is mostly slices
that do not. A negative asks, for a share of targets (``negative_fraction``), about a structure
absent from the image: usually a label of the dataset's own label set that is not on this image,
asked as a label, short or long question like the positives; less often (``other_fraction`` of the
negatives) a structure outside the label set, or a request that names nothing to segment. Its
mask is empty, it has no box, and its answer is the rejection token with a sentence saying what
is not visible.

Structures outside the label set must be ones the images cannot show: a structure that is on the
image but merely not labelled would teach the model to deny what it sees. The defaults suit
abdominal CT (and the phantoms); give your own for other fields of view.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bundle.data.queries import PromptPool, Query, QuestionSampler
from bundle.prompts import absence_explanation, label_question
from common.errors import ConfigError

DEFAULT_NEGATIVE_FRACTION = 0.25
"""Share of training targets that are negatives in the bundle's configs (``negative_fraction``)."""
DEFAULT_OTHER_FRACTION = 0.2
"""Share of negatives about something outside the dataset's label set."""
DEFAULT_UNRELATED_FRACTION = 0.25
"""Share of those outside-the-label-set negatives that are requests naming nothing to segment."""
DEFAULT_OTHER_STRUCTURES = (
    "heart",
    "left lung",
    "right lung",
    "brain",
    "thyroid gland",
    "urinary bladder",
    "prostate",
    "uterus",
    "trachea",
    "femoral head",
)
"""Anatomy outside an abdominal scan's field of view (at the level of the kidneys)."""
DEFAULT_UNRELATED_REQUESTS = (
    "What is the weather like today?",
    "Please translate this sentence into French.",
    "Write a short poem about the sea.",
    "How many minutes are there in a day?",
)
"""Requests that name nothing to segment."""

LABEL, OTHER, UNRELATED = "label", "other", "unrelated"
SOURCES = (LABEL, OTHER, UNRELATED)


@dataclass(frozen=True)
class Negative:
    """The target key of a negative question.

    Attributes:
        name: the structure asked about (a label, or anatomy outside the label set), or the request text.
        source: ``label`` (an absent label of the dataset), ``other`` (outside the label set) or
            ``unrelated`` (a request that names nothing to segment).
    """

    name: str
    source: str = LABEL

    @property
    def class_name(self) -> str:
        """The name metrics and logs use (the request's own text names no class)."""
        return "unrelated request" if self.source == UNRELATED else self.name


class NegativeSampler:
    """Chooses negative questions for an image.

    Args:
        fraction: share of targets that are negatives (0 = none, the paper's setting).
        other_fraction: share of negatives outside the label set (anatomy or unrelated requests).
        unrelated_fraction: share of those that are unrelated requests rather than anatomy.
        other_structures: anatomy the images cannot show; names of the label set are left out.
        unrelated_requests: requests that name nothing to segment.
    """

    def __init__(
        self,
        fraction: float = 0.0,
        other_fraction: float = DEFAULT_OTHER_FRACTION,
        unrelated_fraction: float = DEFAULT_UNRELATED_FRACTION,
        other_structures: Sequence[str] = DEFAULT_OTHER_STRUCTURES,
        unrelated_requests: Sequence[str] = DEFAULT_UNRELATED_REQUESTS,
    ) -> None:
        if not 0.0 <= float(fraction) < 1.0:
            raise ConfigError(f"config 'negative_fraction' must be in [0, 1), got {fraction!r}")
        for key, value in (("other_fraction", other_fraction), ("unrelated_fraction", unrelated_fraction)):
            if not 0.0 <= float(value) <= 1.0:
                raise ConfigError(f"negative sampler '{key}' must be in [0, 1], got {value!r}")
        self.fraction = float(fraction)
        self.other_fraction = float(other_fraction)
        self.unrelated_fraction = float(unrelated_fraction)
        self.other_structures = [str(s).lower() for s in other_structures]
        self.unrelated_requests = [str(s) for s in unrelated_requests]

    @property
    def enabled(self) -> bool:
        """Whether any negatives are asked."""
        return self.fraction > 0

    def per_image(self, positives: int) -> int:
        """Negatives asked per image in evaluation: the training share applied to its ``positives``
        (at least one, so that images without any target are asked about something)."""
        if not self.enabled:
            return 0
        if positives == 0:
            return 1
        return max(1, round(positives * self.fraction / (1.0 - self.fraction)))

    def choose(self, label_set: Sequence[str], present: set[str], rng: random.Random) -> Negative:
        """One negative for an image holding the labels ``present`` (names) of ``label_set``."""
        absent = [name for name in label_set if name not in present]
        outside = [name for name in self.other_structures if name not in label_set]
        if absent and (not (outside or self.unrelated_requests) or rng.random() >= self.other_fraction):
            return Negative(rng.choice(absent), LABEL)
        if self.unrelated_requests and (not outside or rng.random() < self.unrelated_fraction):
            return Negative(rng.choice(self.unrelated_requests), UNRELATED)
        if not outside:
            raise ConfigError("no structure is absent from this image and no other structures are configured")
        return Negative(rng.choice(outside), OTHER)

    @staticmethod
    def kinds_for(negative: Negative, sampler: QuestionSampler, extra: Mapping[str, PromptPool] | None) -> list[str]:
        """The query kinds a negative can be asked as (reasoning kinds for dataset labels with pools)."""
        return sampler.kinds_for(negative.name, extra) if negative.source == LABEL else ["label"]

    @staticmethod
    def query(
        negative: Negative,
        sampler: QuestionSampler,
        rng: random.Random,
        extra: Mapping[str, PromptPool] | None,
        kind: str | None = None,
    ) -> Query:
        """The question about ``negative``, of ``kind`` (None: drawn like a positive's), with its answer's sentence."""
        if negative.source == UNRELATED:
            return Query("label", negative.name, absence_explanation(None, "label"), present=False)
        if negative.source == OTHER:
            return Query(
                "label", label_question(negative.name, rng), absence_explanation(negative.name, "label"), False
            )
        asked = (
            sampler.sample(negative.name, rng, extra)
            if kind is None
            else sampler.query(negative.name, kind, rng, extra)
        )
        return Query(asked.kind, asked.question, absence_explanation(negative.name, asked.kind), present=False)
