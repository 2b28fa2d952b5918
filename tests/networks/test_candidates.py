"""The candidate-state rule on hand-written token ids."""

import pytest
import torch

from networks import InputError
from networks.candidates import candidate_state_positions, gather_candidate_states, presence_logits

SEG, BOX, PAD = 7, 8, 0


def test_positions_are_just_before_each_candidate_token_whatever_the_padding():
    ids = torch.tensor([[1, 5, SEG, 4, BOX, 2, PAD, PAD], [PAD, 1, 5, 5, 5, SEG, BOX, 2]])
    assert candidate_state_positions(ids, [SEG, BOX]).tolist() == [[1, 3], [4, 5]]


def test_gather_picks_those_states():
    hidden = torch.arange(2 * 4 * 3, dtype=torch.float32).reshape(2, 4, 3)
    states = gather_candidate_states(hidden, torch.tensor([[0, 2], [1, 3]]))
    assert torch.equal(states[0, 1], hidden[0, 2]) and torch.equal(states[1, 0], hidden[1, 1])


@pytest.mark.parametrize("row", [[1, 5, 4, BOX, 2], [1, SEG, SEG, BOX, 2]], ids=["missing", "twice"])
def test_rows_need_each_candidate_exactly_once(row):
    with pytest.raises(InputError, match="exactly once"):
        candidate_state_positions(torch.tensor([row]), [SEG, BOX])


def test_a_candidate_at_position_zero_has_no_predicting_state():
    with pytest.raises(InputError, match="first token"):
        candidate_state_positions(torch.tensor([[SEG, BOX, 2]]), [SEG, BOX])


REJ = 9


def test_a_rejected_row_reads_the_decision_state_for_every_candidate():
    ids = torch.tensor([[1, 5, SEG, 4, BOX, 2], [1, 5, REJ, 4, 2, PAD]])
    assert candidate_state_positions(ids, [SEG, BOX], REJ).tolist() == [[1, 3], [1, 1]]


@pytest.mark.parametrize(
    "row", [[1, 5, REJ, SEG, BOX, 2], [1, REJ, REJ, 2, PAD, PAD]], ids=["rejection with candidates", "twice"]
)
def test_a_row_is_either_accepted_or_rejected(row):
    with pytest.raises(InputError, match="rejection token|rejected"):
        candidate_state_positions(torch.tensor([row]), [SEG, BOX], REJ)


def test_presence_logit_is_the_first_candidate_against_the_rejection_token():
    logits = torch.zeros(2, 10)
    logits[0, SEG], logits[1, REJ] = 3.0, 2.0
    scores = presence_logits(logits, SEG, REJ).sigmoid()
    probs = logits.softmax(dim=-1)
    expected = probs[:, SEG] / (probs[:, SEG] + probs[:, REJ])
    assert torch.allclose(scores, expected)


def test_only_the_current_answer_is_read_when_rows_hold_earlier_turns():
    # row 0: an earlier turn found its target, the current one reads its own candidates; row 1: an earlier
    # turn was rejected, the current one is rejected too; row 2: an earlier rejection, the current turn accepts
    ids = torch.tensor(
        [
            [1, SEG, 4, BOX, 2, 5, SEG, 4, BOX, 2],
            [1, REJ, 2, 5, 6, REJ, 2, PAD, PAD, PAD],
            [1, REJ, 2, 5, SEG, 4, BOX, 2, PAD, PAD],
        ]
    )
    start = torch.tensor([6, 4, 3])
    assert candidate_state_positions(ids, [SEG, BOX], REJ, start).tolist() == [[5, 7], [4, 4], [3, 5]]
    with pytest.raises(InputError, match="2 times"):
        candidate_state_positions(ids[:1], [SEG, BOX], REJ)  # read as one turn, the row is malformed


def test_the_current_answer_still_needs_each_candidate_once():
    ids = torch.tensor([[1, SEG, 4, BOX, 2, 5, 4, BOX, 2]])
    with pytest.raises(InputError, match="candidate token 0"):
        candidate_state_positions(ids, [SEG, BOX], REJ, torch.tensor([5]))
