"""The trainable set and LoRA placement (paper Sec. 4.3)."""

from __future__ import annotations

import json
import re

import pytest
import torch
from peft.tuners.lora import LoraLayer

from networks.checkpoint import load_checkpoint, save_checkpoint
from networks.config import MediSeeConfig
from networks.errors import ConfigError
from networks.trainable import component_of, trainable_report, upcast_trainable
from tests.conftest import build_tiny


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
    assert rows["total"] == (
        sum(p.numel() for p in model.parameters()),
        sum(p.numel() for p in model.parameters() if p.requires_grad),
    )


def test_every_parameter_belongs_to_a_named_component(tiny):
    model, _ = tiny
    assert [n for n, _ in model.named_parameters() if component_of(n) == "other"] == []


def test_training_from_scratch_trains_every_component_but_the_unreached_ones():
    model, _ = build_tiny(trainable="all")
    rows = {component: (total, trainable) for component, total, trainable in trainable_report(model)}
    for component in ("vision tower (CLIP)", "projector", "LM base (Mistral)", "SAM image encoder", "box head"):
        assert rows[component][0] == rows[component][1] > 0, component
    assert rows["SAM prompt encoder"][1] == 0
    assert not any(p.requires_grad for n, p in model.named_parameters() if "iou_prediction_head" in n)


def test_an_unknown_trainable_set_is_refused_naming_the_key():
    with pytest.raises(ConfigError, match="medisee_config#trainable"):
        MediSeeConfig.from_dict({"trainable": "everything"})


def test_a_model_trained_from_scratch_saves_its_buffers_too(tmp_path):
    model, tokenizer = build_tiny(trainable="all")
    save_checkpoint(model, tokenizer, tmp_path / "ckpt")
    meta = json.loads((tmp_path / "ckpt" / "medisee.json").read_text())
    assert meta["include"] == "all"
    # SAM's random Fourier positional-encoding matrix is a buffer, not a parameter
    torch.manual_seed(123)
    other, _ = build_tiny(seed=123, trainable="all")
    load_checkpoint(other, tmp_path / "ckpt")
    for (name, a), (_, b) in zip(model.state_dict().items(), other.state_dict().items()):
        assert torch.equal(a, b), name


def test_master_weights_hold_the_trainable_set_in_float32_and_leave_the_frozen_weights_in_bf16():
    model, _ = build_tiny(dtype="bfloat16")
    params = dict(model.named_parameters())
    upcast_trainable(model, "float32")
    after = dict(model.named_parameters())
    assert all(after[name] is params[name] for name in params)  # optimisers built later see the same objects
    assert {p.dtype for p in after.values() if p.requires_grad} == {torch.float32}
    assert {p.dtype for p in after.values() if not p.requires_grad} == {torch.bfloat16}


def test_a_master_dtype_that_is_not_a_float_is_refused_naming_the_key():
    model, _ = build_tiny()
    for bad in ("int8", "float33"):
        with pytest.raises(ConfigError, match="master_dtype"):
            upcast_trainable(model, bad)
