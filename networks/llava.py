"""The multimodal LLM: ``transformers.LlavaForConditionalGeneration`` (Mistral + CLIP ViT).

Either built from size dictionaries (random weights: tests, benchmarks, the demo model) or
loaded from an HF-format LLaVA directory (``networks.convert`` makes one from LLaVA-Med v1.5).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import torch
from transformers import CLIPVisionConfig, LlavaConfig, LlavaForConditionalGeneration, MistralConfig

from common.errors import ConfigError, WeightsError, brief, list_names

logger = logging.getLogger(__name__)

# LLaVA-Med v1.5 uses CLIP's penultimate layer and drops the CLS token ("patch" features).
VISION_FEATURE_LAYER = -2
VISION_FEATURE_STRATEGY = "default"
# transformers' own attention kernels; hub kernels ("kernels-community/...") would be downloads
ATTENTION_IMPLEMENTATIONS = ("sdpa", "eager", "flex_attention", "flash_attention_2", "flash_attention_3")


def llava_config(text_config: dict[str, Any], vision_config: dict[str, Any], image_token_id: int) -> LlavaConfig:
    """A LlavaConfig from Mistral and CLIP-vision keyword dictionaries (HF names).

    Args:
        text_config: ``MistralConfig`` keywords (hidden_size, num_hidden_layers, ...).
        vision_config: ``CLIPVisionConfig`` keywords (hidden_size, image_size, patch_size, ...).
        image_token_id: id of the ``<image>`` placeholder in the tokenizer.
    """
    try:
        text = MistralConfig(**{"tie_word_embeddings": False, **text_config})
        vision = CLIPVisionConfig(**vision_config)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"config 'text_config' / 'vision_config' is invalid: {exc}") from None
    patches = (vision.image_size // vision.patch_size) ** 2
    return LlavaConfig(
        text_config=text,
        vision_config=vision,
        image_token_id=image_token_id,
        vision_feature_layer=VISION_FEATURE_LAYER,
        vision_feature_select_strategy=VISION_FEATURE_STRATEGY,
        projector_hidden_act="gelu",
        multimodal_projector_bias=True,
        image_seq_length=patches,
        tie_word_embeddings=False,
    )


def random_llava(config: LlavaConfig, dtype: torch.dtype = torch.float32) -> LlavaForConditionalGeneration:
    """A randomly initialised LLaVA with the given architecture."""
    model = LlavaForConditionalGeneration(config)
    return model.to(dtype)


def llava_directory_config(path: str | os.PathLike) -> LlavaConfig:
    """The architecture of an HF-format LLaVA directory (its ``config.json``; no weights are read).

    Raises:
        WeightsError: the directory has no config, or is still in the original LLaVA-Med format.
    """
    path = Path(path)
    config_file = path / "config.json"
    if not config_file.is_file():
        raise WeightsError(f"LLaVA directory {path} has no config.json (config 'llava_path')")
    try:
        model_type = json.loads(config_file.read_text()).get("model_type")
    except json.JSONDecodeError as exc:
        raise WeightsError(f"cannot parse {config_file}: {exc}") from None
    if model_type != "llava":
        hint = ""
        if model_type in ("llava_mistral", "llava_llama", "llava"):
            hint = f"; convert it first: python -m networks.convert --llava-med {path} --clip CLIP_DIR --out DST"
        raise WeightsError(f"{path} is not an HF-format LLaVA directory (model_type={model_type!r}){hint}")
    try:
        return LlavaConfig.from_pretrained(path, local_files_only=True)
    except Exception as exc:
        raise WeightsError(f"cannot read the LLaVA config {config_file}: {brief(exc)}") from None


def load_llava(path: str | os.PathLike, dtype: torch.dtype = torch.float32) -> LlavaForConditionalGeneration:
    """Loads an HF-format LLaVA directory from local files only, rejecting incomplete weights.

    Raises:
        WeightsError: the directory is missing, is still in the original LLaVA-Med format,
            or its weights leave parameters uninitialised or contain unknown ones.
    """
    path = Path(path)
    llava_directory_config(path)
    try:
        model, info = LlavaForConditionalGeneration.from_pretrained(
            path, dtype=dtype, local_files_only=True, trust_remote_code=False, output_loading_info=True
        )
    except Exception as exc:
        raise WeightsError(f"cannot load LLaVA weights from {path}: {brief(exc)}") from None
    problems = []
    for kind in ("missing_keys", "unexpected_keys", "mismatched_keys"):
        names = [k if isinstance(k, str) else str(k[0]) for k in info.get(kind) or []]
        if names:
            problems.append(f"{kind.replace('_', ' ')}: {list_names(names)}")
    if problems:
        raise WeightsError(f"LLaVA weights in {path} do not match its config ({'; '.join(problems)})")
    return model


def fit_vocabulary(model: LlavaForConditionalGeneration, vocab_size: int) -> None:
    """Grows the input embeddings and LM head to ``vocab_size`` rows (never shrinks).

    New rows start at the mean of the existing embeddings, as HF's mean resizing does (a model on
    the ``meta`` device, which has shapes but no values, only gets the new shapes).
    """
    embeddings = model.get_input_embeddings()
    current = embeddings.num_embeddings
    if vocab_size > current:
        logger.info("growing the vocabulary from %d to %d tokens", current, vocab_size)
        model.resize_token_embeddings(vocab_size, mean_resizing=not embeddings.weight.is_meta)


def set_gradient_checkpointing(model: torch.nn.Module, enabled: bool) -> torch.nn.Module:
    """Switches activation (gradient) checkpointing of a MediSee's LLaVA on or off (HF's own switch).

    Recomputing each decoder layer in the backward pass trades about a third more compute for
    activations that no longer grow with the layer count: the way to larger training batches.
    The non-reentrant variant is used because the frozen LLM's inputs need no gradient of their own.

    Args:
        model: a MediSee (or anything with a ``llava`` attribute).
        enabled: on or off.

    Returns:
        ``model``, changed in place.
    """
    llava = model.llava
    if not enabled:
        disable = getattr(llava, "activation_checkpointing_disable", llava.gradient_checkpointing_disable)
        disable()
    elif hasattr(llava, "activation_checkpointing_enable"):  # the transformers 5 name
        llava.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        llava.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return model


def set_attention(llava: LlavaForConditionalGeneration, implementation: str) -> None:
    """Selects the attention kernel of LLaVA's language model and vision tower (transformers' switch).

    ``sdpa`` (PyTorch's scaled-dot-product attention: flash or memory-efficient kernels on GPUs) is
    transformers' default; ``eager`` is the plain matmul-softmax reference; ``flex_attention`` is
    PyTorch's compiled block-sparse attention (what packed sequences want when ``flash-attn`` is
    missing); ``flash_attention_2`` / ``_3`` need the ``flash-attn`` package. Outputs agree up to
    kernel rounding.

    Raises:
        ConfigError: naming the config key, for an unknown name or a kernel whose package is missing.
    """
    if implementation not in ATTENTION_IMPLEMENTATIONS:
        raise ConfigError(
            f"config 'attn_implementation' must be one of {ATTENTION_IMPLEMENTATIONS}, got {implementation!r}"
        )
    try:
        llava.set_attn_implementation(implementation)
    except (ImportError, ValueError) as exc:
        raise ConfigError(
            f"config 'attn_implementation' {implementation!r} cannot be used here: {brief(exc)}"
        ) from None
