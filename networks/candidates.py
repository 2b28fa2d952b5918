"""Candidate tokens: where their states are read from (paper Sec. 4.2, h_{c_k}), and the presence decision.

The state used for candidate k is the last-layer hidden state at the position just *before*
token k: the state that predicts it. Positions come from the token ids of each row, so the rule
is the same for any prompt length, padding side, number of image tokens, and for teacher-forced
or generated text.

With a rejection token (``medisee_config#presence = "token"``, GSVA's null-target token) a row
either holds every candidate token once (the target is on the image) or the rejection token
once and no candidate (it is not). The answer's first candidate and the rejection token follow
the same prefix ("It is ..."), so the state that predicts either one is the *decision state*: the
presence score compares the two tokens' probabilities there. A rejected row has no candidate
states of its own; every one of its candidates reads the decision state, so that its (empty)
mask target still has an input.

In a conversation of several turns, earlier answers hold candidate or rejection tokens too; only
the current turn's are read. ``start`` gives, per row, the first position of that turn's answer:
tokens before it are context (the earlier turns as the user saw them). A training row of a dialogue
is read once per turn: each reading is a row of ``input_ids[turn_row]`` with that turn's answer span
(``start``, ``end``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from common.errors import InputError


def _hits(
    input_ids: torch.Tensor, token: int, start: torch.Tensor | None, end: torch.Tensor | None = None
) -> torch.Tensor:
    """(B, L) bool: where ``token`` is, from each row's ``start`` on and before its ``end`` (None: no bound)."""
    hits = input_ids == token
    columns = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0)
    if start is not None:
        hits = hits & (columns >= start.to(input_ids.device).reshape(-1, 1))
    if end is not None:
        hits = hits & (columns < end.to(input_ids.device).reshape(-1, 1))
    return hits


def _single_positions(
    input_ids: torch.Tensor,
    token: int,
    what: str,
    rows: torch.Tensor,
    start: torch.Tensor | None = None,
    end: torch.Tensor | None = None,
) -> torch.Tensor:
    """(B,) index of ``token`` in each row; ``rows`` (B,) bool marks the rows that must hold it exactly once."""
    hits = _hits(input_ids, token, start, end)
    counts = hits.sum(dim=1)
    bad = (rows & (counts != 1)) | (~rows & (counts != 0))
    if bool(bad.any()):
        row = int(bad.nonzero()[0, 0])
        expected = "exactly once" if bool(rows[row]) else "never (the row is rejected)"
        raise InputError(f"row {row} holds {what} (id {token}) {int(counts[row])} times; it must hold it {expected}")
    where = hits.to(torch.int8).argmax(dim=1)
    if bool((rows & (where == 0)).any()):
        raise InputError(f"{what} (id {token}) is the first token of a row; no state predicts it")
    return where


def candidate_state_positions(
    input_ids: torch.Tensor,
    candidate_ids: Sequence[int],
    rejection_id: int | None = None,
    start: torch.Tensor | None = None,
    end: torch.Tensor | None = None,
) -> torch.Tensor:
    """Positions of the states that predict each candidate token.

    Args:
        input_ids: (B, L) token ids (any padding).
        candidate_ids: the n candidate token ids.
        rejection_id: the rejection token's id, or None when the model has none (then every row
            must hold every candidate).
        start: (B,) first position of each row's current answer; None reads the whole row (one turn).
        end: (B,) the position after that answer; None reads to the end of the row.

    Returns:
        (B, n) long tensor: for row b and candidate k, the index just before the token; for a
        rejected row, the index just before its rejection token (the decision state) for every k.

    Raises:
        InputError: a row does not hold each candidate token exactly once (or, when rejected,
            the rejection token once and no candidate), or holds one at position 0.
    """
    batch = input_ids.shape[0]
    rejected = rejected_rows(input_ids, rejection_id, start, end)
    accepted = ~rejected
    positions = [
        _single_positions(input_ids, token, f"candidate token {k}", accepted, start, end)
        for k, token in enumerate(candidate_ids)
    ]
    if rejection_id is not None:
        decision = _single_positions(input_ids, rejection_id, "the rejection token", rejected, start, end)
        positions = [torch.where(rejected, decision, where) for where in positions]
    return (torch.stack(positions, dim=1) - 1).reshape(batch, len(candidate_ids))


def rejected_rows(
    input_ids: torch.Tensor,
    rejection_id: int | None,
    start: torch.Tensor | None = None,
    end: torch.Tensor | None = None,
) -> torch.Tensor:
    """(B,) bool: the rows whose (current) answer holds the rejection token (all False without one)."""
    if rejection_id is None:
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
    return _hits(input_ids, rejection_id, start, end).any(dim=1)


def gather_candidate_states(
    hidden_states: torch.Tensor, positions: torch.Tensor, rows: torch.Tensor | None = None
) -> torch.Tensor:
    """(B, L, H) hidden states and (R, n) positions -> (R, n, H) candidate states.

    Args:
        hidden_states: the language model's last-layer states.
        positions: per reading, the positions of its candidate states.
        rows: (R,) the row of each reading (a dialogue row is read once per turn); None: reading b is row b.
    """
    if rows is None:
        index = positions.unsqueeze(-1).expand(-1, -1, hidden_states.shape[-1])
        return torch.gather(hidden_states, 1, index)
    return hidden_states[rows.unsqueeze(1), positions]


def presence_logits(decision_logits: torch.Tensor, first_candidate_id: int, rejection_id: int) -> torch.Tensor:
    """(B, V) next-token logits at the decision state -> (B,) presence logits.

    The logit of the first candidate against the rejection token, so that its sigmoid is
    P(candidate) / (P(candidate) + P(rejection)): the two-way choice the answer makes there.
    """
    logits = decision_logits.float()
    return logits[:, first_candidate_id] - logits[:, rejection_id]
