"""The typed batch: one builder for the collate and the volume inferer, moved and unpacked by field."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from bundle.data.base import Target
from bundle.data.batch import MediSeeBatch
from bundle.data.collate import MediSeeCollate
from bundle.data.queries import Query
from bundle.inference.inferer import slice_batch
from bundle.prompts import PromptBuilder

QUESTION = "Which organ here filters blood and makes urine?"


def _sample(image: torch.Tensor, name: str = "right kidney") -> dict:
    mask = torch.zeros(image.shape[-2:], dtype=torch.bool)
    mask[2:9, 3:12] = True
    return {
        "image": image,
        "targets": [Target(mask, name, Query("long", QUESTION, "It filters blood."))],
        "source": "a#3",
    }


def _collate(model, tokenizer, **kwargs) -> MediSeeCollate:
    return MediSeeCollate(PromptBuilder.for_model(tokenizer, model), *model.input_sizes, **kwargs)


def test_the_collate_and_the_volume_inferer_give_the_model_the_same_inputs_for_a_slice(tiny):
    model, tokenizer = tiny
    image = torch.rand(1, 30, 22, generator=torch.Generator().manual_seed(0))
    collated = _collate(model, tokenizer, teacher_forced=True)([_sample(image)])
    prompts = PromptBuilder.for_model(tokenizer, model)
    inferred = slice_batch(model, [image], prompts.inference_example(QUESTION), tokenizer.pad_token_id)
    ours, theirs = collated.model_inputs(targets=False), inferred.model_inputs(targets=False)
    assert ours.keys() == theirs.keys()
    for key, value in ours.items():
        assert torch.equal(value, theirs[key]), key


def test_to_moves_every_tensor_and_keeps_the_rest(tiny):
    model, tokenizer = tiny
    batch = _collate(model, tokenizer)([_sample(torch.rand(1, 16, 16))])
    moved = batch.to("meta")
    assert moved is not batch and moved.input_ids.device.type == "meta" and moved.boxes.device.type == "meta"
    assert all(m.device.type == "meta" for m in moved.masks)
    assert moved.questions == [QUESTION] and moved.image_sources == ["a#3"]
    assert batch.input_ids.device.type == "cpu"  # the original batch stays where it was


def test_model_inputs_pass_the_embeddings_instead_of_the_pixels_and_the_label_query_when_asked(tiny):
    model, tokenizer = tiny
    batch = _collate(model, tokenizer, with_label_queries=True)([_sample(torch.rand(1, 16, 16))])
    assert "sam_pixel_values" in batch.model_inputs() and "labels" in batch.model_inputs()
    embeddings = torch.zeros(1, 4, 2, 2)
    inputs = batch.model_inputs(embeddings, targets=False)
    assert inputs["sam_image_embeddings"] is embeddings and not {"sam_pixel_values", "labels"} & inputs.keys()
    plain = batch.model_inputs(embeddings, label_query=True)
    assert plain["input_ids"] is batch.label_input_ids and "labels" not in plain
    with pytest.raises(ValueError, match="with_label_queries"):
        _collate(model, tokenizer)([_sample(torch.rand(1, 16, 16))]).model_inputs(label_query=True)


def test_a_batch_without_presence_targets_asks_about_visible_structures_only(tiny):
    model, tokenizer = tiny
    batch = _collate(model, tokenizer)([_sample(torch.rand(1, 16, 16))])
    batch.present = None
    assert batch.present_or_all().tolist() == [True]


def test_batches_cross_worker_processes_whole(tiny):
    model, tokenizer = tiny
    samples = [_sample(torch.rand(1, 16, 16)), _sample(torch.rand(1, 20, 12), "liver")]
    loader = DataLoader(samples, batch_size=2, collate_fn=_collate(model, tokenizer), num_workers=1)
    (batch,) = list(loader)
    assert isinstance(batch, MediSeeBatch) and len(batch) == 2
    assert batch.class_names == ["right kidney", "liver"] and batch.original_sizes.tolist() == [[16, 16], [20, 12]]
