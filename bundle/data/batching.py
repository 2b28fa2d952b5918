"""Length-grouped batches (a training lever): rows of similar length share a batch, so less padding.

Rows are padded to the longest in their batch. With explanations, conversation lengths vary
a lot (from the bare answer to several sentences), and on the phantom data about a third of the
padded tokens of randomly drawn batches are padding: compute the language model spends for
nothing. Grouping draws indices as usual, takes them ``group_batches`` batches at a time, sorts
each group by conversation length and cuts it into batches; the batches are then shuffled, so
the order of lengths carries no pattern. Each epoch still sees every drawn index once.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Callable, Iterator

from torch.utils.data import ConcatDataset, Dataset, Sampler

from bundle.data.base import TargetDataset
from bundle.data.collate import training_conversation
from bundle.prompts import PromptBuilder
from common.errors import ConfigError


class ConversationLengths:
    """Token length of an item's longest conversation row, read before the item is loaded.

    Args:
        dataset: a :class:`bundle.data.TargetDataset` in ``train`` mode, or a ``ConcatDataset`` of them.
        prompts: the tokenizer side of the model (the same conversations the collate builds).
    """

    def __init__(self, dataset: Dataset, prompts: PromptBuilder) -> None:
        parts = dataset.datasets if isinstance(dataset, ConcatDataset) else [dataset]
        if not all(isinstance(part, TargetDataset) for part in parts):
            raise ConfigError("length grouping needs a bundle.data.TargetDataset (or a ConcatDataset of them)")
        self.parts = list(parts)
        self.offsets = list(dataset.cumulative_sizes) if isinstance(dataset, ConcatDataset) else [len(dataset)]
        self.prompts = prompts

    def __call__(self, index: int) -> int:
        part = bisect.bisect_right(self.offsets, index)
        local = index - (self.offsets[part - 1] if part else 0)
        _, drawn = self.parts[part].draw(local)
        rows = [training_conversation(self.prompts, [query for _, _, query in row]) for row in drawn]
        return max(len(row.input_ids) for row in rows)


class LengthGroupedBatchSampler(Sampler[list[int]]):
    """Batches of indices from ``sampler``, grouped by length ``group_batches`` batches at a time.

    Args:
        sampler: draws the epoch's indices (``RandomSampler``, ``DistributedSampler``, a mixing sampler).
        lengths: index -> length (:class:`ConversationLengths`).
        batch_size: indices per batch.
        group_batches: batches sorted together (>= 2; larger groups pad less but mix lengths less).
        seed: seeds the shuffle of the batch order, varied by :meth:`set_epoch`.
    """

    def __init__(
        self, sampler: Sampler[int], lengths: Callable[[int], int], batch_size: int, group_batches: int, seed: int = 0
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"config 'batch_size' must be >= 1, got {batch_size}")
        if group_batches < 2:
            raise ConfigError(f"config 'length_grouping' must be >= 2 batches per group (0 = off), got {group_batches}")
        self.sampler = sampler
        self.lengths = lengths
        self.batch_size = batch_size
        self.group_batches = group_batches
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Varies the batch order between epochs (and passes the epoch on to the index sampler)."""
        self.epoch = epoch
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return math.ceil(len(self.sampler) / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        indices = list(self.sampler)
        group = self.batch_size * self.group_batches
        batches = []
        for start in range(0, len(indices), group):
            chunk = sorted(indices[start : start + group], key=self.lengths)
            batches += [chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size)]
        random.Random(f"{self.seed}/{self.epoch}").shuffle(batches)
        return iter(batches)
