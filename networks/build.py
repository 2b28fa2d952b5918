"""``build_medisee``: the factory behind the bundle's ``network_def``."""

from __future__ import annotations

import logging
import os
from typing import Any

import torch
from transformers import LlavaConfig, LlavaForConditionalGeneration, PreTrainedTokenizerBase

from common.errors import ConfigError
from networks.checkpoint import load_checkpoint
from networks.config import MediSeeConfig, SamConfig, flag
from networks.llava import (
    fit_vocabulary,
    llava_config,
    llava_directory_config,
    load_llava,
    random_llava,
    set_attention,
)
from networks.medisee import MediSee
from networks.medsam import MedSAM, load_medsam_state_dict
from networks.memory import MemoryNeed, check_fits, describe, parameter_bytes
from networks.tokenizer import token_id
from networks.trainable import add_lora, set_trainable
from networks.weight_sources import check_weight_sources

logger = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def torch_dtype(name: str) -> torch.dtype:
    """The torch dtype of the config's ``dtype`` name.

    Raises:
        ConfigError: ``name`` is not one of :data:`DTYPES`.
    """
    if name not in DTYPES:
        raise ConfigError(f"config 'dtype' must be one of {sorted(DTYPES)}, got {name!r}")
    return DTYPES[name]


def model_token_ids(tokenizer: PreTrainedTokenizerBase, config: MediSeeConfig) -> tuple[list[int], int | None]:
    """The ids of the candidate tokens and of the rejection token (None without presence) in ``tokenizer``."""
    candidate_ids = [token_id(tokenizer, t) for t in config.candidate_tokens]
    rejection_id = token_id(tokenizer, config.rejection_token) if config.presence == "token" else None
    return candidate_ids, rejection_id


def memory_need(
    llava: LlavaConfig,
    sam_config: SamConfig,
    config: MediSeeConfig,
    vocab_size: int,
    candidate_ids: list[int],
    dtype: torch.dtype,
    loaded_llava: bool,
    rejection_id: int | None = None,
) -> MemoryNeed:
    """The parameter memory of the MediSee :func:`build_medisee` would build, from a shapes-only copy.

    The copy is assembled on PyTorch's ``meta`` device exactly as the real one (vocabulary growth
    and LoRA included), which allocates nothing and takes a fraction of a second at full size.

    Args:
        llava: the LLaVA architecture.
        sam_config: SAM's sizes.
        config: MediSee settings (heads, LoRA).
        vocab_size: the tokenizer's length.
        candidate_ids: the candidate tokens' ids.
        dtype: the weights' dtype.
        loaded_llava: LLaVA comes from ``llava_path`` in ``dtype``; otherwise it is built at random in float32.
        rejection_id: the rejection token's id (``presence: token``).
    """
    with torch.device("meta"):
        shapes = LlavaForConditionalGeneration(llava)
        fit_vocabulary(shapes, vocab_size)
        model = MediSee(shapes, MedSAM(sam_config), config, candidate_ids, rejection_id)
        add_lora(model, config)
    random_parts = (
        ("",) if not loaded_llava else tuple(f"{name}." for name, _ in model.named_children() if name != "llava")
    )
    return parameter_bytes(model, dtype, random_parts)


def check_memory(need: MemoryNeed, dtype: torch.dtype, device: str | torch.device | None) -> None:
    """Refuses a model that cannot fit where it is built (the default device) or where it will run (``device``).

    Raises:
        ConfigError: one line with the memory needed and the memory free.
    """
    build_device = torch.get_default_device()
    check_fits(need.build_bytes, build_device, f"building {describe(need, dtype)}")
    if device is not None and torch.device(device) != build_device:
        check_fits(need.run_bytes, device, describe(need, dtype))


