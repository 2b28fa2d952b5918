"""Which parameters train (paper Sec. 4.3): LoRA on the LLM's q/v projections, the LM's
embeddings and head, the SAM mask decoder, the text projection, the routers and the box head.
Everything else (CLIP tower, projector, LLM base weights, SAM image and prompt encoders) is frozen.
A model trained from random initialisation (the demo) trains every parameter instead
(``medisee_config#trainable = "all"``), except those below that no loss reaches.

The paper's Table 6 ablates two of these choices, and both are sets here too: ``frozen_llm``
("LLaVA-Med (frozen)": no LoRA, the LM's embeddings and head frozen as well, so only the mask
decoder, text projection, routers and box head train) and ``sam_lora`` ("MedSAM (LoRA)": the
paper's set, but the mask decoder keeps its weights and trains LoRA adapters on its attention).

One exception inside the mask decoder: SAM's IoU-prediction head. No MediSee loss reaches it,
so it never changes in training anyway (as in the released code); leaving it trainable would
only count it wrongly and make DDP fail on parameters without gradients.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from peft import LoraConfig, inject_adapter_in_model
from torch import nn

from common.errors import ConfigError
from networks.config import MediSeeConfig

# Parameter-name prefixes (relative to MediSee) that train fully, beside the LoRA adapters.
LM_PREFIXES = ("llava.lm_head.", "llava.model.language_model.embed_tokens.")
MASK_DECODER_PREFIX = "medsam.sam.mask_decoder."
HEAD_PREFIXES = ("text_projection.", "seg_router.", "det_router.", "box_head.")
TRAINABLE_PREFIXES = (*LM_PREFIXES, MASK_DECODER_PREFIX, *HEAD_PREFIXES)
"""The paper's set (``trainable == "paper"``)."""
FULLY_TRAINED = {
    "paper": TRAINABLE_PREFIXES,
    "frozen_llm": (MASK_DECODER_PREFIX, *HEAD_PREFIXES),
    "sam_lora": (*LM_PREFIXES, *HEAD_PREFIXES),
}
LLM_LORA_SETS = ("paper", "all", "sam_lora")
"""Sets whose language model gets LoRA adapters (``frozen_llm`` has none)."""
FROZEN_PREFIXES = ("medsam.sam.mask_decoder.iou_prediction_head.",)
# Frozen even when training everything: the prompt encoder's entries are mostly unused (points,
# dense mask prompts), and SAM's decoder learns around its fixed box-corner embeddings.
ALWAYS_FROZEN_PREFIXES = (*FROZEN_PREFIXES, "medsam.sam.prompt_encoder.")

# Components for the report, first match wins.
COMPONENTS = OrderedDict(
    [
        ("LoRA adapters", ".lora_"),
        ("LM embed_tokens", "llava.model.language_model.embed_tokens."),
        ("LM lm_head", "llava.lm_head."),
        ("LM base (Mistral)", "llava.model.language_model."),
        ("vision tower (CLIP)", "llava.model.vision_tower."),
        ("projector", "llava.model.multi_modal_projector."),
        ("SAM image encoder", "medsam.sam.image_encoder."),
        ("SAM prompt encoder", "medsam.sam.prompt_encoder."),
        ("SAM mask decoder", "medsam.sam.mask_decoder."),
        ("text projection", "text_projection."),
        ("routers", "_router."),
        ("box head", "box_head."),
    ]
)


def lora_config(config: MediSeeConfig, target_modules: str) -> LoraConfig:
    """The peft LoRA settings of ``config`` (rank, alpha, dropout) for ``target_modules``."""
    return LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=target_modules,
        bias="none",
    )


def add_lora(model: nn.Module, config: MediSeeConfig) -> None:
    """Injects the ``trainable`` set's peft LoRA adapters, in place.

    The language model's q_proj / v_proj get them unless the set is ``frozen_llm``; under
    ``sam_lora`` the mask decoder's attention projections (``sam_lora_target_modules``) get them too.
    """
    if config.trainable in LLM_LORA_SETS:
        inject_adapter_in_model(lora_config(config, config.lora_target_modules), model.llava)
    if config.trainable == "sam_lora":
        decoder = model.medsam.sam.mask_decoder
        inject_adapter_in_model(lora_config(config, config.sam_lora_target_modules), decoder)


def is_trainable_name(name: str, trainable: str = "paper") -> bool:
    """Whether parameter ``name`` (relative to MediSee) belongs to the trainable set.

    Args:
        name: a parameter name of :class:`networks.MediSee`.
        trainable: ``paper`` (the paper's set), ``all`` (training from random initialisation),
            ``frozen_llm`` or ``sam_lora`` (Table 6's ablations).
    """
    if trainable == "all":
        return not name.startswith(ALWAYS_FROZEN_PREFIXES)
    if name.startswith(FROZEN_PREFIXES):
        return False
    # adapters exist only where the set put them (add_lora)
    return ".lora_" in name or name.startswith(FULLY_TRAINED[trainable])


def set_trainable(model: nn.Module, trainable: str = "paper") -> None:
    """Freezes everything, then enables exactly the ``trainable`` set (see :func:`is_trainable_name`)."""
    for name, param in model.named_parameters():
        param.requires_grad_(is_trainable_name(name, trainable))


def upcast_trainable(model: nn.Module, master_dtype: str | torch.dtype = "float32") -> nn.Module:
    """Keeps the trainable parameters in ``master_dtype`` while the frozen ones stay as built.

    Optimiser updates of bf16 parameters round away: an AdamW step of lr 3e-4 on a weight near 1
    is below bf16's resolution (2^-8), so LoRA, heads and decoder would barely move. Holding only
    the trainable set in float32 (a few hundred MB at full size) keeps their updates exact while
    the 7 B frozen weights stay in bf16; autocast then runs the matmuls in bf16 either way.

    Args:
        model: a MediSee whose ``requires_grad`` flags are set (:func:`set_trainable`).
        master_dtype: dtype of the trainable parameters (a name such as ``"float32"`` or a torch dtype).

    Returns:
        ``model``, changed in place (parameter objects are kept, so optimisers built later see them).
    """
    dtype = getattr(torch, master_dtype, None) if isinstance(master_dtype, str) else master_dtype
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ConfigError(f"config 'master_dtype' must name a floating-point torch dtype, got {master_dtype!r}")
    for param in model.parameters():
        if param.requires_grad and param.dtype != dtype:
            param.data = param.data.to(dtype)
    return model


def component_of(name: str) -> str:
    """The report component a parameter belongs to."""
    for component, marker in COMPONENTS.items():
        if marker in name if marker.startswith((".", "_")) else name.startswith(marker):
            return component
    return "other"


def trainable_report(model: nn.Module) -> list[tuple[str, int, int]]:
    """Rows (component, parameters, trainable parameters), plus a final total row."""
    totals: dict[str, list[int]] = {c: [0, 0] for c in [*COMPONENTS, "other"]}
    for name, param in model.named_parameters():
        row = totals[component_of(name)]
        row[0] += param.numel()
        row[1] += param.numel() if param.requires_grad else 0
    rows = [(c, t, n) for c, (t, n) in totals.items() if t]
    rows.append(("total", sum(r[1] for r in rows), sum(r[2] for r in rows)))
    return rows


def format_report(rows: list[tuple[str, int, int]]) -> str:
    """A plain-text table of :func:`trainable_report`."""
    lines = [f"{'component':<22}{'parameters':>16}{'trainable':>16}"]
    lines += [f"{c:<22}{t:>16,}{n:>16,}" for c, t, n in rows]
    return "\n".join(lines)
