"""Mask metrics on binarised predictions (logits > 0) at each slice's original size (paper Sec. 5.1).

They average over the rows whose target is on the image (``present``), as the paper's do; rows
asking about an absent structure are measured by :mod:`bundle.metrics.presence`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from bundle.metrics.base import KindSplitRatio, RowTerms

MASK_KEYS = ("pred_masks", "masks", "present", "kinds", "turns")
MaskList = Sequence[torch.Tensor]
"""B (H_b, W_b) tensors: mask logits or ground truth at each slice's own size."""


def mask_overlaps(pred_logits: MaskList, masks: MaskList) -> RowTerms:
    """Per target |P ∩ G| and |P ∪ G|, with P = logits > 0 and G = ground truth > 0.

    Args:
        pred_logits: B tensors (H_b, W_b) of mask logits.
        masks: B ground-truth tensors of the same shapes.

    Returns:
        (B,) intersections and (B,) unions, float64.

    Raises:
        ValueError: the lists differ in length or a pair differs in shape.
    """
    if len(pred_logits) != len(masks):
        raise ValueError(f"got {len(pred_logits)} predicted masks for {len(masks)} ground-truth masks")
    intersections, unions = [], []
    for logits, mask in zip(pred_logits, masks):
        if logits.shape != mask.shape:
            raise ValueError(f"a predicted mask is {tuple(logits.shape)}, its ground truth {tuple(mask.shape)}")
        pred, truth = logits > 0, mask.to(logits.device) > 0
        intersections.append((pred & truth).sum())
        unions.append((pred | truth).sum())
    if not intersections:
        return torch.zeros(0, dtype=torch.float64), torch.zeros(0, dtype=torch.float64)
    return torch.stack(intersections).double(), torch.stack(unions).double()


def present_rows(present: torch.Tensor | Sequence[bool], like: torch.Tensor) -> torch.Tensor:
    """(B,) float64 1.0 on rows whose target is on the image, 0.0 elsewhere."""
    return torch.as_tensor(present, dtype=torch.bool, device=like.device).to(like.dtype)


def only_present(scores: torch.Tensor, present: torch.Tensor | Sequence[bool]) -> RowTerms:
    """Per-row scores and counts restricted to rows whose target is present."""
    keep = present_rows(present, scores)
    return scores * keep, keep


def ratio_or_one(numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    """numerator / denominator per target, 1.0 where the denominator is 0 (both masks empty: a perfect answer)."""
    return torch.where(denominator > 0, numerator / denominator.clamp(min=1), torch.ones_like(numerator))


class Dice(KindSplitRatio):
    """Mean per-target Dice 2|P ∩ G| / (|P| + |G|); 1.0 when both are empty."""

    name = "dice"
    required_output_keys = MASK_KEYS

    def row_terms(self, pred_masks: MaskList, masks: MaskList, present: torch.Tensor) -> RowTerms:
        """Per-target Dice and a count of 1 (0 for absent targets)."""
        intersection, union = mask_overlaps(pred_masks, masks)
        # |P| + |G| = |P ∩ G| + |P ∪ G|
        dice = ratio_or_one(2 * intersection, intersection + union)
        return only_present(dice, present)


class GIoU(KindSplitRatio):
    """Mean per-target IoU |P ∩ G| / |P ∪ G| (the paper's gIoU); 1.0 when both are empty."""

    name = "giou"
    required_output_keys = MASK_KEYS

    def row_terms(self, pred_masks: MaskList, masks: MaskList, present: torch.Tensor) -> RowTerms:
        """Per-target IoU and a count of 1 (0 for absent targets)."""
        intersection, union = mask_overlaps(pred_masks, masks)
        iou = ratio_or_one(intersection, union)
        return only_present(iou, present)


class CIoU(KindSplitRatio):
    """Cumulative IoU sum |P ∩ G| / sum |P ∪ G| over the split; 1.0 when every union is empty."""

    name = "ciou"
    empty_value = 1.0
    required_output_keys = MASK_KEYS

    def row_terms(self, pred_masks: MaskList, masks: MaskList, present: torch.Tensor) -> RowTerms:
        """Per-target intersection and union (zeros for absent targets)."""
        intersection, union = mask_overlaps(pred_masks, masks)
        keep = present_rows(present, intersection)
        return intersection * keep, union * keep
