"""Candidate tokens: where their states are read from (paper Sec. 4.2, h_{c_k}).

The state used for candidate k is the last-layer hidden state at the position just *before*
token k: the state that predicts it. Positions come from the token ids of each row, so the rule
is the same for any prompt length, padding side, number of image tokens, and for teacher-forced
or generated text.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from networks.errors import InputError


def candidate_state_positions(input_ids: torch.Tensor, candidate_ids: Sequence[int]) -> torch.Tensor:
    """Positions of the states that predict each candidate token.

    Args:
        input_ids: (B, L) token ids (any padding).
        candidate_ids: the n candidate token ids.

    Returns:
        (B, n) long tensor: for row b and candidate k, the index just before the token.

    Raises:
        InputError: a row does not hold each candidate token exactly once, or holds one at
            position 0 (no state predicts it).
    """
    positions = []
    for k, token in enumerate(candidate_ids):
        hits = input_ids == token
        counts = hits.sum(dim=1)
        bad = (counts != 1).nonzero(as_tuple=True)[0]
        if len(bad):
            row = int(bad[0])
            raise InputError(
                f"row {row} holds candidate token {k} (id {token}) {int(counts[row])} times; "
                "each row needs each candidate token exactly once"
            )
        where = hits.to(torch.int8).argmax(dim=1)
        if bool((where == 0).any()):
            raise InputError(f"candidate token {k} (id {token}) is the first token of a row; no state predicts it")
        positions.append(where - 1)
    return torch.stack(positions, dim=1)


def gather_candidate_states(hidden_states: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """(B, L, H) hidden states and (B, n) positions -> (B, n, H) candidate states."""
    index = positions.unsqueeze(-1).expand(-1, -1, hidden_states.shape[-1])
    return torch.gather(hidden_states, 1, index)
