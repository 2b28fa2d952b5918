"""Sequence packing: the language model runs on the real tokens only and nothing downstream changes."""

from __future__ import annotations

import pytest
import torch

from bundle.data.batch import MediSeeBatch
from bundle.losses import MediSeeLoss
from networks.llava import set_attention
from networks.packing import pack_rows, set_sequence_packing, unpack_rows
from tests.helpers.batches import make_batch
from tests.helpers.tiny import build_tiny
from tests.helpers.training import batch_with_targets

INPUTS = (
    "input_ids",
    "attention_mask",
    "labels",
    "clip_pixel_values",
    "sam_pixel_values",
    "image_index",
    "original_sizes",
)


@pytest.fixture(scope="module")
def tiny_model():
    return build_tiny()


@pytest.mark.parametrize("side", ["right", "left"])
def test_packing_keeps_each_real_token_and_restarts_positions_per_row(side):
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]])
    if side == "left":
        mask = mask.flip(1)
    embeds = torch.arange(3 * 4 * 2, dtype=torch.float).reshape(3, 4, 2)
    packed = pack_rows(embeds, mask)
    assert packed.inputs_embeds.shape == (1, 9, 2)
    assert packed.position_ids.tolist() == [[0, 1, 2, 0, 1, 0, 1, 2, 3]]
    back = unpack_rows(packed.inputs_embeds, packed)
    assert torch.equal(back, embeds * mask.unsqueeze(-1))


def _forward(model, batch: MediSeeBatch, packed: bool):
    set_sequence_packing(model, packed)
    model.eval()  # LoRA dropout would draw its masks over differently shaped tensors
    model.zero_grad(set_to_none=True)
    outputs = model(**batch.model_inputs(), output_hidden_states=True)
    loss = MediSeeLoss()(outputs, batch)["loss"]
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    set_sequence_packing(model, False)
    return outputs, loss.detach(), grads


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_a_packed_batch_gives_the_padded_batchs_losses_gradients_and_outputs(tiny_model, attention):
    model, tokenizer = tiny_model
    set_attention(model.llava, attention)
    batch = batch_with_targets(model, tokenizer)
    assert not bool(batch.attention_mask.all())  # the rows differ in length: there is padding to drop
    padded, padded_loss, padded_grads = _forward(model, batch, packed=False)
    packed, packed_loss, packed_grads = _forward(model, batch, packed=True)
    set_attention(model.llava, "sdpa")

    assert torch.allclose(packed_loss, padded_loss, atol=1e-5)
    assert packed_grads.keys() == padded_grads.keys() and any(".lora_" in name for name in packed_grads)
    for name, grad in packed_grads.items():
        assert torch.allclose(grad, padded_grads[name], atol=1e-5, rtol=1e-3), name
    real = batch.attention_mask.bool()
    assert torch.allclose(packed.last_hidden_state[real], padded.last_hidden_state[real], atol=1e-4)
    assert torch.allclose(packed.boxes_xyxy, padded.boxes_xyxy, atol=1e-5)
    assert torch.allclose(packed.candidate_states, padded.candidate_states, atol=1e-4)


def test_left_padded_rows_pack_like_right_padded_ones(tiny_model):
    model, tokenizer = tiny_model
    right = make_batch(model, tokenizer, padding_side="right")
    left = make_batch(model, tokenizer, padding_side="left")
    model.eval()
    with torch.no_grad():
        set_sequence_packing(model, True)
        outputs = [model(**{k: b[k] for k in INPUTS if k in b}) for b in (right, left)]
        set_sequence_packing(model, False)
    assert torch.allclose(outputs[0].boxes_xyxy, outputs[1].boxes_xyxy, atol=1e-5)
    assert torch.allclose(outputs[0].seg_state, outputs[1].seg_state, atol=1e-4)


def test_packing_runs_the_language_model_on_real_tokens_only(tiny_model):
    model, tokenizer = tiny_model
    batch = batch_with_targets(model, tokenizer)
    seen = []
    hook = model.llava.model.language_model.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(kwargs["inputs_embeds"].shape[:2]), with_kwargs=True
    )
    try:
        _forward(model, batch, packed=True)
    finally:
        hook.remove()
    assert seen == [(1, int(batch.attention_mask.sum()))]


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:_compile flag on create_block_mask")  # transformers' call, not ours
def test_flex_attention_attends_within_each_packed_conversation(tiny_model):
    """flex_attention (PyTorch's block-sparse kernel, compiled) on packed rows = sdpa on padded rows."""
    model, tokenizer = tiny_model
    batch = batch_with_targets(model, tokenizer)
    model.eval()
    inputs = batch.model_inputs(targets=False)
    with torch.no_grad():
        padded = model(**inputs)
        set_attention(model.llava, "flex_attention")
        set_sequence_packing(model, True)
        try:
            packed = model(**inputs)
        finally:
            set_sequence_packing(model, False)
            set_attention(model.llava, "sdpa")
    assert torch.allclose(packed.boxes_xyxy, padded.boxes_xyxy, atol=1e-4)
    assert torch.allclose(packed.seg_state, padded.seg_state, atol=1e-3)
