"""Adaptive Democratic Candidate Fusion: the routers R_s and R_d (paper Eq. 2, Table 4)."""

from __future__ import annotations

import torch
from torch import nn


class CandidateRouter(nn.Module):
    """Fuses n candidate states into one decoder input by a weighted sum.

    ``normalized_sigmoid`` (released code) and ``softmax`` (the paper's "soft" fusion) weigh
    the candidates with an MLP over their concatenation, Linear(n*H, hidden)-GELU-Linear(hidden, n).
    ``hard`` has no parameters: it selects candidate ``hard_index`` (Table 4's "hard" rows).

    Args:
        num_candidates: n.
        hidden_size: width H of each candidate state.
        router_hidden_size: hidden width of the MLP.
        fusion: ``normalized_sigmoid``, ``softmax`` or ``hard``.
        hard_index: the candidate selected by ``hard`` fusion.
    """

    def __init__(
        self, num_candidates: int, hidden_size: int, router_hidden_size: int, fusion: str, hard_index: int = 0
    ) -> None:
        super().__init__()
        self.num_candidates = num_candidates
        self.fusion = fusion
        self.hard_index = hard_index % num_candidates
        self.mlp = None
        if fusion != "hard":
            self.mlp = nn.Sequential(
                nn.Linear(num_candidates * hidden_size, router_hidden_size),
                nn.GELU(),
                nn.Linear(router_hidden_size, num_candidates),
            )

    def weights(self, candidates: torch.Tensor) -> torch.Tensor:
        """(B, n, H) candidate states -> (B, n) fusion weights that sum to 1."""
        if self.mlp is None:
            weights = torch.zeros(candidates.shape[:2], dtype=candidates.dtype, device=candidates.device)
            weights[:, self.hard_index] = 1.0
            return weights
        logits = self.mlp(candidates.flatten(1))
        if self.fusion == "softmax":
            return logits.softmax(dim=-1)
        gates = logits.sigmoid()
        return gates / gates.sum(dim=-1, keepdim=True)

    def forward(self, candidates: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns the fused state (B, H) and the weights (B, n)."""
        weights = self.weights(candidates)
        fused = (weights.unsqueeze(-1).to(candidates.dtype) * candidates).sum(dim=1)
        return fused, weights
