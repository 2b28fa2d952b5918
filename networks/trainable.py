"""Which parameters train (paper Sec. 4.3): LoRA on the LLM's q/v projections, the LM's
embeddings and head, the SAM mask decoder, the text projection, the routers and the box head.
Everything else (CLIP tower, projector, LLM base weights, SAM image and prompt encoders) is frozen.
A model trained from random initialisation (the demo) trains every parameter instead
(``medisee_config#trainable = "all"``), except those below that no loss reaches.

One exception inside the mask decoder: SAM's IoU-prediction head. No MediSee loss reaches it,
so it never changes in training anyway (as in the released code); leaving it trainable would
only count it wrongly and make DDP fail on parameters without gradients.
"""

from __future__ import annotations

from collections import OrderedDict

from peft import LoraConfig, inject_adapter_in_model
from torch import nn

from networks.config import MediSeeConfig

# Trainable parameter-name prefixes, beside the LoRA adapters (relative to MediSee).
TRAINABLE_PREFIXES = (
    "llava.lm_head.",
    "llava.model.language_model.embed_tokens.",
    "medsam.sam.mask_decoder.",
    "text_projection.",
    "seg_router.",
    "det_router.",
    "box_head.",
)
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


def add_lora(model: nn.Module, config: MediSeeConfig) -> None:
    """Injects peft LoRA adapters into the language model's q_proj / v_proj, in place."""
    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=config.lora_target_modules,
        bias="none",
    )
    inject_adapter_in_model(lora, model.llava)


def is_trainable_name(name: str, trainable: str = "paper") -> bool:
    """Whether parameter ``name`` (relative to MediSee) belongs to the trainable set.

    Args:
        name: a parameter name of :class:`networks.MediSee`.
        trainable: ``paper`` (the paper's set) or ``all`` (training from random initialisation).
    """
    if trainable == "all":
        return not name.startswith(ALWAYS_FROZEN_PREFIXES)
    if name.startswith(FROZEN_PREFIXES):
        return False
    return ".lora_" in name or name.startswith(TRAINABLE_PREFIXES)


def set_trainable(model: nn.Module, trainable: str = "paper") -> None:
    """Freezes everything, then enables exactly the ``trainable`` set (see :func:`is_trainable_name`)."""
    for name, param in model.named_parameters():
        param.requires_grad_(is_trainable_name(name, trainable))


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
