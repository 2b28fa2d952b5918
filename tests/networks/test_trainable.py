"""The trainable set and LoRA placement (paper Sec. 4.3)."""

from __future__ import annotations

import json
import re

import pytest
import torch
from peft.tuners.lora import LoraLayer

from common.errors import ConfigError, WeightsError
from networks.checkpoint import load_checkpoint, save_checkpoint
from networks.config import MediSeeConfig
from networks.trainable import component_of, trainable_report, upcast_trainable
from tests.helpers.tiny import build_tiny


def presence_for(trainable: str) -> str:
    """frozen_llm freezes the LM head the presence decision is read from: that ablation has none."""
    return "none" if trainable == "frozen_llm" else "token"


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


def lora_layer_names(model) -> list[str]:
    return [name for name, module in model.named_modules() if isinstance(module, LoraLayer)]


def test_a_frozen_llm_has_no_lora_and_trains_only_the_decoder_and_heads():
    model, _ = build_tiny(trainable="frozen_llm", presence="none")
    assert lora_layer_names(model) == []
    assert not any(p.requires_grad for n, p in model.named_parameters() if n.startswith("llava."))
    rows = {component: (total, trainable) for component, total, trainable in trainable_report(model)}
    for trained in ("text projection", "routers", "box head"):
        assert rows[trained][0] == rows[trained][1] > 0, trained
    iou_head = sum(p.numel() for n, p in model.named_parameters() if "iou_prediction_head" in n)
    assert rows["SAM mask decoder"][1] == rows["SAM mask decoder"][0] - iou_head > 0


def test_sam_lora_puts_lora_on_the_mask_decoders_attention_and_freezes_its_weights():
    model, _ = build_tiny(trainable="sam_lora")
    decoder = [n for n in lora_layer_names(model) if n.startswith("medsam.")]
    blocks = model.medsam.sam.mask_decoder.transformer
    # three attentions per two-way block, one final token-to-image attention; q and v each
    assert len(decoder) == 2 * (3 * len(blocks.layers) + 1)
    assert all(re.fullmatch(r"medsam\.sam\.mask_decoder\.transformer\..+\.(q|v)_proj", n) for n in decoder)
    llm = [n for n in lora_layer_names(model) if n.startswith("llava.")]
    assert len(llm) == 2 * model.llava.config.text_config.num_hidden_layers
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    in_decoder = {n for n in trainable if n.startswith("medsam.")}
    assert in_decoder and all(".lora_" in n for n in in_decoder)
    assert {"llava.lm_head.weight", "llava.model.language_model.embed_tokens.weight"} <= trainable
    layer = model.get_submodule(decoder[0])
    assert layer.r["default"] == 8 and layer.lora_alpha["default"] == 16  # the paper: every LoRA rank 8


@pytest.mark.parametrize("trainable", ["frozen_llm", "sam_lora"])
def test_each_ablation_checkpoints_and_reloads_its_trained_set(trainable, tmp_path):
    model, tokenizer = build_tiny(seed=5, trainable=trainable, presence=presence_for(trainable))
    with torch.no_grad():
        for param in model.parameters():
            if param.requires_grad:
                param.add_(torch.randn_like(param) * 0.01)  # as after training: LoRA B no longer zero
    save_checkpoint(model, tokenizer, tmp_path / "ckpt")
    saved = json.loads((tmp_path / "ckpt" / "medisee.json").read_text())
    assert saved["include"] == "trainable" and saved["medisee_config"]["trainable"] == trainable
    restored, _ = build_tiny(
        seed=5, trainable=trainable, checkpoint=str(tmp_path / "ckpt"), presence=presence_for(trainable)
    )
    fresh, _ = build_tiny(seed=5, trainable=trainable, presence=presence_for(trainable))
    mine, theirs, untouched = model.state_dict(), restored.state_dict(), fresh.state_dict()
    assert mine.keys() == theirs.keys()
    assert all(torch.equal(mine[n], theirs[n]) for n in mine)
    assert not all(torch.equal(mine[n], untouched[n]) for n in mine)


def test_a_checkpoint_loaded_under_another_trainable_set_names_the_set_it_needs(tmp_path):
    model, tokenizer = build_tiny(trainable="frozen_llm", presence="none")
    save_checkpoint(model, tokenizer, tmp_path / "ckpt")
    with pytest.raises(WeightsError, match="trained with trainable 'frozen_llm'.*config 'trainable'"):
        build_tiny(checkpoint=str(tmp_path / "ckpt"), presence="none")
