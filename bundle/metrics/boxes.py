"""Box metrics on normalised xyxy boxes, over rows that have a ground-truth box (paper Sec. 5.1)."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable

import torch
from monai.data.box_utils import box_iou

from bundle.metrics.base import CPU, KindSplitRatio, RowTerms

BOX_KEYS = ("pred_boxes", "boxes", "box_valid", "kinds", "turns")


def paired_box_iou(pred_boxes: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """IoU of row b of ``pred_boxes`` with row b of ``boxes``: (B, 4), (B, 4) -> (B,) float32."""
    # MONAI has only the all-pairs IoU; a batch is small, so its diagonal is cheap
    return box_iou(pred_boxes.float(), boxes.to(pred_boxes.device).float()).diagonal()


class BoxMetric(KindSplitRatio):
    """A per-row box score averaged over valid rows (rows whose ground-truth mask is not empty)."""

    required_output_keys = BOX_KEYS

    @abstractmethod
    def score(self, iou: torch.Tensor) -> torch.Tensor:
        """(B,) IoU -> (B,) per-row score."""

    def row_terms(self, pred_boxes: torch.Tensor, boxes: torch.Tensor, box_valid: torch.Tensor) -> RowTerms:
        """Score on valid rows (0 elsewhere) and the valid indicator as the count."""
        valid = torch.as_tensor(box_valid, dtype=torch.bool, device=pred_boxes.device)
        score = self.score(paired_box_iou(pred_boxes, boxes)).double()
        return torch.where(valid, score, torch.zeros_like(score)), valid.double()


class BoxIoU(BoxMetric):
    """Mean IoU of predicted and ground-truth boxes."""

    name = "box_iou"

    def score(self, iou: torch.Tensor) -> torch.Tensor:
        """The IoU itself."""
        return iou


class BoxAccuracy(BoxMetric):
    """Fraction of boxes with IoU > ``threshold`` (paper: 0.5).

    Args:
        threshold: IoU a box must exceed to count as found.
        output_transform: as for every metric (default: identity).
        device: where the sums live.
    """

    name = "box_acc"

    def __init__(
        self,
        threshold: float = 0.5,
        output_transform: Callable = lambda x: x,
        device: str | torch.device = CPU,
    ) -> None:
        self.threshold = threshold
        super().__init__(output_transform, device)

    def score(self, iou: torch.Tensor) -> torch.Tensor:
        """1 where the IoU exceeds the threshold, else 0."""
        return (iou > self.threshold).to(iou.dtype)
