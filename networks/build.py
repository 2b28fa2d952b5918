"""``build_medisee``: the factory behind the bundle's ``network_def``."""

from __future__ import annotations

import logging
import os
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from networks.checkpoint import load_checkpoint
from networks.config import MediSeeConfig, SamConfig
from networks.errors import ConfigError
from networks.llava import fit_vocabulary, llava_config, load_llava, random_llava, set_attention
from networks.medisee import MediSee
from networks.medsam import MedSAM, load_medsam_state_dict
from networks.tokenizer import token_id
from networks.trainable import add_lora, set_trainable

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
    grow_vocabulary: bool = False,
) -> MediSee:
    """Builds MediSee, loading whatever weights are configured.

    Args:
        tokenizer: from :func:`networks.build_tokenizer` (holds ``<image>`` and the candidates).
        text_config: Mistral sizes, used when ``llava_path`` is None (random weights).
        vision_config: CLIP vision sizes, used when ``llava_path`` is None.
        sam_config: SAM sizes and resize scheme (:class:`SamConfig`).
        medisee_config: :class:`MediSeeConfig` entries.
        llava_path: HF-format LLaVA directory; None = random LLaVA of the configured size.
        medsam_path: ``medsam_vit_b.pth``; None = random SAM.
        checkpoint: trained MediSee directory; None = untrained heads (a warning says so).
        dtype: ``float32``, ``bfloat16`` or ``float16``.
        attn_implementation: LLaVA's attention kernel (:func:`networks.llava.set_attention`).
        grow_vocabulary: warm start from a ``checkpoint`` whose vocabulary lacks tokens this
            configuration adds (:func:`networks.checkpoint.load_checkpoint`); for training only.
    """
    weights_dtype = torch_dtype(dtype)
    config = MediSeeConfig.from_dict(medisee_config)
    image_token_id = token_id(tokenizer, config.image_token)
    if llava_path is not None:
        llava = load_llava(llava_path, weights_dtype)
        if llava.config.image_token_id != image_token_id:
            raise ConfigError(
                f"config 'llava_path': {llava_path} uses image token id {llava.config.image_token_id}, "
                f"the tokenizer has {config.image_token!r} at {image_token_id}"
            )
    else:
        if not text_config or not vision_config:
            raise ConfigError("config 'text_config' and 'vision_config' are required when 'llava_path' is null")
        llava = random_llava(llava_config(text_config, vision_config, image_token_id), weights_dtype)
    fit_vocabulary(llava, len(tokenizer))
    set_attention(llava, attn_implementation)

    medsam = MedSAM(SamConfig.from_dict(sam_config))
    if medsam_path is not None:
        load_medsam_state_dict(medsam.sam, medsam_path)
    candidate_ids = [token_id(tokenizer, t) for t in config.candidate_tokens]
    rejection_id = token_id(tokenizer, config.rejection_token) if config.presence == "token" else None
    model = MediSee(llava, medsam, config, candidate_ids, rejection_id)
    model.to(weights_dtype)
    add_lora(model, config)
    set_trainable(model, config.trainable)
    if checkpoint is not None:
        load_checkpoint(model, checkpoint, grow_vocabulary=grow_vocabulary)
    else:
        logger.warning("no 'checkpoint' configured: the MediSee heads are untrained (fine for tests, not for use)")
    return model
