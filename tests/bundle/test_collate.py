"""Collate: samples with several targets become one model batch that runs through MediSee."""

from __future__ import annotations

import torch

from bundle.data.base import Target
from bundle.data.collate import MediSeeCollate
from bundle.data.queries import Query
from bundle.prompts import IGNORE_INDEX, PromptBuilder


def _sample(height, width, boxes):
    targets = []
    for name, (r0, r1, c0, c1) in boxes.items():
        mask = torch.zeros(height, width, dtype=torch.bool)
        mask[r0:r1, c0:c1] = True
        targets.append(Target(mask, name, Query("long", f"Where is the {name}?", f"It is the {name}.")))
    return {"image": torch.rand(1, height, width), "targets": targets, "source": f"{height}x{width}"}


def _collate(model, tokenizer, **kwargs):
    sam = model.medsam
    return MediSeeCollate(
        PromptBuilder.for_model(tokenizer, model),
        model.llava.config.vision_config.image_size,
        sam.image_size,
        sam.config.resize,
        **kwargs,
    )


def test_rows_follow_targets_and_share_their_image(tiny):
    model, tokenizer = tiny
    samples = [
        _sample(40, 30, {"liver": (2, 10, 3, 9), "spleen": (20, 30, 0, 30)}),
        _sample(24, 24, {"kidney": (0, 24, 12, 24)}),
    ]
    batch = _collate(model, tokenizer)(samples)
    assert batch.image_index.tolist() == [0, 0, 1]
    assert batch.clip_pixel_values.shape[0] == batch.sam_pixel_values.shape[0] == 2
    assert batch.original_sizes.tolist() == [[40, 30], [40, 30], [24, 24]]
    assert torch.allclose(batch.boxes[0], torch.tensor([3 / 30, 2 / 40, 9 / 30, 10 / 40]))
    assert torch.allclose(batch.boxes[2], torch.tensor([0.5, 0.0, 1.0, 1.0]))
    assert batch.box_valid.all() and batch.kinds == ["long"] * 3
    assert [m.shape for m in batch.masks] == [(40, 30), (40, 30), (24, 24)]
    explained = tokenizer.decode(batch.labels[0][batch.labels[0] != IGNORE_INDEX])
    assert "It is the liver." in explained
    with torch.no_grad():
        out = model(**batch.model_inputs())
    assert [tuple(m.shape) for m in out.mask_logits] == [(40, 30), (40, 30), (24, 24)]


def test_teacher_forced_rows_carry_no_explanation_and_empty_masks_are_flagged(tiny):
    model, tokenizer = tiny
    sample = _sample(16, 16, {"liver": (0, 0, 0, 0)})
    batch = _collate(model, tokenizer, teacher_forced=True)([sample])
    answer = tokenizer.decode(batch.labels[0][batch.labels[0] != IGNORE_INDEX])
    assert "It is the liver" not in answer and "[SEG]" in answer
    assert batch.box_valid.tolist() == [False]


def test_label_queries_ride_along_for_the_similarity_loss(tiny):
    model, tokenizer = tiny
    batch = _collate(model, tokenizer, with_label_queries=True)([_sample(16, 16, {"left kidney": (2, 9, 2, 9)})])
    plain = tokenizer.decode(batch.label_input_ids[0][batch.label_attention_mask[0].bool()])
    assert "Please segment and locate the left kidney in this image." in plain and "[SEG]" in plain
    assert batch.label_input_ids.shape[0] == batch.input_ids.shape[0]
