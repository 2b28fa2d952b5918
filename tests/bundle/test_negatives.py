"""Negative questions: asked at the configured share, about absent labels (and, less often, other anatomy or
unrelated requests), with empty masks, no box loss and a rejection answer."""

from __future__ import annotations

import random
from collections import Counter

import pytest
import torch

from bundle.data import MediSeeCollate, Negative, NegativeSampler, NiftiSliceDataset
from bundle.data.negatives import LABEL, OTHER, UNRELATED
from bundle.losses import BoxLoss
from bundle.prompts import PromptBuilder
from networks import ConfigError, build_tokenizer


def rows(dataset):
    return [t for i in range(len(dataset)) for t in dataset[i]["targets"]]


def test_negatives_appear_at_the_configured_share_with_empty_masks(phantom_dataset):
    dataset = NiftiSliceDataset(phantom_dataset, negative_fraction=0.3, seed=2)
    targets = [t for epoch in range(3) for t in (dataset.set_epoch(epoch) or rows(dataset))]
    share = sum(not t.present for t in targets) / len(targets)
    assert 0.24 < share < 0.36
    negatives = [t for t in targets if not t.present]
    assert all(not bool(t.mask.any()) for t in negatives)
    present_names = {t.class_name for t in targets if t.present}
    assert {t.class_name for t in negatives} & present_names, "absent labels of the label set are asked"
    assert {t.query.kind for t in negatives} == {"label", "short", "long"}
    assert all("not visible" in t.query.explanation or "anything to segment" in t.query.explanation for t in negatives)


def test_no_negatives_leaves_training_items_exactly_as_before(phantom_dataset):
    plain = NiftiSliceDataset(phantom_dataset, seed=2)
    off = NiftiSliceDataset(phantom_dataset, negative_fraction=0.0, seed=2)
    assert len(plain) == len(off)
    for index in range(len(plain)):
        a, b = plain.draw(index), off.draw(index)
        assert [(k, n, q.question) for row in a[1] for k, n, q in row] == [
            (k, n, q.question) for row in b[1] for k, n, q in row
        ]


def test_a_negative_is_never_a_label_on_the_image():
    sampler = NegativeSampler(0.5, other_fraction=0.3)
    rng = random.Random(0)
    labels = ["liver", "spleen", "aorta"]
    chosen = [sampler.choose(labels, {"liver", "spleen"}, rng) for _ in range(400)]
    counts = Counter(n.source for n in chosen)
    assert {n.name for n in chosen if n.source == LABEL} == {"aorta"}
    assert counts[OTHER] > 0 and counts[UNRELATED] > 0 and counts[LABEL] > counts[OTHER] + counts[UNRELATED]
    assert all(n.name not in labels for n in chosen if n.source == OTHER)


def test_a_slice_holding_every_label_is_asked_about_other_anatomy():
    sampler = NegativeSampler(0.5, unrelated_requests=())
    negative = sampler.choose(["liver"], {"liver"}, random.Random(0))
    assert negative.source == OTHER and negative.name != "liver"


def test_eval_mode_adds_deterministic_negatives_for_every_kind(phantom_dataset):
    first = NiftiSliceDataset(phantom_dataset, split="validation", mode="eval", negative_fraction=0.25)
    again = NiftiSliceDataset(phantom_dataset, split="validation", mode="eval", negative_fraction=0.25)
    a, b = rows(first), rows(again)
    assert [t.query.question for t in a] == [t.query.question for t in b]
    kinds = Counter((t.present, t.query.kind) for t in a)
    assert kinds[(False, "long")] > 0 and kinds[(False, "label")] >= kinds[(False, "long")]
    assert 0.15 < sum(not t.present for t in a) / len(a) < 0.35


def test_the_collate_answers_negatives_with_the_rejection_token_and_no_box(phantom_dataset):
    tokenizer = build_tokenizer()
    prompts = PromptBuilder(tokenizer, 4, rejection_token="[REJ]")
    dataset = NiftiSliceDataset(phantom_dataset, negative_fraction=0.5, seed=4)
    samples = [dataset[i] for i in range(6)]
    batch = MediSeeCollate(prompts, clip_size=28, sam_size=32)(samples)
    rejection = tokenizer.convert_tokens_to_ids("[REJ]")
    seg = tokenizer.convert_tokens_to_ids("[SEG]")
    for row, present in enumerate(batch.present.tolist()):
        ids = batch.input_ids[row].tolist()
        assert (rejection in ids) != present and (seg in ids) == present
        if not present:
            assert not bool(batch.box_valid[row]) and not bool(batch.masks[row].any())
    assert not bool(batch.present.all())
    predicted = torch.tensor([[0.1, 0.1, 0.6, 0.7]]).repeat(len(batch.present), 1)
    loss = BoxLoss()(predicted, batch.boxes, batch.box_valid)
    assert torch.isfinite(loss)


def test_negatives_need_a_rejection_token(phantom_dataset):
    prompts = PromptBuilder(build_tokenizer(), 4)
    dataset = NiftiSliceDataset(phantom_dataset, negative_fraction=0.9, seed=4)
    samples = [dataset[i] for i in range(4)]
    with pytest.raises(ConfigError, match="rejection token.*negative_fraction"):
        MediSeeCollate(prompts, clip_size=28, sam_size=32)(samples)


def test_negative_keys_name_unrelated_requests_plainly():
    assert Negative("What time is it?", UNRELATED).class_name == "unrelated request"
    assert Negative("heart", OTHER).class_name == "heart"
