"""A ratio of sums split by query kind and by dialogue turn, accumulated so that it is exact under DDP."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import torch
from ignite.engine import Engine
from ignite.exceptions import NotComputableError
from ignite.metrics import Metric
from ignite.metrics.metric import reinit__is_reduced, sync_all_reduce

from bundle.prompts import MAX_TURNS, QUERY_KINDS

CPU = torch.device("cpu")
"""Where metric sums live by default (ignite's default device)."""

RowTerms = tuple[torch.Tensor, torch.Tensor]
"""(B,) numerators and (B,) denominators of a batch."""


def metric_key(name: str, kind: str) -> str:
    """Key of a metric's value on one query kind, e.g. ``dice_long``."""
    return f"{name}_{kind}"


def turn_key(name: str, turn: int) -> str:
    """Key of a metric's value on the readings of one dialogue turn, e.g. ``dice_turn2``."""
    return f"{name}_turn{turn}"


def turn_indices(turns: Sequence[int], device: torch.device) -> torch.Tensor:
    """0-based slots of 1-based turn numbers as a (B,) long tensor.

    Raises:
        ValueError: a turn is below 1 or past ``MAX_TURNS``.
    """
    bad = sorted({int(t) for t in turns if not 1 <= int(t) <= MAX_TURNS})
    if bad:
        raise ValueError(f"turn numbers must be from 1 to {MAX_TURNS}, got {bad}")
    return torch.tensor([int(t) - 1 for t in turns], dtype=torch.long, device=device)


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
    """sum(numerator) / sum(denominator) over rows, overall, per query kind and per dialogue turn.

    Subclasses give each row a numerator and a denominator (:meth:`row_terms`): a per-target
    score and 1 for averages, or intersection and union for cIoU. Only sums are kept, one slot
    per kind, so shards merge by addition: ``compute`` all-reduces them (``sync_all_reduce``)
    and gives the same value on every rank as one process that saw all the data.

    The output dict is read through ``required_output_keys``; ``kinds`` and ``turns`` (each row's turn
    number, 1 for a single question) must be the last two. Per-turn values are reported once a
    follow-up (turn 2 or later) was seen, so that follow-ups are measured apart from first questions.

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
        # one slot per kind, then one per turn
        size = (len(QUERY_KINDS) + MAX_TURNS,)
        self._numerators = torch.zeros(size, dtype=self._double_dtype, device=self._device)
        self._denominators = torch.zeros(size, dtype=self._double_dtype, device=self._device)
        self._rows = torch.zeros(size, dtype=self._double_dtype, device=self._device)

    @reinit__is_reduced
    def update(self, output: Sequence[Any]) -> None:
        """Adds one batch: the values of ``required_output_keys`` in order.

        Raises:
            ValueError: ``kinds`` or ``turns`` does not hold one value per row, or names an unknown kind
                or turn.
        """
        *values, kinds, turns = output
        numerators, denominators = self.row_terms(*values)
        if len(kinds) != numerators.shape[0] or len(turns) != numerators.shape[0]:
            raise ValueError(f"got {len(kinds)} query kinds and {len(turns)} turns for {numerators.shape[0]} rows")
        numerators = numerators.to(self._device, self._double_dtype)
        denominators = denominators.to(self._device, self._double_dtype)
        for index in (kind_indices(kinds, self._device), len(QUERY_KINDS) + turn_indices(turns, self._device)):
            self._numerators.index_add_(0, index, numerators)
            self._denominators.index_add_(0, index, denominators)
            self._rows.index_add_(0, index, torch.ones_like(index, dtype=self._double_dtype))

    @sync_all_reduce("_numerators", "_denominators", "_rows")
    def compute(self) -> dict[str, float]:
        """The overall value under ``name``, one per kind seen under ``name_<kind>`` and, when a follow-up
        was seen, one per turn under ``name_turn<k>``.

        Raises:
            NotComputableError: nothing was seen, or nothing that gives a value (no valid box).
        """
        kinds = slice(0, len(QUERY_KINDS))
        overall = self._ratio(self._numerators[kinds].sum(), self._denominators[kinds].sum(), self._rows[kinds].sum())
        if overall is None:
            raise NotComputableError(f"{type(self).__name__} needs at least one example with a value before compute()")
        result = {self.name: overall}
        for i, kind in enumerate(QUERY_KINDS):
            value = self._ratio(self._numerators[i], self._denominators[i], self._rows[i])
            if value is not None:
                result[metric_key(self.name, kind)] = value
        turn_rows = self._rows[len(QUERY_KINDS) :]
        if bool((turn_rows[1:] > 0).any()):
            for k in range(MAX_TURNS):
                i = len(QUERY_KINDS) + k
                value = self._ratio(self._numerators[i], self._denominators[i], self._rows[i])
                if value is not None:
                    result[turn_key(self.name, k + 1)] = value
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
