"""The dataset contract shared by every reader: an image slice with up to K targets.

A sample is ``{"image": (1, H, W) float in [0, 1], "targets": [Target, ...], "source": str, ...}``.
In ``train`` mode item i is image i with up to ``max_targets`` of its targets, each with a query of
a randomly chosen kind. In ``eval`` mode every (image, target, kind) combination is one item with
one target, and questions are chosen deterministically, so metrics can be reported per kind.

With negatives (``negative_fraction`` > 0, :mod:`bundle.data.negatives`) each training target is,
at that rate, replaced by a question about a structure that is not on the image, and images
without any target are kept (their rows are all negatives); in ``eval`` mode each image adds
negatives at the same rate (at least one), chosen deterministically and asked every kind they have.
Readers need not know: the base class asks them only about their own targets.

With dialogue pools (:mod:`bundle.data.dialogues`) a training row, at ``dialogue_fraction``, goes on
into follow-up turns, each with its own target (the follow-up's label on this image, or a rejection
when it is not there): one conversation row, read once per turn. In ``eval`` mode each target with
follow-ups adds a dialogue per follow-up (its label question, then the follow-up, then one more when
the follow-up's target has follow-ups of its own); only the follow-up turns are read, so the single
questions are not counted twice.
"""

from __future__ import annotations

import random
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch.utils.data import Dataset

from bundle.data.dialogues import NOTHING, DialogueSampler, FollowUp
from bundle.data.negatives import LABEL, OTHER, Negative, NegativeSampler
from bundle.data.queries import PromptPool, Query, QuestionSampler
from bundle.prompts import QUERY_KINDS
from common.errors import ConfigError

MODES = ("train", "eval")


@dataclass
class Target:
    """One thing to segment in a sample.

    Attributes:
        mask: (H, W) bool ground-truth mask.
        class_name: the target's label name.
        query: the question asked about it.
        box: ground-truth normalised xyxy box when the dataset gives one; else it comes from the mask.
        read: whether the model is measured on this turn (False: a dialogue's first turn in ``eval``
            mode, which the single questions already measure).
    """

    mask: torch.Tensor
    class_name: str
    query: Query
    box: torch.Tensor | None = None
    read: bool = True

    @property
    def present(self) -> bool:
        """Whether the structure asked about is on the image (False: a negative, with an empty mask)."""
        return self.query.present


@dataclass
class TargetDialogue:
    """A dialogue about one image: a target per turn, asked in order in one conversation."""

    turns: list[Target]


def turns_of(row: Target | TargetDialogue) -> list[Target]:
    """The targets of a sample's row, in turn order (a single target is a one-turn row)."""
    return row.turns if isinstance(row, TargetDialogue) else [row]


Drawn = tuple[Hashable, str, Query]
"""One drawn turn: its target key (or a :class:`bundle.data.negatives.Negative`), class name and query."""


