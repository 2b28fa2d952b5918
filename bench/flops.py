"""Matmul FLOPs of MediSee on one slice, counted from the bundle config's sizes.

Counts what ``torch.utils.flop_counter.FlopCounterMode`` counts (matrix products and
convolutions, 2 FLOPs per multiply-add; attention over the full L x L square, causal or not, as
the counter does) for the teacher-forced mask/box forward of one slice with a prompt of
``seq_len`` tokens: CLIP tower, projector, the language model to its last hidden states (no
vocabulary-wide logits, but the one row of them the presence score reads), routers, heads, SAM image
encoder, prompt encoder and mask decoder.
``tests/bench/test_flops.py`` checks the count against the counter on the tiny model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

SAM_MLP_RATIO = 4
SAM_DECODER_OUTPUT_TOKENS = 4 + 1  # 3 multimask outputs + 1 single-mask token, and the IoU token
SAM_CROSS_ATTENTION_DOWNSAMPLE = 2
SAM_UPSCALE_CHANNELS = (4, 8)  # transformer_dim // 4, // 8 after the two transposed convolutions
SAM_HEAD_LAYERS = 3
PE_FEATURES_PER_AXIS = 2  # the random Fourier matrix maps (x, y) to prompt_dim // 2 features
BOX_CORNERS = 2
TEXT_PROMPT_TOKENS = 1
PIXEL_CHANNELS = 3


def linear(tokens: int, fan_in: int, fan_out: int) -> int:
    """FLOPs of a dense layer applied to ``tokens`` vectors."""
    return 2 * tokens * fan_in * fan_out


def attention(queries: int, keys: int, dim: int) -> int:
    """FLOPs of scores (Q K^T) and weighted values over all heads (``dim`` = heads x head size)."""
    return 2 * 2 * queries * keys * dim


def language_model(text: Mapping[str, Any], seq_len: int, lora_r: int = 0, context: int | None = None) -> int:
    """Mistral decoder layers over ``seq_len`` new tokens, stopping at the last hidden states.

    Args:
        text: the Mistral sizes.
        seq_len: tokens computed.
        lora_r: rank of the (unmerged) LoRA adapters on q_proj and v_proj; 0 = none.
        context: tokens attended to (KV cache included); default ``seq_len``.
    """
    hidden, layers = text["hidden_size"], text["num_hidden_layers"]
    head_dim = text.get("head_dim") or hidden // text["num_attention_heads"]
    kv = text["num_key_value_heads"] * head_dim
    q_out = text["num_attention_heads"] * head_dim
    per_layer = (
        linear(seq_len, hidden, q_out)
        + 2 * linear(seq_len, hidden, kv)
        + attention(seq_len, seq_len if context is None else context, q_out)
        + linear(seq_len, q_out, hidden)
        + 3 * linear(seq_len, hidden, text["intermediate_size"])  # gate, up, down
    )
    if lora_r:
        per_layer += linear(seq_len, hidden, lora_r) + linear(seq_len, lora_r, q_out)
        per_layer += linear(seq_len, hidden, lora_r) + linear(seq_len, lora_r, kv)
    return layers * per_layer


def vision_tower(vision: Mapping[str, Any]) -> int:
    """CLIP ViT on one image: patch embedding and every encoder layer (CLS token included)."""
    width, patch = vision["hidden_size"], vision["patch_size"]
    patches = (vision["image_size"] // patch) ** 2
    tokens = patches + 1
    per_layer = 4 * linear(tokens, width, width) + attention(tokens, tokens, width)
    per_layer += 2 * linear(tokens, width, vision["intermediate_size"])
    return linear(patches, PIXEL_CHANNELS * patch * patch, width) + vision["num_hidden_layers"] * per_layer


def projector(vision: Mapping[str, Any], text: Mapping[str, Any]) -> int:
    """The two-layer projector on the image's patch features (CLS dropped)."""
    patches = (vision["image_size"] // vision["patch_size"]) ** 2
    return linear(patches, vision["hidden_size"], text["hidden_size"]) + linear(
        patches, text["hidden_size"], text["hidden_size"]
    )


def heads(text: Mapping[str, Any], sam: Mapping[str, Any], n: int, router_hidden: int, box_hidden: int) -> int:
    """Both routers, the text projection and the box head on one row."""
    hidden = text["hidden_size"]
    router = linear(1, n * hidden, router_hidden) + linear(1, router_hidden, n)
    text_projection = linear(1, hidden, hidden) + linear(1, hidden, sam["prompt_embed_dim"])
    box_head = linear(1, hidden, box_hidden) + linear(1, box_hidden, box_hidden) + linear(1, box_hidden, 4)
    return 2 * router + text_projection + box_head


def presence(text: Mapping[str, Any], mode: str) -> int:
    """The LM head on the decision state (the presence score); the vocabulary counted at ``vocab_size``
    (the tokenizer's few added tokens are left out)."""
    return linear(1, text["hidden_size"], text["vocab_size"]) if mode == "token" else 0


def sam_image_encoder(sam: Mapping[str, Any]) -> int:
    """SAM ViT: windowed blocks run attention on the padded grid; global ones add decomposed rel-pos terms."""
    width, side = sam["encoder_embed_dim"], sam["image_size"] // sam["patch_size"]
    window, tokens, out = sam["window_size"], side * side, sam["prompt_embed_dim"]
    total = linear(tokens, PIXEL_CHANNELS * sam["patch_size"] ** 2, width)
    for block in range(sam["encoder_depth"]):
        if block in sam["encoder_global_attn_indexes"]:
            group, groups = side, 1
        else:
            group, groups = window, math.ceil(side / window) ** 2
        attended = groups * group * group
        total += 4 * linear(attended, width, width)  # qkv and proj (padding tokens included)
        total += groups * attention(group * group, group * group, width)
        total += groups * 2 * 2 * group * group * group * width  # q . R_h and q . R_w
        total += 2 * linear(tokens, width, SAM_MLP_RATIO * width)
    return total + linear(tokens, width, out) + linear(tokens, 9 * out, out)  # neck: 1x1 and 3x3 convs


def sam_prompt_and_decoder(sam: Mapping[str, Any], box_prompt: bool = True, text_prompt: bool = True) -> int:
    """Prompt encoder (box corners, dense positional grid) and the two-way mask decoder on one prompt set."""
    dim, side = sam["prompt_embed_dim"], sam["image_size"] // sam["patch_size"]
    image, inner = side * side, dim // SAM_CROSS_ATTENTION_DOWNSAMPLE
    corners = BOX_CORNERS if box_prompt else 0
    tokens = SAM_DECODER_OUTPUT_TOKENS + corners + (TEXT_PROMPT_TOKENS if text_prompt else 0)
    total = linear(corners + image, PE_FEATURES_PER_AXIS, dim // 2)

    def token_to_image() -> int:
        return (
            linear(tokens, dim, inner)
            + 2 * linear(image, dim, inner)
            + attention(tokens, image, inner)
            + linear(tokens, inner, dim)
        )

    per_layer = 4 * linear(tokens, dim, dim) + attention(tokens, tokens, dim)  # token self-attention
    per_layer += token_to_image() + 2 * linear(tokens, dim, sam["decoder_mlp_dim"])
    per_layer += linear(image, dim, inner) + 2 * linear(tokens, dim, inner) + attention(image, tokens, inner)
    per_layer += linear(image, inner, dim)  # image-to-token attention output
    total += sam["decoder_depth"] * per_layer + token_to_image()
    c1, c2 = dim // SAM_UPSCALE_CHANNELS[0], dim // SAM_UPSCALE_CHANNELS[1]
    total += linear(image * 4, dim, c1) + linear(image * 16, c1, c2)  # 2x2 stride-2 transposed convs
    masks = SAM_DECODER_OUTPUT_TOKENS - 1
    total += masks * (2 * linear(1, dim, dim) + linear(1, dim, c2))  # hypernetwork MLPs
    total += linear(masks, c2, image * 16)  # mask = hyper_in @ upscaled embedding
    hidden = sam["iou_head_hidden_dim"]
    total += linear(1, dim, hidden) + linear(1, hidden, hidden) + linear(1, hidden, masks)
    return total


def slice_flops(config: Mapping[str, Any], seq_len: int) -> dict[str, int]:
    """Matmul FLOPs of one slice's teacher-forced forward, by component.

    Args:
        config: the bundle config's sizes: ``text_config``, ``vision_config``, ``sam_config``,
            ``medisee_config`` (candidate tokens, router and box head sizes, prompts used).
        seq_len: tokens in the slice's conversation (image tokens included).
    """
    text, vision, sam, medisee = (
        config["text_config"],
        config["vision_config"],
        config["sam_config"],
        config["medisee_config"],
    )
    return {
        "CLIP tower": vision_tower(vision),
        "projector": projector(vision, text),
        "language model": language_model(text, seq_len, medisee.get("lora_r", 0)),
        "routers and heads": heads(
            text, sam, len(medisee["candidate_tokens"]), medisee["router_hidden_size"], medisee["box_head_hidden_size"]
        )
        + presence(text, medisee.get("presence", "token")),
        "SAM image encoder": sam_image_encoder(sam),
        "SAM prompt + decoder": sam_prompt_and_decoder(
            sam, medisee.get("use_box_prompt", True), medisee.get("use_text_prompt", True)
        ),
    }


def generated_token_flops(config: Mapping[str, Any], context: int) -> int:
    """FLOPs of one generated token (KV cache on) after ``context`` tokens, vocabulary logits included."""
    text = config["text_config"]
    lm = language_model(text, 1, config["medisee_config"].get("lora_r", 0), context=context + 1)
    return lm + linear(1, text["hidden_size"], text["vocab_size"])
