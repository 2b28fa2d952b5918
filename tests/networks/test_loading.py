"""HF-format LLaVA directories and trained MediSee checkpoints load to identical outputs."""

from __future__ import annotations

import json

import pytest
import torch

from networks import WeightsError, save_checkpoint
from tests.helpers.batches import make_batch
from tests.helpers.tiny import build_tiny


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory):
    """A tiny HF LLaVA directory and MedSAM .pth, written from a seeded tiny model."""
    root = tmp_path_factory.mktemp("weights")
    model, tokenizer = build_tiny(seed=3)
    llava = model.llava
    # remove the LoRA layers: an HF LLaVA directory holds plain weights
    from networks.llava import random_llava

    plain = random_llava(llava.config)
    plain.load_state_dict(dict(_base_state(llava)))
    plain.save_pretrained(root / "llava")
    tokenizer.save_pretrained(root / "llava")
    torch.save(model.medsam.sam.state_dict(), root / "medsam_vit_b.pth")
    return root


def _base_state(llava) -> dict:
    """LLaVA weights with peft's LoRA wrappers folded back to plain names (adapters dropped)."""
    out = {}
    for name, tensor in llava.state_dict().items():
        if ".lora_" in name:
            continue
        out[name.replace(".base_layer.", ".")] = tensor
    return out


def _build(weights_dir, seed, **extra):
    return build_tiny(
        seed=seed, llava_path=str(weights_dir / "llava"), medsam_path=str(weights_dir / "medsam_vit_b.pth"), **extra
    )


def test_hf_llava_directory_and_medsam_load_to_identical_outputs(weights_dir):
    a, tokenizer = _build(weights_dir, seed=10)
    b, _ = _build(weights_dir, seed=11)
    batch = make_batch(a, tokenizer)
    with torch.no_grad():
        assert torch.equal(a.eval()(**batch).candidate_states, b.eval()(**batch).candidate_states)


def test_trained_checkpoint_restores_identical_outputs(weights_dir, tmp_path):
    model, tokenizer = _build(weights_dir, seed=20)
    torch.manual_seed(5)
    with torch.no_grad():  # stand in for training: every trainable tensor moves
        for param in model.parameters():
            if param.requires_grad:
                param.add_(torch.randn_like(param) * 0.05)
    save_checkpoint(model, tokenizer, tmp_path / "ckpt")
    restored, tokenizer2 = _build(weights_dir, seed=21, checkpoint=str(tmp_path / "ckpt"))
    untrained, _ = _build(weights_dir, seed=21)
    batch = make_batch(model, tokenizer)
    with torch.no_grad():
        expected = model.eval()(**batch)
        got = restored.eval()(**batch)
        other = untrained.eval()(**batch)
    assert tokenizer2.get_vocab() == tokenizer.get_vocab()
    for field in ("sam_mask_logits", "boxes_xyxy", "lm_loss", "seg_weights"):
        assert torch.equal(getattr(expected, field), getattr(got, field)), field
    assert not torch.allclose(expected.boxes_xyxy, other.boxes_xyxy)


def test_full_checkpoint_restores_a_randomly_initialised_model(tmp_path):
    model, tokenizer = build_tiny(seed=30)
    save_checkpoint(model, tokenizer, tmp_path / "demo", include="all")
    restored, _ = build_tiny(seed=31, checkpoint=str(tmp_path / "demo"))
    batch = make_batch(model, tokenizer)
    with torch.no_grad():
        assert torch.equal(model.eval()(**batch).sam_mask_logits, restored.eval()(**batch).sam_mask_logits)


def test_checkpoint_save_leaves_no_partial_directory(tmp_path, monkeypatch):
    model, tokenizer = build_tiny(seed=32)
    monkeypatch.setattr(tokenizer, "save_pretrained", lambda *_: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        save_checkpoint(model, tokenizer, tmp_path / "ckpt")
    assert list(tmp_path.iterdir()) == []


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    model, tokenizer = build_tiny(seed=33)
    save_checkpoint(model, tokenizer, tmp_path / "ckpt")
    (tmp_path / "ckpt" / "medisee.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(WeightsError, match="cannot read MediSee checkpoint"):
        build_tiny(seed=33, checkpoint=str(tmp_path / "ckpt"))


def test_checkpoint_of_another_architecture_is_rejected_with_names(tmp_path):
    model, tokenizer = build_tiny(seed=34, **{"medisee_config#router_hidden_size": 8})
    save_checkpoint(model, tokenizer, tmp_path / "ckpt")
    with pytest.raises(WeightsError, match=r"mismatched shapes: .*router"):
        build_tiny(seed=34, checkpoint=str(tmp_path / "ckpt"))


def test_checkpoint_with_other_candidate_tokens_is_rejected(tmp_path):
    model, tokenizer = build_tiny(seed=35, **{"medisee_config#candidate_tokens": ["[SEG]"]})
    save_checkpoint(model, tokenizer, tmp_path / "ckpt")
    meta = json.loads((tmp_path / "ckpt" / "medisee.json").read_text())
    meta["candidate_token_ids"] = [1, 2]
    (tmp_path / "ckpt" / "medisee.json").write_text(json.dumps(meta))
    with pytest.raises(WeightsError, match="candidate_token_ids"):
        build_tiny(seed=35, checkpoint=str(tmp_path / "ckpt"))


def test_a_llava_med_directory_given_as_llava_path_says_to_convert(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llava_mistral"}))
    from networks.llava import load_llava

    with pytest.raises(WeightsError, match="networks.convert"):
        load_llava(tmp_path)


def test_an_llava_directory_with_missing_weights_names_them(weights_dir, tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    from networks.llava import load_llava

    broken = tmp_path / "llava"
    shutil.copytree(weights_dir / "llava", broken)
    weights = next(broken.glob("*.safetensors"))
    state = load_file(weights)
    state.pop(next(k for k in state if k.endswith("multi_modal_projector.linear_2.bias")))
    save_file(state, weights, metadata={"format": "pt"})
    with pytest.raises(WeightsError, match=r"missing keys: .*linear_2\.bias"):
        load_llava(broken)


def test_a_folder_of_checkpoints_loads_the_newest(tmp_path):
    model, tokenizer = build_tiny(seed=36)
    save_checkpoint(model, tokenizer, tmp_path / "checkpoints" / "iteration_00000002")
    with torch.no_grad():
        for param in model.parameters():
            if param.requires_grad:
                param.add_(0.1)
    save_checkpoint(model, tokenizer, tmp_path / "checkpoints" / "iteration_00000010")
    restored, _ = build_tiny(seed=37, checkpoint=str(tmp_path / "checkpoints"))
    assert torch.equal(restored.box_head.mlp[0].weight, model.box_head.mlp[0].weight)
