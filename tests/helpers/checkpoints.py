"""Tiny checkpoints in the real on-disk formats, written by the tests (random weights).

The original LLaVA-Med key names are spelled out here independently of ``networks.convert``,
so a wrong mapping in the converter cannot cancel out.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import sentencepiece as spm
import torch
from safetensors.torch import save_file
from transformers import CLIPConfig, CLIPModel

CORPUS = [
    "Please segment and locate the liver in this image.",
    "Which organ filters blood and makes urine? Please output segmentation mask and location bounding box.",
    "It is [SEG] and [BBOX]. The kidney sits behind the abdominal organs.",
    "[INST] <image>\nWhere is the spleen? [/INST] It is [SEG] and [BBOX].",
]


def write_sentencepiece_tokenizer(directory: Path, vocab_size: int = 300) -> Path:
    """A Llama/Mistral-style tokenizer: tokenizer.model (sentencepiece BPE, byte fallback) + config."""
    directory.mkdir(parents=True, exist_ok=True)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS * 20), model_writer=model, vocab_size=vocab_size, model_type="bpe",
        byte_fallback=True, unk_id=0, bos_id=1, eos_id=2, pad_id=-1, character_coverage=1.0,
        hard_vocab_limit=False, minloglevel=2, num_threads=1,
    )  # fmt: skip
    (directory / "tokenizer.model").write_bytes(model.getvalue())
    config = {
        "tokenizer_class": "LlamaTokenizer", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
        "pad_token": None, "add_bos_token": True, "add_eos_token": False, "legacy": False, "model_max_length": 4096,
    }  # fmt: skip
    (directory / "tokenizer_config.json").write_text(json.dumps(config))
    return directory


def llava_med_state_dict(hf_state: dict[str, torch.Tensor], vocab_size: int) -> dict[str, torch.Tensor]:
    """HF LLaVA weights renamed to the original llava_mistral names (language side only)."""
    out = {}
    for name, tensor in hf_state.items():
        if name.startswith("model.language_model."):
            out["model." + name[len("model.language_model.") :]] = tensor
        elif name.startswith("model.multi_modal_projector.linear_1."):
            out["model.mm_projector.0." + name.rsplit(".", 1)[1]] = tensor
        elif name.startswith("model.multi_modal_projector.linear_2."):
            out["model.mm_projector.2." + name.rsplit(".", 1)[1]] = tensor
        elif name.startswith("lm_head."):
            out[name] = tensor
    for name in ("model.embed_tokens.weight", "lm_head.weight"):
        out[name] = out[name][:vocab_size].clone()  # the source has no <image> row
    return out


def write_llava_med(directory: Path, hf_llava, vocab_size: int, fmt: str = "safetensors", shards: int = 2) -> Path:
    """Writes an original-format LLaVA-Med v1.5 directory (config, shards + index, tokenizer)."""
    directory.mkdir(parents=True, exist_ok=True)
    text, vision = hf_llava.config.text_config, hf_llava.config.vision_config
    config = {
        "architectures": ["LlavaMistralForCausalLM"], "model_type": "llava_mistral",
        "hidden_size": text.hidden_size, "intermediate_size": text.intermediate_size,
        "num_hidden_layers": text.num_hidden_layers, "num_attention_heads": text.num_attention_heads,
        "num_key_value_heads": text.num_key_value_heads, "vocab_size": vocab_size, "hidden_act": "silu",
        "max_position_embeddings": text.max_position_embeddings, "rms_norm_eps": text.rms_norm_eps,
        "rope_theta": text.rope_parameters["rope_theta"] if getattr(text, "rope_parameters", None) else text.rope_theta,
        "sliding_window": None, "tie_word_embeddings": False, "bos_token_id": 1, "eos_token_id": 2,
        "mm_hidden_size": vision.hidden_size, "mm_projector_type": "mlp2x_gelu", "mm_vision_select_layer": -2,
        "mm_vision_select_feature": "patch", "mm_vision_tower": "openai/clip-vit-large-patch14-336",
        "image_aspect_ratio": "pad", "mm_use_im_start_end": False, "mm_use_im_patch_token": False,
    }  # fmt: skip
    (directory / "config.json").write_text(json.dumps(config, indent=2))
    state = llava_med_state_dict(hf_llava.state_dict(), vocab_size)
    names = sorted(state)
    per_shard = -(-len(names) // shards)
    ext = "safetensors" if fmt == "safetensors" else "bin"
    stem = "model" if fmt == "safetensors" else "pytorch_model"
    weight_map = {}
    for i in range(shards):
        part = {n: state[n].contiguous() for n in names[i * per_shard : (i + 1) * per_shard]}
        file = f"{stem}-{i + 1:05d}-of-{shards:05d}.{ext}"
        if fmt == "safetensors":
            save_file(part, directory / file, metadata={"format": "pt"})
        else:
            torch.save(part, directory / file)
        weight_map.update(dict.fromkeys(part, file))
    index = {"metadata": {"total_size": 0}, "weight_map": weight_map}
    (directory / f"{stem}.{ext}.index.json").write_text(json.dumps(index))
    write_sentencepiece_tokenizer(directory)
    return directory


def clip_vision_state(hf_llava) -> dict[str, torch.Tensor]:
    """The CLIP vision weights of an HF LLaVA, named as in CLIPModel.vision_model (no prefix)."""
    state = hf_llava.model.vision_tower.state_dict()
    return {k.removeprefix("vision_model."): v for k, v in state.items()}


def write_clip(directory: Path, hf_llava) -> Path:
    """A full CLIPModel directory (vision + text towers), vision weights taken from ``hf_llava``."""
    vision = hf_llava.config.vision_config.to_dict()
    text = {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "vocab_size": 99,
    }
    clip = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=vision["projection_dim"]))
    clip.vision_model.load_state_dict(clip_vision_state(hf_llava))
    clip.save_pretrained(directory)
    return directory
