"""The similarity loss of the MLMR-SD fine-tuning stage (paper Eq. 5, Fig. 5).

Sim(h_img, h_seg) is the dot product of every image-token state with h_seg, one value per image
token. For a reasoning query the map is pulled towards the map of the plain label query of the
same image, which the paper finds focuses better on the target:
``L_sim = js_weight * JS + mse_weight * MSE``.

Raw dot products of 4096-wide last-layer states are in the hundreds or thousands and their scale
drifts during training, so neither term is taken on the raw maps:

- **JS** compares the maps as distributions over image tokens: softmax of the map times
  ``scale`` (default 1/sqrt(H), the scaled dot-product attention factor, which keeps softmax from
  collapsing onto one token). JS is symmetric and bounded by ln 2, unlike KL, so one very wrong
  token cannot blow the loss up.
- **MSE** compares the shapes of the maps: each row min-max normalised to [0, 1], so the term is
  bounded by 1 and ignores offsets and scale that carry no location information
  (``min_max=False`` takes it on the raw maps instead: an ablation, unbounded).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def image_token_states(hidden: torch.Tensor, input_ids: torch.Tensor, image_token_id: int) -> torch.Tensor:
    """The last-layer states at the image-token positions, in token order.

    Args:
        hidden: (B, L, H) last hidden states.
        input_ids: (B, L) ids; every row holds the same number T of image tokens.
        image_token_id: id of the image placeholder token.

    Returns:
        (B, T, H) h_img.

    Raises:
        ValueError: rows hold different numbers of image tokens, or none.
    """
    is_image = input_ids == image_token_id
    counts = is_image.sum(dim=1)
    if counts.numel() == 0 or bool((counts != counts[0]).any()) or int(counts[0]) == 0:
        raise ValueError(f"every row needs the same, non-zero number of image tokens; got {counts.tolist()}")
    # boolean indexing is row-major, so each row's tokens stay together and in order
    return hidden[is_image].reshape(hidden.shape[0], int(counts[0]), hidden.shape[-1])


def similarity_map(image_states: torch.Tensor, h_seg: torch.Tensor) -> torch.Tensor:
    """Sim(h_img, h_seg): (B, T, H) and (B, H) -> (B, T) dot products, in float32.

    float32 because bf16 keeps only ~3 significant digits of sums this large.
    """
    return torch.einsum("bth,bh->bt", image_states.float(), h_seg.float())


def js_divergence(logits_p: torch.Tensor, logits_q: torch.Tensor) -> torch.Tensor:
    """Jensen-Shannon divergence (nats) between softmax(logits_p) and softmax(logits_q), per row.

    Computed from log-probabilities (log-sum-exp for the mixture), so peaked distributions with
    underflowing probabilities stay finite.
    """
    log_p = F.log_softmax(logits_p, dim=-1)
    log_q = F.log_softmax(logits_q, dim=-1)
    log_m = torch.logsumexp(torch.stack([log_p, log_q]), dim=0) - math.log(2.0)
    kl_pm = F.kl_div(log_m, log_p, reduction="none", log_target=True).sum(dim=-1)
    kl_qm = F.kl_div(log_m, log_q, reduction="none", log_target=True).sum(dim=-1)
    return 0.5 * (kl_pm + kl_qm)


def min_max_normalise(maps: torch.Tensor) -> torch.Tensor:
    """Each row of (B, T) rescaled to [0, 1]; a constant row becomes all zeros."""
    low = maps.amin(dim=-1, keepdim=True)
    span = maps.amax(dim=-1, keepdim=True) - low
    return (maps - low) / (span + torch.finfo(maps.dtype).eps)


class SimilarityLoss(nn.Module):
    """L_sim = js_weight * JS + mse_weight * MSE between the reasoning and label similarity maps.

    The label-query map is the target: it is detached, so gradients reach only the reasoning
    branch (the model learns to look where the plain question already looks).

    Args:
        js_weight: lambda_js (paper 2.0).
        mse_weight: lambda_mse (paper 1.0).
        scale: factor on the maps before softmax for JS; None = 1/sqrt(H).
        min_max: MSE on per-row min-max normalised maps (default) or, False, on the raw maps.
    """

    def __init__(
        self, js_weight: float = 2.0, mse_weight: float = 1.0, scale: float | None = None, min_max: bool = True
    ) -> None:
        super().__init__()
        self.js_weight = js_weight
        self.mse_weight = mse_weight
        self.scale = scale
        self.min_max = min_max

    def forward(
        self,
        image_states: torch.Tensor,
        h_seg: torch.Tensor,
        label_image_states: torch.Tensor,
        label_h_seg: torch.Tensor,
    ) -> torch.Tensor:
        """Similarity loss of B (reasoning query, label query) pairs on the same images.

        Args:
            image_states: (B, T, H) h_img of the reasoning queries.
            h_seg: (B, H) h_seg of the reasoning queries.
            label_image_states: (B, T, H) ĥ_img of the label queries.
            label_h_seg: (B, H) ĥ_seg of the label queries.

        Returns:
            The scalar loss, averaged over the B pairs.
        """
        sim = similarity_map(image_states, h_seg)
        with torch.no_grad():
            target = similarity_map(label_image_states, label_h_seg)
        scale = self.scale if self.scale is not None else 1.0 / math.sqrt(h_seg.shape[-1])
        js = js_divergence(sim * scale, target * scale).mean()
        if self.min_max:
            sim, target = min_max_normalise(sim), min_max_normalise(target)
        mse = F.mse_loss(sim, target)
        return self.js_weight * js + self.mse_weight * mse
