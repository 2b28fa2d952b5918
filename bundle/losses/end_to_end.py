"""The end-to-end objective L_end = L_txt + L_mask + L_bbox (paper Eq. 4, Sec. 4.3), plus L_presence.

Default weights are the paper's (lambda_bce 2.0, lambda_dice 0.5, lambda_L1 = lambda_giou = 1.0);
the released code scales the box loss by 2.0, which is ``BoxLoss(weight=2.0)``. A model with a
rejection token (``medisee_config#presence = "token"``) also gets L_presence: the binary cross
entropy of its presence logit (first candidate against the rejection token, at the decision state)
against whether the target is on the image. The answer's cross entropy already asks for the right
token there among the whole vocabulary; this term weighs the two-way decision itself
(``presence_weight``). Negative rows (target not on the image) have an empty mask target and no box.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from monai.losses import BoxGIoULoss, DiceLoss
from torch import nn

from bundle.data.batch import MediSeeBatch
from networks.medisee import MediSeeOutput

Masks = torch.Tensor | Sequence[torch.Tensor]
"""Masks or mask logits: a (B, H, W) tensor, or B tensors (H_b, W_b) of different sizes."""


class MaskLoss(nn.Module):
    """L_mask = bce_weight * BCE + dice_weight * Dice, each per mask on logits, averaged over masks.

    Masks are compared at their original slice sizes, so a batch may mix sizes (a list);
    averaging per mask first keeps a large slice from outweighing a small one.

    Args:
        bce_weight: lambda_bce.
        dice_weight: lambda_dice.
    """

    def __init__(self, bce_weight: float = 2.0, dice_weight: float = 0.5) -> None:
        super().__init__()
        self.bce_weight = bce_weight
        self.dice_weight = dice_weight
        # reduction="none" keeps one value per mask; the mean over masks is taken here
        self.dice = DiceLoss(sigmoid=True, reduction="none")

    def forward(self, logits: Masks, targets: Masks) -> torch.Tensor:
        """Mask loss of B predictions.

        Args:
            logits: (B, H, W) or B tensors (H_b, W_b).
            targets: binary ground truth of the same shapes.

        Returns:
            The scalar loss.

        Raises:
            ValueError: no masks, or different numbers of predictions and targets.
        """
        if len(logits) != len(targets) or len(logits) == 0:
            raise ValueError(f"need one target per predicted mask, and at least one: {len(logits)} vs {len(targets)}")
        if isinstance(logits, torch.Tensor) and isinstance(targets, torch.Tensor):
            per_mask = self._per_mask(logits, targets)
        else:
            per_mask = torch.cat([self._per_mask(p[None], t[None]) for p, t in zip(logits, targets)])
        return per_mask.mean()

    def _per_mask(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """(N, H, W) logits and targets -> (N,) weighted BCE + Dice per mask."""
        # float32: bf16 logits lose the small BCE differences the optimiser needs
        logits = logits.float()
        targets = targets.to(device=logits.device, dtype=logits.dtype)
        bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none").flatten(1).mean(dim=1)
        dice = self.dice(logits[:, None], targets[:, None]).flatten()
        return self.bce_weight * bce + self.dice_weight * dice


class BoxLoss(nn.Module):
    """L_bbox = weight * (l1_weight * L1 + giou_weight * (1 - GIoU)) on normalised xyxy boxes.

    L1 is the mean absolute coordinate error of a row. Rows whose ground-truth mask is empty
    have no box and are left out of the mean.

    Args:
        weight: overall scale (paper 1.0, released code 2.0).
        l1_weight: lambda_L1.
        giou_weight: lambda_giou.
    """

    def __init__(self, weight: float = 1.0, l1_weight: float = 1.0, giou_weight: float = 1.0) -> None:
        super().__init__()
        self.weight = weight
        self.l1_weight = l1_weight
        self.giou_weight = giou_weight
        self.giou = BoxGIoULoss(reduction="none")

    def forward(
        self, pred_xyxy: torch.Tensor, target_xyxy: torch.Tensor, valid: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Box loss averaged over valid rows.

        Args:
            pred_xyxy: (B, 4) predicted boxes.
            target_xyxy: (B, 4) ground-truth boxes.
            valid: (B,) bool, False for rows without a box; None = all valid.

        Returns:
            The scalar loss; a zero connected to ``pred_xyxy`` when no row is valid, so that
            backward still reaches every parameter (DDP expects gradients on all of them).
        """
        target_xyxy = target_xyxy.to(device=pred_xyxy.device, dtype=pred_xyxy.dtype)
        if valid is not None:
            valid = valid.to(device=pred_xyxy.device, dtype=torch.bool)
            if not bool(valid.any()):
                return pred_xyxy.sum() * 0.0
            pred_xyxy, target_xyxy = pred_xyxy[valid], target_xyxy[valid]
        l1 = F.l1_loss(pred_xyxy, target_xyxy)
        giou = self.giou(pred_xyxy, target_xyxy).mean()
        return self.weight * (self.l1_weight * l1 + self.giou_weight * giou)


class MediSeeLoss(nn.Module):
    """L_end = text_weight * L_txt + L_mask + L_bbox over one model output and its batch.

    Args:
        text_weight: scale of the answer cross entropy (paper 1.0).
        mask: the mask loss; default ``MaskLoss()``.
        box: the box loss; default ``BoxLoss()``.
        presence_weight: scale of L_presence (models with a rejection token; 0 = only the answer's
            cross entropy trains the decision).
    """

    def __init__(
        self,
        text_weight: float = 1.0,
        mask: MaskLoss | None = None,
        box: BoxLoss | None = None,
        presence_weight: float = 1.0,
    ) -> None:
        super().__init__()
        self.text_weight = text_weight
        self.presence_weight = presence_weight
        self.mask = mask if mask is not None else MaskLoss()
        self.box = box if box is not None else BoxLoss()

    def forward(self, output: MediSeeOutput, batch: MediSeeBatch) -> dict[str, torch.Tensor]:
        """The loss terms of a batch.

        Args:
            output: the model output (``mask_logits`` at original sizes, ``boxes_xyxy``, ``lm_loss``).
            batch: the collated batch (``masks``, ``boxes``, ``box_valid``, ``present``).

        Returns:
            ``loss`` (the total to back-propagate), ``text``, ``mask`` and ``box`` (scalars), and
            ``presence`` for a model with a rejection token.
        """
        mask = self.mask(output.mask_logits, batch.masks)
        box = self.box(output.boxes_xyxy, batch.boxes, batch.box_valid)
        # no labels (teacher-forced evaluation) means no text term, not a missing key
        text = output.lm_loss.float() if output.lm_loss is not None else mask.new_zeros(())
        terms = {"loss": self.text_weight * text + mask + box, "text": text, "mask": mask, "box": box}
        if output.presence_logits is not None:
            logits = output.presence_logits.float()
            target = batch.present_or_all().to(logits.device, logits.dtype)
            terms["presence"] = F.binary_cross_entropy_with_logits(logits, target)
            terms["loss"] = terms["loss"] + self.presence_weight * terms["presence"]
        return terms
