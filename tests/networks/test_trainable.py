"""The trainable set and LoRA placement (paper Sec. 4.3)."""

from __future__ import annotations

import re

from peft.tuners.lora import LoraLayer

from networks.trainable import component_of, trainable_report


def test_lora_sits_only_on_the_language_models_q_and_v(tiny):
    model, _ = tiny
    wrapped = [name for name, module in model.named_modules() if isinstance(module, LoraLayer)]
    layers = model.llava.config.text_config.num_hidden_layers
    assert len(wrapped) == 2 * layers
    assert all(re.fullmatch(r"llava\.model\.language_model\.layers\.\d+\.self_attn\.(q|v)_proj", n) for n in wrapped)


def test_lora_hyperparameters_follow_the_paper(tiny):
    model, _ = tiny
    layer = next(m for m in model.modules() if isinstance(m, LoraLayer))
    assert layer.r["default"] == 8 and layer.lora_alpha["default"] == 16
    assert abs(layer.lora_dropout["default"].p - 0.05) < 1e-9


def test_frozen_and_trained_components(tiny):
    model, _ = tiny
    rows = {component: (total, trainable) for component, total, trainable in trainable_report(model)}
    for frozen in ("vision tower (CLIP)", "projector", "LM base (Mistral)", "SAM image encoder", "SAM prompt encoder"):
        assert rows[frozen][1] == 0, frozen
    for trained in ("LoRA adapters", "LM embed_tokens", "LM lm_head", "text projection", "routers", "box head"):
        assert rows[trained][0] == rows[trained][1] > 0, trained
    decoder_total, decoder_trained = rows["SAM mask decoder"]
    iou_head = sum(p.numel() for n, p in model.named_parameters() if "iou_prediction_head" in n)
    assert decoder_trained == decoder_total - iou_head
    assert rows["total"] == (sum(p.numel() for p in model.parameters()), sum(p.numel() for p in model.parameters() if p.requires_grad))


def test_every_parameter_belongs_to_a_named_component(tiny):
    model, _ = tiny
    assert [n for n, _ in model.named_parameters() if component_of(n) == "other"] == []
