"""The presence decision: a rejection token read against the first candidate, scores in [0, 1], trained with
the other losses, and ``presence: none`` the paper's model exactly."""

from __future__ import annotations

import pytest
import torch

from bundle.data.batch import MediSeeBatch
from bundle.losses import MediSeeLoss
from networks import ConfigError, WeightsError, save_checkpoint
from networks.checkpoint import load_checkpoint
from networks.config import MediSeeConfig
from tests.helpers.batches import make_batch
from tests.helpers.configs import ROOT
from tests.helpers.presence_none_reference import OUTPUT_FIELDS, reference_outputs
from tests.helpers.tiny import build_tiny

REFERENCE = ROOT / "tests" / "data" / "presence_none_reference.pt"


def rejected_batch(model, tokenizer):
    """The helper batch with its second row rejected: "[REJ]" where "[SEG]" was, "[BBOX]" dropped."""
    batch = make_batch(model, tokenizer)
    seg, box = model.candidate_token_ids
    ids = batch["input_ids"][1].tolist()
    ids[ids.index(seg)] = model.rejection_token_id
    ids.remove(box)
    ids.append(tokenizer.pad_token_id)
    batch["input_ids"][1] = torch.tensor(ids)
    batch["attention_mask"][1] = (batch["input_ids"][1] != tokenizer.pad_token_id).long()
    batch["labels"] = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    return batch


def test_the_tokenizer_and_model_gain_a_rejection_token_only_with_presence():
    with_token, tokenizer = build_tiny()
    without, plain = build_tiny(**{"medisee_config#presence": "none"})
    assert "[REJ]" in tokenizer.get_vocab() and "[REJ]" not in plain.get_vocab()
    assert with_token.rejection_token_id == tokenizer.convert_tokens_to_ids("[REJ]")
    assert without.rejection_token_id is None and len(tokenizer) == len(plain) + 1


def test_presence_scores_are_probabilities_and_gradients_reach_the_decision(tiny):
    model, tokenizer = build_tiny(seed=1)
    model.train()
    batch = rejected_batch(model, tokenizer)
    out = model(**batch)
    scores = out.presence_scores
    assert scores.shape == (3,) and bool(((scores >= 0) & (scores <= 1)).all())
    targets = MediSeeBatch(
        **batch,
        image_index=torch.arange(3),
        masks=[torch.zeros(m.shape) for m in out.mask_logits],
        boxes=torch.zeros(3, 4),
        box_valid=torch.tensor([False] * 3),
        present=torch.tensor([True, False, True]),
    )
    terms = MediSeeLoss()(out, targets)
    assert terms["presence"] > 0
    terms["loss"].backward()
    lm_head = model.llava.lm_head.weight.grad
    assert lm_head is not None
    assert lm_head[model.rejection_token_id].abs().sum() > 0 and lm_head[model.candidate_token_ids[0]].abs().sum() > 0


def test_a_rejected_row_shares_its_decision_state_with_an_accepted_one():
    model, tokenizer = build_tiny()
    model.eval()
    accepted, rejected = make_batch(model, tokenizer), rejected_batch(model, tokenizer)
    with torch.no_grad():
        a, r = model(**accepted), model(**rejected)
    # the same words precede "[SEG]" and "[REJ]": one state decides, so the scores agree
    assert torch.allclose(a.presence_logits[1], r.presence_logits[1], atol=1e-5)
    assert torch.equal(r.candidate_states[1, 0], r.candidate_states[1, 1])


def test_presence_none_gives_the_paper_models_outputs_exactly():
    expected = torch.load(REFERENCE)
    got = reference_outputs()
    assert got["vocab_size"] == expected["vocab_size"]
    for name in OUTPUT_FIELDS:
        assert torch.allclose(got[name], expected[name], atol=1e-6, rtol=0), name
    assert torch.allclose(got["lm_loss"], expected["lm_loss"], atol=1e-6, rtol=0)
    for mine, theirs in zip(got["mask_logits"], expected["mask_logits"]):
        assert torch.allclose(mine, theirs, atol=1e-5, rtol=0)
        assert torch.equal(mine > 0, theirs > 0)


def test_unknown_presence_mode_is_a_config_error():
    with pytest.raises(ConfigError, match="medisee_config#presence"):
        MediSeeConfig(presence="head")
    with pytest.raises(ConfigError, match="rejection_token"):
        MediSeeConfig(rejection_token="[SEG]")


def test_a_checkpoint_without_presence_is_refused_or_grown_on_request(tmp_path):
    old, old_tokenizer = build_tiny(**{"medisee_config#presence": "none"})
    save_checkpoint(old, old_tokenizer, tmp_path / "old")
    new, _ = build_tiny(seed=3)
    with pytest.raises(WeightsError, match="presence 'none'.*grow_vocabulary"):
        load_checkpoint(new, tmp_path / "old")
    load_checkpoint(new, tmp_path / "old", grow_vocabulary=True)
    rows = old.llava.get_input_embeddings().weight.shape[0]
    assert torch.equal(new.llava.get_input_embeddings().weight[:rows], old.llava.get_input_embeddings().weight)
    assert torch.equal(new.llava.lm_head.weight[:rows], old.llava.lm_head.weight)
