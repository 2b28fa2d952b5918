"""``VolumeLoader``: the inference DataLoader, optionally loading the next volumes in worker processes.

With ``num_workers`` > 0 the next volume is read, reoriented and windowed in a worker while the
current one is inferred. A worker's exception reaches the main process only as its type and
traceback text (torch's ``ExceptionWrapper``), which would turn a bad file into a multi-line
"Caught RuntimeError in DataLoader worker process 0" instead of the one-line MediSee error
(:mod:`bundle.inference.errors`). So a worker hands a MediSee error back as data
(:class:`LoadFailure`), and the loader raises it in the main process, where it reads exactly as
without workers. Other exceptions (bugs) keep torch's report with the worker's traceback.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from monai.data import DataLoader
from torch.utils.data import Dataset, get_worker_info

from common.errors import ConfigError, MediSeeError, root_cause

VOLUMES_AHEAD = 1
"""Volumes each worker loads ahead (``prefetch_factor``): one already overlaps loading with
inference, and whole volumes are large (torch's default of 2 would hold one more in memory)."""


class WorkerTraceback(Exception):
    """The traceback text of an error raised in a loader worker (shown as its cause with ``--debug true``)."""


@dataclass
class LoadFailure:
    """A MediSee error raised while a worker loaded a volume, sent back in place of the volume.

    Attributes:
        error: the error (exceptions pickle as their type and message).
        trace: the worker's formatted traceback.
    """

    error: MediSeeError
    trace: str

    def reraise(self) -> None:
        """Raises the error in the calling (main) process."""
        raise self.error from WorkerTraceback(self.trace)


class FailuresAsData(Dataset):
    """Wraps a dataset so that, inside a worker process, a MediSee error becomes a :class:`LoadFailure`.

    In the main process (``num_workers`` 0) errors propagate unchanged.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        try:
            return self.dataset[index]
        except Exception as exc:
            cause = root_cause(exc)
            if cause is None or get_worker_info() is None:
                raise
            return LoadFailure(cause, traceback.format_exc())


def raise_failures(batch: Any) -> None:
    """Raises the first :class:`LoadFailure` of a batch (a list of entries with ``no_collation``)."""
    for item in batch if isinstance(batch, list) else [batch]:
        if isinstance(item, LoadFailure):
            item.reraise()


def check_num_workers(num_workers: Any) -> int:
    """The ``num_workers`` setting as a non-negative integer.

    Raises:
        ConfigError: naming config 'num_workers'.
    """
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
        raise ConfigError(
            f"config 'num_workers' must be a non-negative integer (0: load in the main process), got {num_workers!r}"
        )
    return num_workers


class VolumeLoader(DataLoader):
    """MONAI's DataLoader whose worker processes report MediSee errors as the main process would.

    Args:
        dataset: the preprocessing dataset (one volume per item).
        num_workers: worker processes loading volumes ahead; 0 loads each in the main process when needed.
        kwargs: other :class:`monai.data.DataLoader` arguments (``batch_size``, ``collate_fn`` ...).

    Raises:
        ConfigError: ``num_workers`` is not a non-negative integer.
    """

    def __init__(self, dataset: Dataset, num_workers: int = 0, **kwargs: Any) -> None:
        workers = check_num_workers(num_workers)
        if workers:
            kwargs.setdefault("prefetch_factor", VOLUMES_AHEAD)
        super().__init__(FailuresAsData(dataset), num_workers=workers, **kwargs)

    def __iter__(self) -> Iterator[Any]:
        for batch in super().__iter__():
            raise_failures(batch)
            yield batch
