"""The LLaVA part's switches: gradient checkpointing of the language model, the attention kernel."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from bundle.data.batch import MediSeeBatch
from bundle.losses import MediSeeLoss
from common.errors import ConfigError
from networks.llava import set_attention, set_gradient_checkpointing
from tests.helpers.tiny import build_tiny
from tests.helpers.training import batch_with_targets


def _loss_and_gradients(model, batch: MediSeeBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    model.train()
    model.zero_grad(set_to_none=True)
    torch.manual_seed(1)  # LoRA dropout draws the same masks in both runs
    loss = MediSeeLoss()(model(**batch.model_inputs()), batch)["loss"]
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def _checkpointing(model) -> bool:
    llava = model.llava
    name = (
        "is_activation_checkpointing" if hasattr(llava, "is_activation_checkpointing") else "is_gradient_checkpointing"
    )
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


def test_eager_and_sdpa_attention_give_the_same_outputs():
    model, tokenizer = build_tiny(attn_implementation="eager")
    assert model.llava.config.text_config._attn_implementation == "eager"
    batch = batch_with_targets(model, tokenizer)
    inputs = batch.model_inputs(targets=False)
    model.eval()
    with torch.no_grad():
        eager = model(**inputs)
        set_attention(model.llava, "sdpa")
        sdpa = model(**inputs)
    assert torch.allclose(eager.boxes_xyxy, sdpa.boxes_xyxy, atol=1e-5)
    for a, b in zip(eager.mask_logits, sdpa.mask_logits):
        assert torch.allclose(a, b, atol=1e-4)


@pytest.mark.parametrize("name", ["flash", "kernels-community/flash-attn"])
def test_an_unknown_attention_kernel_is_refused_naming_the_key(name):
    model, _ = build_tiny()
    with pytest.raises(ConfigError, match="attn_implementation"):
        set_attention(model.llava, name)


def test_a_flash_attention_kernel_without_its_package_is_a_config_error():
    if importlib.util.find_spec("flash_attn") is not None:
        pytest.skip("flash-attn is installed here, so the kernel is usable")
    model, _ = build_tiny()
    with pytest.raises(ConfigError, match="attn_implementation.*flash_attention_2"):
        set_attention(model.llava, "flash_attention_2")
    assert model.llava.config.text_config._attn_implementation == "sdpa"  # left as it was
