"""Ignite metrics of MediSee (DESIGN §5): mask Dice, gIoU, cIoU and box IoU / accuracy, overall and per query kind.

Each metric reads the evaluator's output dict (``pred_masks``, ``masks``, ``pred_boxes``,
``boxes``, ``box_valid``, ``kinds``) and returns ``{name: overall, name_<kind>: ...}``. Attached
to an engine, each key lands in ``engine.state.metrics`` and the attached name (e.g.
``val_mean_dice``) holds the overall value as a scalar, so any metric can be MONAI's key metric.
"""

from bundle.metrics.base import KindSplitRatio, metric_key
from bundle.metrics.boxes import BoxAccuracy, BoxIoU
from bundle.metrics.masks import CIoU, Dice, GIoU

METRIC_NAMES = tuple(m.name for m in (Dice, GIoU, CIoU, BoxIoU, BoxAccuracy))
"""Base names of the five metrics, in the paper's table order."""

__all__ = ["METRIC_NAMES", "BoxAccuracy", "BoxIoU", "CIoU", "Dice", "GIoU", "KindSplitRatio", "metric_key"]
