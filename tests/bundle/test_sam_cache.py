"""Caching the frozen SAM image embeddings across epochs."""

from __future__ import annotations

import pytest
import torch
from ignite.engine import Events

from bundle.engines import MediSeeEvaluator, SamEmbeddingCache
from common.errors import ConfigError
from tests.helpers.tiny import build_tiny
from tests.helpers.training import batch_with_targets, tiny_trainer

EPOCHS = 2


def _batches(model, tokenizer) -> list[dict]:
    """Two batches of three images each, every image with its own source."""
    batches = []
    for b in range(2):
        batch = batch_with_targets(model, tokenizer)
        batch.sam_pixel_values = batch.sam_pixel_values + b  # different images in each batch
        batch.image_sources = [f"volume{b}.nii.gz#slice{i}" for i in range(len(batch.sam_pixel_values))]
        batches.append(batch)
    return batches


def _train(sam_cache: SamEmbeddingCache | None) -> tuple[list[float], list[int]]:
    """Losses of every iteration and the batch sizes the SAM image encoder saw."""
    model, tokenizer = build_tiny(seed=3)
    encoded: list[int] = []
    model.medsam.sam.image_encoder.register_forward_hook(lambda module, args, out: encoded.append(len(args[0])))
    losses: list[float] = []
    trainer = tiny_trainer(model, _batches(model, tokenizer), max_epochs=EPOCHS, sam_cache=sam_cache)
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda engine: losses.append(engine.state.output["loss"]))
    torch.manual_seed(0)
    trainer.run()
    return losses, encoded


def test_cached_embeddings_train_exactly_as_encoding_every_step():
    plain_losses, plain_encoded = _train(None)
    cache = SamEmbeddingCache(max_gib=1.0)
    losses, encoded = _train(cache)
    assert plain_encoded == [3, 3] * EPOCHS
    assert encoded == [3, 3]  # the second epoch reads every embedding from the cache
    assert cache.hits == 6 and cache.misses == 6 and len(cache) == 6
    assert losses == pytest.approx(plain_losses, rel=1e-5, abs=1e-6)


def test_the_cache_stays_within_its_memory_budget():
    model, _ = build_tiny()
    pixels = torch.rand(4, 3, model.medsam.image_size, model.medsam.image_size)
    one = model.medsam.encode_images(pixels[:1])
    budget = 2.5 * one.numel() * one.element_size() / 2**30  # room for two embeddings
    cache = SamEmbeddingCache(max_gib=budget)
    with torch.no_grad():
        first = cache.embed([f"s{i}" for i in range(4)], pixels, model.medsam.encode_images)
        again = cache.embed([f"s{i}" for i in range(4)], pixels, model.medsam.encode_images)
    assert len(cache) == 2 and cache.bytes <= cache.max_bytes
    assert cache.hits == 2 and cache.misses == 6
    assert torch.allclose(first, again, atol=1e-6)


def test_caching_is_refused_when_the_encoder_trains_or_the_budget_is_not_positive():
    model, tokenizer = build_tiny(trainable="all")
    with pytest.raises(ConfigError, match="sam_cache_gib"):
        tiny_trainer(model, [batch_with_targets(model, tokenizer)], sam_cache=SamEmbeddingCache(max_gib=1.0))
    with pytest.raises(ConfigError, match="sam_cache_gib"):
        SamEmbeddingCache(max_gib=0)


def test_evaluation_with_the_cache_encodes_each_slice_once_and_gives_the_same_outputs():
    model, tokenizer = build_tiny(seed=4)
    encoded: list[int] = []
    model.medsam.sam.image_encoder.register_forward_hook(lambda module, args, out: encoded.append(len(args[0])))
    batch = batch_with_targets(model, tokenizer)
    batch.sam_pixel_values[2] = batch.sam_pixel_values[0]  # rows 0 and 2 ask about the same slice
    batch.image_sources = ["a.nii.gz#slice3", "a.nii.gz#slice4", "a.nii.gz#slice3"]
    batch.kinds = ["label", "short", "long"]
    outputs = []
    for cache in (None, SamEmbeddingCache(max_gib=1.0)):
        evaluator = MediSeeEvaluator(
            device=torch.device("cpu"), val_data_loader=[batch, batch], network=model, sam_cache=cache
        )
        evaluator.add_event_handler(Events.ITERATION_COMPLETED, lambda engine: outputs.append(engine.state.output))
        encoded.clear()
        evaluator.run()
        assert encoded == ([3, 3] if cache is None else [2])  # two distinct slices, encoded once in all
    plain, cached = outputs[:2], outputs[2:]
    for a, b in zip(plain, cached):
        torch.testing.assert_close(a["pred_boxes"], b["pred_boxes"], atol=1e-5, rtol=0)
        for m, n in zip(a["pred_masks"], b["pred_masks"]):
            torch.testing.assert_close(m, n, atol=1e-4, rtol=0)
