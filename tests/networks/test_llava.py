"""The LLaVA part's switches: gradient checkpointing of the language model."""

from __future__ import annotations

import torch

from bundle.losses import MediSeeLoss
from networks.llava import set_gradient_checkpointing
from tests.bundle.test_trainer import batch_with_targets
from tests.conftest import build_tiny


def _loss_and_gradients(model, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    model.train()
    model.zero_grad(set_to_none=True)
    torch.manual_seed(1)  # LoRA dropout draws the same masks in both runs
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "labels", "clip_pixel_values", "sam_pixel_values", "image_index", "original_sizes")}
    loss = MediSeeLoss()(model(**inputs), batch)["loss"]
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def _checkpointing(model) -> bool:
    llava = model.llava
    name = "is_activation_checkpointing" if hasattr(llava, "is_activation_checkpointing") else "is_gradient_checkpointing"
    return getattr(llava, name)  # the transformers 5 name, or the 4 one


def test_gradient_checkpointing_recomputes_the_same_loss_and_gradients():
    model, tokenizer = build_tiny()
    batch = batch_with_targets(model, tokenizer)
    plain_loss, plain_grads = _loss_and_gradients(model, batch)

    assert set_gradient_checkpointing(model, True) is model
    assert _checkpointing(model)
    loss, grads = _loss_and_gradients(model, batch)
    assert torch.allclose(loss, plain_loss, atol=1e-6)
    assert grads.keys() == plain_grads.keys() and any(".lora_" in name for name in grads)
    for name, grad in grads.items():
        assert torch.allclose(grad, plain_grads[name], atol=1e-6, rtol=1e-4), name

    set_gradient_checkpointing(model, False)
    assert not _checkpointing(model)