def build_medisee(
    tokenizer: PreTrainedTokenizerBase,
    text_config: dict[str, Any] | None = None,
    vision_config: dict[str, Any] | None = None,
    sam_config: dict[str, Any] | None = None,
    medisee_config: dict[str, Any] | None = None,
    llava_path: str | os.PathLike | None = None,
    medsam_path: str | os.PathLike | None = None,
    checkpoint: str | os.PathLike | None = None,
    dtype: str = "float32",
    attn_implementation: str = "sdpa",
    random_weights: bool = False,
    training: bool = False,
    device: str | torch.device | None = None,
    grow_vocabulary: bool = False,
) -> MediSee:
    """Builds MediSee, loading whatever weights are configured.

    Two checks come first, so a mistake costs a second rather than minutes or the process:
    weights that would be random must be asked for (:mod:`networks.weight_sources`), and the
    parameters must fit in the free memory where they are built and where they will run
    (:mod:`networks.memory`).

    Args:
        tokenizer: from :func:`networks.build_tokenizer` (holds ``<image>`` and the candidates).
        text_config: Mistral sizes, used when ``llava_path`` is None (random weights).
        vision_config: CLIP vision sizes, used when ``llava_path`` is None.
        sam_config: SAM sizes and resize scheme (:class:`SamConfig`).
        medisee_config: :class:`MediSeeConfig` entries.
        llava_path: HF-format LLaVA directory; None = random LLaVA of the configured size (see ``random_weights``).
        medsam_path: ``medsam_vit_b.pth``; None = random SAM (see ``random_weights``).
        checkpoint: trained MediSee directory; None = untrained heads (in inference only with ``random_weights``).
        dtype: ``float32``, ``bfloat16`` or ``float16``.
        attn_implementation: LLaVA's attention kernel (:func:`networks.llava.set_attention`).
        random_weights: allow parts without weights to be random (tests, benchmarks).
        training: the model is built to be trained, so its trainable set may start untrained.
        device: where the model will run (its free memory is checked too); None = where it is built.

        grow_vocabulary: warm start from a ``checkpoint`` whose vocabulary lacks tokens this
            configuration adds (:func:`networks.checkpoint.load_checkpoint`); for training only.

    Raises:
        ConfigError: weights would be random without ``random_weights``, the model does not fit, or
            a setting is invalid (names the config key).
        WeightsError: a weight file is missing, unreadable or does not match.
    """
    weights_dtype = torch_dtype(dtype)
    config = MediSeeConfig.from_dict(medisee_config)
    random_weights, training = flag(random_weights, "random_weights"), flag(training, "training")
    check_weight_sources(llava_path, medsam_path, checkpoint, config.trainable, training, random_weights)
    image_token_id = token_id(tokenizer, config.image_token)
    sam = SamConfig.from_dict(sam_config)
    candidate_ids, rejection_id = model_token_ids(tokenizer, config)
    architecture = _llava_architecture(llava_path, text_config, vision_config, image_token_id)
    loaded_llava = llava_path is not None
    need = memory_need(
        architecture, sam, config, len(tokenizer), candidate_ids, weights_dtype, loaded_llava, rejection_id
    )
    check_memory(need, weights_dtype, device)
    if llava_path is not None:
        llava = load_llava(llava_path, weights_dtype)
        if llava.config.image_token_id != image_token_id:
            raise ConfigError(
                f"config 'llava_path': {llava_path} uses image token id {llava.config.image_token_id}, "
                f"the tokenizer has {config.image_token!r} at {image_token_id}"
            )
    else:
        llava = random_llava(architecture, weights_dtype)
    fit_vocabulary(llava, len(tokenizer))
    set_attention(llava, attn_implementation)

    medsam = MedSAM(sam)
    if medsam_path is not None:
        load_medsam_state_dict(medsam.sam, medsam_path)
    model = MediSee(llava, medsam, config, candidate_ids, rejection_id)
    model.to(weights_dtype)
    add_lora(model, config)
    set_trainable(model, config.trainable)
    if checkpoint is not None:
        load_checkpoint(model, checkpoint, grow_vocabulary=grow_vocabulary)
    elif not training:
        logger.warning("no 'checkpoint' configured: the MediSee heads are untrained (random_weights is set)")
    return model


def _llava_architecture(
    llava_path: str | os.PathLike | None,
    text_config: dict[str, Any] | None,
    vision_config: dict[str, Any] | None,
    image_token_id: int,
) -> LlavaConfig:
    """LLaVA's architecture: ``llava_path``'s own, or the configured sizes for a random one."""
    if llava_path is not None:
        return llava_directory_config(llava_path)
    if not text_config or not vision_config:
        raise ConfigError("config 'text_config' and 'vision_config' are required when 'llava_path' is null")
    return llava_config(text_config, vision_config, image_token_id)
