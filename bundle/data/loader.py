"""A training loader that can fast-forward: a resumed run sees the rest of its interrupted epoch.

Ignite resumes a run mid-epoch by counting from the saved iteration, but it draws the epoch's
batches from a fresh loader iterator: the first batches of a new order, not the rest of the old
one. :class:`ResumableDataLoader` is torch's ``DataLoader`` with one addition: told to skip the
first ``n`` batches of its next pass (:meth:`FastForwardBatchSampler.skip_next`), it walks its
sampler past them without loading them (no image is read), so worker processes, if any, only ever
receive the batches still to come. Replayed from the epoch's random state, the sampler then
yields exactly the interrupted epoch's remaining batches (:class:`bundle.engines.TrainingCheckpoint`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, Sampler, SequentialSampler


class FastForwardBatchSampler(Sampler[list[int]]):
    """Batches of ``batch_sampler``, of which the next pass may skip the first few.

    Args:
        batch_sampler: yields the batches (a ``BatchSampler``, a length-grouped sampler ...).
    """

    def __init__(self, batch_sampler: Sampler[list[int]]) -> None:
        self.batch_sampler = batch_sampler
        self._skip = 0
        self._then: Callable[[], None] | None = None

    def __len__(self) -> int:
        return len(self.batch_sampler)

    def set_epoch(self, epoch: int) -> None:
        """Passes the epoch on to the wrapped sampler, when it takes one."""
        if hasattr(self.batch_sampler, "set_epoch"):
            self.batch_sampler.set_epoch(epoch)

    def skip_next(self, batches: int, then: Callable[[], None] | None = None) -> None:
        """Makes the next pass skip its first ``batches`` batches, then call ``then`` before the first one it yields.

        ``then`` runs after the skipped batches were drawn (their random draws done) and before
        the first remaining batch is loaded: where a resumed run restores its random state.
        """
        self._skip, self._then = int(batches), then

    def __iter__(self) -> Iterator[list[int]]:
        skip, then = self._skip, self._then
        self._skip, self._then = 0, None
        batches = iter(self.batch_sampler)
        for _ in range(skip):
            next(batches, None)
        if then is not None:
            then()
        yield from batches


class ResumableDataLoader(DataLoader):
    """torch's ``DataLoader`` (same arguments) whose batches go through a :class:`FastForwardBatchSampler`.

    Without a fast-forward it yields what the plain ``DataLoader`` yields, batch for batch and
    random draw for random draw (the same samplers, made the same way).

    Args:
        dataset: the dataset.
        batch_size: items per batch (with ``batch_sampler``: must be 1, as for torch).
        shuffle: draw a new random order each pass (``RandomSampler``).
        sampler: draws the indices (e.g. ``DistributedSampler``); excludes ``shuffle``.
        batch_sampler: draws whole batches; excludes ``batch_size``, ``shuffle``, ``sampler``, ``drop_last``.
        drop_last: drop the last, incomplete batch.
        generator: the random generator of the default ``RandomSampler``.
        kwargs: other ``DataLoader`` arguments (``num_workers``, ``collate_fn``, ``pin_memory`` ...).
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int | None = 1,
        shuffle: bool | None = None,
        sampler: Sampler | None = None,
        batch_sampler: Sampler[list[int]] | None = None,
        drop_last: bool = False,
        generator: Any = None,
        **kwargs: Any,
    ) -> None:
        if batch_sampler is None:
            if sampler is not None and shuffle:
                raise ValueError("sampler option is mutually exclusive with shuffle")
            if sampler is None:
                sampler = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        elif batch_size != 1 or shuffle or sampler is not None or drop_last:
            raise ValueError(
                "batch_sampler option is mutually exclusive with batch_size, shuffle, sampler, and drop_last"
            )
        super().__init__(dataset, batch_sampler=FastForwardBatchSampler(batch_sampler), generator=generator, **kwargs)
