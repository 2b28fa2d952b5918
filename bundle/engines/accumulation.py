"""Gradient accumulation: a data loader's batches grouped into one optimizer step each.

With ``gradient_accumulation_steps`` K, one Ignite iteration of :class:`bundle.engines.MediSeeTrainer`
is one optimizer step over K consecutive micro-batches of the loader. Everything that counts
iterations therefore counts optimizer steps: the learning-rate schedule (``LrScheduleHandler``),
``save_interval``, the checkpoint names and resuming, the progress bar. The paper's rig reached its
effective batch (15 per GPU on 4 GPUs, accumulated 10 times in the released code) the same way.

MONAI's ``SupervisedTrainer(accumulation_steps=...)`` is not used: its iterations stay
micro-batches, so every iteration-based handler would count micro-batches, and it keeps DDP's
gradient all-reduce on every micro-batch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sized

from torch import nn
from torch.nn.parallel import DistributedDataParallel

from common.errors import ConfigError


def check_accumulation_steps(steps: int) -> int:
    """``steps`` if it is a whole number >= 1; else a ConfigError naming the config key."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"config 'gradient_accumulation_steps' must be a whole number >= 1, got {steps!r}")
    return steps


def optimizer_steps(batches: int | Sized, accumulation_steps: int) -> int:
    """Optimizer steps in one pass over ``batches`` micro-batches (a count or a sized loader).

    A last, incomplete group still makes a step (nothing is dropped), so this rounds up.
    """
    count = batches if isinstance(batches, int) else len(batches)
    return -(-count // check_accumulation_steps(accumulation_steps))


class MicroBatches:
    """The batches of ``loader`` in lists of ``accumulation_steps``, one list per optimizer step.

    The last list of a pass holds what is left (fewer batches when the loader's length is not a
    multiple); its step averages over the batches it has.

    Args:
        loader: the training data loader (its batches are the micro-batches).
        accumulation_steps: micro-batches per optimizer step (K).
    """

    def __init__(self, loader: Iterable, accumulation_steps: int) -> None:
        self.loader = loader
        self.accumulation_steps = check_accumulation_steps(accumulation_steps)

    def __iter__(self) -> Iterator[list]:
        group: list = []
        for batch in self.loader:
            group.append(batch)
            if len(group) == self.accumulation_steps:
                yield group
                group = []
        if group:
            yield group

    def __len__(self) -> int:
        return optimizer_steps(self.loader, self.accumulation_steps)


def gradient_sync(network: nn.Module, synchronise: bool) -> contextlib.AbstractContextManager:
    """DDP's ``no_sync()`` unless ``synchronise``: gradients are all-reduced only in the last micro-step.

    Gradients accumulate locally in the earlier micro-steps; the last backward all-reduces the sum.
    Outside DDP (one process) nothing changes.
    """
    if isinstance(network, DistributedDataParallel) and not synchronise:
        return network.no_sync()
    return contextlib.nullcontext()
