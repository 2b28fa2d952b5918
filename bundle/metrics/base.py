"""A ratio of sums split by query kind, accumulated so that it is exact under DDP."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import torch
from ignite.engine import Engine
from ignite.exceptions import NotComputableError
from ignite.metrics import Metric
from ignite.metrics.metric import reinit__is_reduced, sync_all_reduce

from bundle.prompts import QUERY_KINDS

CPU = torch.device("cpu")
"""Where metric sums live by default (ignite's default device)."""

RowTerms = tuple[torch.Tensor, torch.Tensor]
"""(B,) numerators and (B,) denominators of a batch."""


def metric_key(name: str, kind: str) -> str:
    """Key of a metric's value on one query kind, e.g. ``dice_long``."""
    return f"{name}_{kind}"


def kind_indices(kinds: Sequence[str], device: torch.device) -> torch.Tensor:
    """Positions of ``kinds`` in ``QUERY_KINDS`` as a (B,) long tensor.

    Raises:
        ValueError: a kind is not one of ``QUERY_KINDS``.
    """
    unknown = sorted(set(kinds) - set(QUERY_KINDS))
    if unknown:
        raise ValueError(f"unknown query kinds {unknown}; expected one of {list(QUERY_KINDS)}")
    return torch.tensor([QUERY_KINDS.index(k) for k in kinds], dtype=torch.long, device=device)


class KindSplitRatio(Metric):
    """sum(numerator) / sum(denominator) over rows, overall and per query kind.

    Subclasses give each row a numerator and a denominator (:meth:`row_terms`): a per-target
    score and 1 for averages, or intersection and union for cIoU. Only sums are kept, one slot
    per kind, so shards merge by addition: ``compute`` all-reduces them (``sync_all_reduce``)
    and gives the same value on every rank as one process that saw all the data.

    The output dict is read through ``required_output_keys``; ``kinds`` must be the last one.

    Args:
        output_transform: maps the engine output to the dict this metric reads (default: identity).
        device: where the sums live; under NCCL it must be the rank's CUDA device.
    """

    name: ClassVar[str]
    """Base name of the result keys."""
    empty_value: ClassVar[float | None] = None
    """Value when rows were seen but the denominator is zero; None = no value (key omitted)."""

    def __init__(self, output_transform: Callable = lambda x: x, device: str | torch.device = CPU) -> None:
        # skip_unrolling: the outputs are dicts of lists, never (y_pred, y) pairs to iterate over
        super().__init__(output_transform, device=device, skip_unrolling=True)

    @abstractmethod
    def row_terms(self, *values: Any) -> RowTerms:
        """(B,) numerators and (B,) denominators of a batch (the outputs before ``kinds``)."""

    @reinit__is_reduced
    def reset(self) -> None:
        """Zeroes the per-kind sums."""
        size = (len(QUERY_KINDS),)
        self._numerators = torch.zeros(size, dtype=self._double_dtype, device=self._device)
        self._denominators = torch.zeros(size, dtype=self._double_dtype, device=self._device)
        self._rows = torch.zeros(size, dtype=self._double_dtype, device=self._device)

    @reinit__is_reduced
    def update(self, output: Sequence[Any]) -> None:
        """Adds one batch: the values of ``required_output_keys`` in order.

        Raises:
            ValueError: ``kinds`` does not hold one kind per row, or names an unknown kind.
        """
        *values, kinds = output
        numerators, denominators = self.row_terms(*values)
        if len(kinds) != numerators.shape[0]:
            raise ValueError(f"got {len(kinds)} query kinds for {numerators.shape[0]} rows")
        index = kind_indices(kinds, self._device)
        self._numerators.index_add_(0, index, numerators.to(self._device, self._double_dtype))
        self._denominators.index_add_(0, index, denominators.to(self._device, self._double_dtype))
        self._rows.index_add_(0, index, torch.ones_like(index, dtype=self._double_dtype))

    @sync_all_reduce("_numerators", "_denominators", "_rows")
    def compute(self) -> dict[str, float]:
        """The overall value under ``name`` and one per kind seen under ``name_<kind>``.

        Raises:
            NotComputableError: nothing was seen, or nothing that gives a value (no valid box).
        """
        overall = self._ratio(self._numerators.sum(), self._denominators.sum(), self._rows.sum())
        if overall is None:
            raise NotComputableError(f"{type(self).__name__} needs at least one example with a value before compute()")
        result = {self.name: overall}
        for i, kind in enumerate(QUERY_KINDS):
            value = self._ratio(self._numerators[i], self._denominators[i], self._rows[i])
            if value is not None:
                result[metric_key(self.name, kind)] = value
        return result

    def completed(self, engine: Engine, name: str) -> None:
        """Stores every key of :meth:`compute` in ``engine.state.metrics`` and the overall value under ``name``.

        Ignite would store the whole dict under ``name``; a scalar there is what MONAI's key
        metric (best-metric tracking, checkpoint scores) and the stats handlers need, and it lets
        ``name`` be anything, even the base name itself.
        """
        result = self.compute()
        engine.state.metrics.update(result)
        engine.state.metrics[name] = result[self.name]

    def _ratio(self, numerator: torch.Tensor, denominator: torch.Tensor, rows: torch.Tensor) -> float | None:
        """numerator / denominator; ``empty_value`` if rows were seen with a zero denominator."""
        if rows.item() == 0:
            return None
        if denominator.item() == 0:
            return self.empty_value
        return (numerator / denominator).item()
