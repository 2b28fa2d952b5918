"""Ignite metrics of MediSee (paper Sec. 5.1): mask Dice, gIoU, cIoU and box IoU / accuracy on the rows whose
target is present, and the presence decision (precision, recall, F1, negatives with a mask), overall and
per query kind.

Each metric reads the evaluator's output dict (``pred_masks``, ``masks``, ``pred_boxes``,
``boxes``, ``box_valid``, ``present``, ``kinds``) and returns ``{name: overall, name_<kind>: ...}``. Attached
to an engine, each key lands in ``engine.state.metrics`` and the attached name (e.g.
``val_mean_dice``) holds the overall value as a scalar, so any metric can be MONAI's key metric.
"""

from bundle.metrics.base import KindSplitRatio, metric_key, turn_key
from bundle.metrics.boxes import BoxAccuracy, BoxIoU
from bundle.metrics.masks import CIoU, Dice, GIoU
from bundle.metrics.presence import NegativesWithMask, PresenceF1, PresencePrecision, PresenceRecall

METRIC_NAMES = tuple(m.name for m in (Dice, GIoU, CIoU, BoxIoU, BoxAccuracy))
"""Base names of the five metrics, in the paper's table order."""
PRESENCE_METRIC_NAMES = tuple(m.name for m in (PresencePrecision, PresenceRecall, PresenceF1, NegativesWithMask))
"""Base names of the presence metrics."""

__all__ = [
    "METRIC_NAMES",
    "PRESENCE_METRIC_NAMES",
    "BoxAccuracy",
    "BoxIoU",
    "CIoU",
    "Dice",
    "GIoU",
    "KindSplitRatio",
    "NegativesWithMask",
    "PresenceF1",
    "PresencePrecision",
    "PresenceRecall",
    "metric_key",
    "turn_key",
]