class TargetDataset(Dataset):
    """Base class: subclasses list images and their targets and load pixels on demand.

    Args:
        sampler: chooses questions (label templates and reasoning pools).
        max_targets: K, targets per image in ``train`` mode (paper: 3).
        mode: ``train`` or ``eval``.
        kinds: query kinds enumerated in ``eval`` mode (those a target has no descriptions for are skipped).
        seed: makes question choice reproducible; ``set_epoch`` varies it between epochs.
        negative_fraction: share of targets that are negative questions (0: none, the paper's setting).
        negatives: a :class:`bundle.data.negatives.NegativeSampler` with other settings (overrides
            ``negative_fraction``).
        dialogues: follow-up pools and how often training rows become dialogues
            (:class:`bundle.data.dialogues.DialogueSampler`); in ``eval`` mode, given, follow-ups are asked too.
    """

    def __init__(
        self,
        sampler: QuestionSampler | None = None,
        max_targets: int = 3,
        mode: str = "train",
        kinds: Sequence[str] = QUERY_KINDS,
        seed: int = 0,
        negative_fraction: float = 0.0,
        negatives: NegativeSampler | None = None,
        dialogues: DialogueSampler | None = None,
    ) -> None:
        if mode not in MODES:
            raise ConfigError(f"mode must be one of {MODES}, got {mode!r}")
        if max_targets < 1:
            raise ConfigError(f"max_targets must be >= 1, got {max_targets}")
        unknown = set(kinds) - set(QUERY_KINDS)
        if unknown:
            raise ConfigError(f"unknown query kinds {sorted(unknown)}; known: {QUERY_KINDS}")
        self.sampler = sampler or QuestionSampler()
        self.max_targets = max_targets
        self.mode = mode
        self.kinds = list(kinds)
        self.seed = seed
        self.epoch = 0
        self.negatives = negatives if negatives is not None else NegativeSampler(negative_fraction)
        self.dialogues = dialogues
        self.label_set: list[str] = []
        self._items: list[tuple[Hashable, list[Hashable], str | None, tuple[FollowUp, ...]]] = []
        self._present: dict[Hashable, dict[str, Hashable]] = {}

    # -- what subclasses provide ---------------------------------------------------------------
    def load_image(self, image_key: Hashable) -> torch.Tensor:
        """(1, H, W) float image in [0, 1]."""
        raise NotImplementedError

    def load_mask(self, image_key: Hashable, target_key: Hashable, shape: tuple[int, int]) -> torch.Tensor:
        """(H, W) bool mask of one target; ``shape`` is its image's (H, W), for checking."""
        raise NotImplementedError

    def class_name(self, image_key: Hashable, target_key: Hashable) -> str:
        """Label name of one target."""
        raise NotImplementedError

    def entry_pools(self, image_key: Hashable) -> Mapping[str, PromptPool] | None:
        """Per-image prompt pools (take precedence over the dataset's), if any."""
        return None

    def entry_dialogues(self, image_key: Hashable) -> Mapping[str, Sequence[FollowUp]] | None:
        """Per-image follow-up pools (take precedence over the dataset's), if any."""
        return None

    def given_box(self, image_key: Hashable, target_key: Hashable) -> torch.Tensor | None:
        """A ground-truth box the dataset provides, if any."""
        return None

    def source(self, image_key: Hashable) -> str:
        """A readable name of the image (file, slice) for logs and outputs."""
        return str(image_key)

    def dataset_labels(self) -> Sequence[str] | None:
        """The dataset's label set (names), negatives are drawn from; None: the names its targets carry."""
        return None

    # -- indexing -------------------------------------------------------------------------------
    def index_images(self, images: Sequence[tuple[Hashable, Sequence[Hashable]]]) -> None:
        """Builds the item list from ``(image_key, target_keys)`` pairs (called by subclasses).

        Images without targets are kept only when negatives are asked (their questions are all negatives).
        """
        images = [(key, list(targets)) for key, targets in images if targets or self.negatives.enabled]
        self._present = {key: {self.class_name(key, t): t for t in targets} for key, targets in images}
        labels = self.dataset_labels()
        self.label_set = sorted(set(labels) if labels is not None else set().union(*self._present.values()))
        self._items = []
        for position, (image_key, targets) in enumerate(images):
            if self.mode == "train":
                self._items.append((image_key, targets, None, ()))
                continue
            extra = self.entry_pools(image_key)
            for target in targets:
                available = self.sampler.kinds_for(self.class_name(image_key, target), extra)
                self._items += [(image_key, [target], kind, ()) for kind in self.kinds if kind in available]
            self._items += self._eval_negatives(position, image_key, len(targets), extra)
            self._items += self._eval_dialogues(position, image_key, targets)

    def _eval_negatives(
        self, position: int, image_key: Hashable, positives: int, extra: Mapping[str, PromptPool] | None
    ) -> list[tuple[Hashable, list[Hashable], str]]:
        """The negative items of one image in eval mode: chosen by (seed, position), each asked every kind it has."""
        rng = random.Random(f"{self.seed}/negatives/{position}")
        items = []
        for _ in range(self.negatives.per_image(positives)):
            negative = self.negatives.choose(self.label_set, self._present[image_key], rng)
            available = self.negatives.kinds_for(negative, self.sampler, extra)
            items += [(image_key, [negative], kind, ()) for kind in self.kinds if kind in available]
        return items

    def _eval_dialogues(self, position: int, image_key: Hashable, targets: list[Hashable]) -> list[tuple]:
        """The dialogue items of one image in eval mode: each target's label question, then each of its
        follow-ups (and, when that one's target has follow-ups, one more, chosen by (seed, position))."""
        if self.dialogues is None:
            return []
        extra = self.entry_dialogues(image_key)
        items = []
        for target in targets:
            key = f"{self.seed}/dialogues/{position}"
            for chain, _ in self.dialogues.eval_chains(self.class_name(image_key, target), key, extra):
                items.append((image_key, [target], "label", tuple(chain)))
        return items

    def set_epoch(self, epoch: int) -> None:
        """Varies the random target and question choice between epochs (train mode)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self._items)

    def counts(self) -> dict[str, int]:
        """What the dataset holds, for a person: ``images`` (slices) with questions and ``questions`` (items)."""
        counts = {"images": len({item[0] for item in self._items}), "questions": len(self._items)}
        dialogues = sum(1 for item in self._items if item[3])
        return counts | ({"dialogues": dialogues} if dialogues else {})

    def draw(self, index: int) -> tuple[Hashable, list[list[Drawn]]]:
        """Item ``index``'s image key and its rows at this epoch, without pixels: per row, the
        (target key, class name, query) of each turn (one turn, or a dialogue's).

        The choice depends only on (seed, epoch, index), so a batch sampler can read the questions
        (and so the conversation lengths) before the item is loaded, and gets what ``__getitem__`` returns.
        """
        image_key, targets, kind, chain = self._items[index]
        epoch = self.epoch if self.mode == "train" else 0
        rng = random.Random(f"{self.seed}/{epoch}/{index}")
        if self.mode == "train" and len(targets) > self.max_targets:
            targets = rng.sample(targets, self.max_targets)
        if self.mode == "train" and self.negatives.enabled:
            targets = self._with_negatives(image_key, targets, rng)
        extra = self.entry_pools(image_key)
        rows = []
        for target in targets:
            if isinstance(target, Negative):
                first = (target, target.class_name, self.negatives.query(target, self.sampler, rng, extra, kind))
            else:
                name = self.class_name(image_key, target)
                query = (
                    self.sampler.sample(name, rng, extra)
                    if kind is None
                    else self.sampler.query(name, kind, rng, extra)
                )
                first = (target, name, query)
            rows.append([first, *self._follow_up_turns(image_key, first[1], chain, rng)])
        return image_key, rows

    def _follow_up_turns(
        self, image_key: Hashable, class_name: str, chain: tuple[FollowUp, ...], rng: random.Random
    ) -> list[Drawn]:
        """The follow-up turns after a first turn about ``class_name``: ``chain`` (eval), or drawn (train)."""
        if self.dialogues is None:
            return []
        extra = self.entry_dialogues(image_key)
        if self.mode == "train":
            chain = (
                tuple(self.dialogues.chain(class_name, rng, extra))
                if self.dialogues.continues(class_name, rng, extra)
                else ()
            )
        present = self._present[image_key]
        turns = []
        for follow_up in chain:
            if follow_up.target is None:
                turns.append((Negative(NOTHING, OTHER), NOTHING, follow_up.query(False)))
            elif follow_up.target in present:
                turns.append((present[follow_up.target], follow_up.target, follow_up.query(True)))
            else:
                turns.append((Negative(follow_up.target, LABEL), follow_up.target, follow_up.query(False)))
        return turns

    def _with_negatives(self, image_key: Hashable, targets: list[Hashable], rng: random.Random) -> list[Hashable]:
        """Training targets, each replaced at ``negative_fraction`` by a negative (an image without targets
        gets one negative)."""
        present = self._present[image_key]
        return [
            self.negatives.choose(self.label_set, present, rng)
            if t is None or rng.random() < self.negatives.fraction
            else t
            for t in (targets or [None])
        ]

    def __getitem__(self, index: int) -> dict:
        image_key, rows = self.draw(index)
        image = self.load_image(image_key)
        shape = tuple(image.shape[-2:])
        out = []
        follow_up_item = self.mode == "eval" and bool(self._items[index][3])
        for row in rows:
            turns = [self._target(image_key, drawn, shape) for drawn in row]
            if len(turns) == 1:
                out.append(turns[0])
                continue
            # the single questions measure an eval dialogue's first turn already
            turns[0].read = turns[0].read and not follow_up_item
            out.append(TargetDialogue(turns))
        return {"image": image, "targets": out, "source": self.source(image_key)}

    def _target(self, image_key: Hashable, drawn: Drawn, shape: tuple[int, int]) -> Target:
        target, name, query = drawn
        if isinstance(target, Negative) or query.answer is not None:
            # a negative's target is empty; a text-only turn has none and is not read
            return Target(torch.zeros(shape, dtype=torch.bool), name, query, read=query.answer is None)
        mask = self.load_mask(image_key, target, shape)
        return Target(mask, name, query, self.given_box(image_key, target))
