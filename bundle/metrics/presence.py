"""Presence metrics: does a row's (gated) mask say the target is there, when it is and when it is not?

A row is *reported present* when its predicted mask is not empty (after the presence gate, as a user
sees it); it *is* present when the structure asked about is on the image (``present``). Precision,
recall and F1 are ratios of sums of true/false positives, so they reduce exactly under DDP and
split by query kind like the mask and box metrics. ``negatives_with_mask`` is the share of rows
about an absent structure that still got a mask: the spurious findings a user would see.
"""

from __future__ import annotations

import torch
from ignite.engine import Engine
from ignite.exceptions import NotComputableError

from bundle.metrics.base import KindSplitRatio, RowTerms
from bundle.metrics.masks import MaskList

PRESENCE_KEYS = ("pred_masks", "present", "kinds", "turns")


class PresenceMetric(KindSplitRatio):
    """A presence ratio that may have no value (e.g. no negative rows in a split): then it reports nothing
    instead of failing the run, since the mask and box metrics of that run are still worth having."""

    def compute(self) -> dict[str, float]:
        """As :meth:`KindSplitRatio.compute`, or ``{}`` when no row gives a value."""
        try:
            return super().compute()
        except NotComputableError:
            return {}

    def completed(self, engine: Engine, name: str) -> None:
        """Stores the values, when there are any."""
        result = self.compute()
        engine.state.metrics.update(result)
        if self.name in result:
            engine.state.metrics[name] = result[self.name]


def reported_and_true(pred_masks: MaskList, present: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B,) float64 indicators: the mask is not empty, and the target is on the image."""
    reported = torch.stack([(m > 0).any() for m in pred_masks]).double() if len(pred_masks) else torch.zeros(0)
    truth = torch.as_tensor(present, dtype=torch.bool).to(reported.device).double()
    return reported, truth


class PresencePrecision(PresenceMetric):
    """Of the rows reported present, the share whose target is on the image."""

    name = "presence_precision"
    required_output_keys = PRESENCE_KEYS

    def row_terms(self, pred_masks: MaskList, present: torch.Tensor) -> RowTerms:
        """True positives over reported positives."""
        reported, truth = reported_and_true(pred_masks, present)
        return reported * truth, reported


class PresenceRecall(PresenceMetric):
    """Of the rows whose target is on the image, the share reported present."""

    name = "presence_recall"
    required_output_keys = PRESENCE_KEYS

    def row_terms(self, pred_masks: MaskList, present: torch.Tensor) -> RowTerms:
        """True positives over actual positives."""
        reported, truth = reported_and_true(pred_masks, present)
        return reported * truth, truth


class PresenceF1(PresenceMetric):
    """F1 of the presence decision: 2 TP / (2 TP + FP + FN)."""

    name = "presence_f1"
    required_output_keys = PRESENCE_KEYS

    def row_terms(self, pred_masks: MaskList, present: torch.Tensor) -> RowTerms:
        """2 TP over 2 TP + FP + FN (TP + TP + FP + FN = reported + truth)."""
        reported, truth = reported_and_true(pred_masks, present)
        return 2 * reported * truth, reported + truth


class NegativesWithMask(PresenceMetric):
    """Share of rows about an absent structure that got a mask (lower is better)."""

    name = "negatives_with_mask"
    required_output_keys = PRESENCE_KEYS

    def row_terms(self, pred_masks: MaskList, present: torch.Tensor) -> RowTerms:
        """Reported rows among the absent ones, over the absent ones."""
        reported, truth = reported_and_true(pred_masks, present)
        return reported * (1 - truth), 1 - truth
