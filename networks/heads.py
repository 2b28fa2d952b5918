"""Heads on the fused states: the text projection into SAM's prompt space and the box decoder."""

from __future__ import annotations

import torch
from torch import nn


class TextProjection(nn.Module):
    """h_seg -> one SAM sparse prompt token: Linear(H, H)-ReLU-Linear(H, prompt_dim)."""

    def __init__(self, hidden_size: int, prompt_embed_dim: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(hidden_size, hidden_size), nn.ReLU(inplace=True), nn.Linear(hidden_size, prompt_embed_dim)
        )

    def forward(self, h_seg: torch.Tensor) -> torch.Tensor:
        """(B, H) -> (B, prompt_dim)."""
        return self.mlp(h_seg)


class BoxHead(nn.Module):
    """The detection decoder G_b^dec: MLP H -> hidden -> hidden -> 4 (ReLU), sigmoid output.

    The output is a normalised (cx, cy, w, h) box. The last layer starts at zero, so an
    untrained head predicts the centred half-size box (0.5, 0.5, 0.5, 0.5).
    """

    def __init__(self, hidden_size: int, box_hidden_size: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(hidden_size, box_hidden_size),
            nn.ReLU(inplace=True),
            nn.Linear(box_hidden_size, box_hidden_size),
            nn.ReLU(inplace=True),
            nn.Linear(box_hidden_size, 4),
        )
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, h_det: torch.Tensor) -> torch.Tensor:
        """(B, H) -> (B, 4) normalised cxcywh."""
        return self.mlp(h_det).sigmoid()
