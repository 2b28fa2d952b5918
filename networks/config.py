"""Configuration of the MediSee-specific parts: candidate tokens, fusion, heads, SAM sizes, LoRA.

The language model and vision tower sizes are plain ``transformers`` config dictionaries
(``MistralConfig`` / ``CLIPVisionConfig`` keyword names), so they are not repeated here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from common.errors import ConfigError

FUSIONS = ("normalized_sigmoid", "softmax", "hard")
TRAINABLE_SETS = ("paper", "all", "frozen_llm", "sam_lora")
PRESENCE_MODES = ("token", "none")
SAM_RESIZE_SCHEMES = ("stretch", "longest_side")
TRUE_WORDS = ("true", "yes", "1")
FALSE_WORDS = ("false", "no", "0")


def flag(value: Any, key: str) -> bool:
    """A boolean setting given as a bool or as text (``true``/``false``, ``yes``/``no``, ``1``/``0``).

    ``python -m monai.bundle run --overwrite true`` hands the config the string ``"true"``.

    Raises:
        ConfigError: naming ``key`` when the value is neither.
    """
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise ConfigError(f"config '{key}' must be true or false, got {value!r}")


def _from_dict(cls, values: dict[str, Any] | None, key: str):
    """Builds dataclass ``cls`` from ``values``, naming the config key on unknown entries."""
    values = dict(values or {})
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"config '{key}' has unknown entries {unknown}; known: {sorted(known)}")
    return cls(**values)


@dataclass
class SamConfig:
    """Sizes of the segment-anything SAM model (defaults: ViT-B, as MedSAM).

    Attributes:
        encoder_embed_dim: ViT width.
        encoder_depth: number of ViT blocks.
        encoder_num_heads: attention heads per block.
        encoder_global_attn_indexes: blocks with global (not windowed) attention.
        image_size: side of the square SAM input.
        patch_size: ViT patch size; the image embedding is ``image_size // patch_size`` wide.
        window_size: windowed-attention size.
        prompt_embed_dim: width of prompt tokens and of the mask decoder.
        mask_in_chans: hidden channels of the (unused) dense mask-prompt encoder.
        decoder_depth: two-way transformer depth of the mask decoder.
        decoder_mlp_dim: MLP width in the mask decoder transformer.
        decoder_num_heads: attention heads in the mask decoder transformer.
        iou_head_hidden_dim: hidden width of the IoU prediction head.
        resize: how a slice is fitted into the square SAM frame: ``stretch`` (MedSAM's own:
            resize to ``image_size`` x ``image_size``) or ``longest_side`` (SAM's: scale the
            longest side, pad bottom/right). Boxes and masks are mapped with the same scheme.
    """

    encoder_embed_dim: int = 768
    encoder_depth: int = 12
    encoder_num_heads: int = 12
    encoder_global_attn_indexes: list[int] = field(default_factory=lambda: [2, 5, 8, 11])
    image_size: int = 1024
    patch_size: int = 16
    window_size: int = 14
    prompt_embed_dim: int = 256
    mask_in_chans: int = 16
    decoder_depth: int = 2
    decoder_mlp_dim: int = 2048
    decoder_num_heads: int = 8
    iou_head_hidden_dim: int = 256
    resize: str = "stretch"

    def __post_init__(self) -> None:
        if self.resize not in SAM_RESIZE_SCHEMES:
            raise ConfigError(f"config 'sam_config#resize' must be one of {SAM_RESIZE_SCHEMES}, got {self.resize!r}")
        if self.image_size % self.patch_size:
            raise ConfigError("config 'sam_config': image_size must be a multiple of patch_size")

    @property
    def embedding_size(self) -> int:
        """Side of the image embedding grid."""
        return self.image_size // self.patch_size

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> SamConfig:
        """Builds the config from the bundle's ``sam_config`` dictionary."""
        return _from_dict(cls, values, "sam_config")


@dataclass
class MediSeeConfig:
    """The MediSee-specific architecture and fine-tuning settings (paper Sec. 4, Tables 4-5).

    Attributes:
        candidate_tokens: the n candidate tokens added to the vocabulary (paper: n=2).
        fusion: ``normalized_sigmoid`` (released code), ``softmax`` (paper's soft fusion) or
            ``hard`` (no router: fixed selection, Table 4's "hard" rows).
        router_hidden_size: hidden width of the router MLPs R_s and R_d.
        hard_seg_index: candidate used for segmentation when ``fusion == "hard"``.
        hard_det_index: candidate used for detection when ``fusion == "hard"`` (-1 = last).
        box_head_hidden_size: hidden width of the 3-layer box head.
        use_box_prompt: feed the predicted box to the SAM prompt encoder (Table 5).
        use_text_prompt: feed the projected h_seg to the SAM mask decoder (Table 5).
        image_token: the placeholder token for image patches in prompts.
        lora_r: LoRA rank.
        lora_alpha: LoRA scaling numerator.
        lora_dropout: LoRA dropout.
        lora_target_modules: regex (peft full-match) selecting the language model's projections;
            a plain list would also hit the CLIP tower's q_proj/v_proj.
        sam_lora_target_modules: regex (peft full-match, relative to SAM's mask decoder) selecting
            the decoder's attention projections that get LoRA under ``trainable == "sam_lora"``
            (same rank, alpha and dropout as the language model's: the paper sets every LoRA rank to 8).
        trainable: ``paper`` (LoRA, LM embeddings and head, mask decoder, text projection,
            routers, box head; the rest keeps its pretrained weights), ``all`` (every parameter
            but SAM's IoU head: for a model trained from random initialisation, such as the demo),
            or the ablations of the paper's Table 6: ``frozen_llm`` (no LoRA, the whole LLaVA-Med
            frozen; mask decoder, text projection, routers and box head train) and ``sam_lora``
            (``paper`` with LoRA on the mask decoder's attention instead of training it fully).
        presence: ``token``: the answer starts with the first candidate token when the target is
            on the image and with ``rejection_token`` when it is not (GSVA's rejection token), and
            the presence score of a row is P(first candidate) / (P(first candidate) + P(rejection))
            at the state that predicts it; ``none``: the paper's setting (no rejection token, every
            row is taken to hold its target).
        rejection_token: the token a rejected answer starts with (``presence == "token"``).
    """

    candidate_tokens: list[str] = field(default_factory=lambda: ["[SEG]", "[BBOX]"])
    fusion: str = "normalized_sigmoid"
    router_hidden_size: int = 1024
    hard_seg_index: int = 0
    hard_det_index: int = -1
    box_head_hidden_size: int = 512
    use_box_prompt: bool = True
    use_text_prompt: bool = True
    image_token: str = "<image>"
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lora_target_modules: str = r".*language_model\.layers\.\d+\.self_attn\.(q_proj|v_proj)"
    sam_lora_target_modules: str = r"transformer\.(layers\.\d+\.\w+|final_attn_token_to_image)\.(q_proj|v_proj)"
    trainable: str = "paper"
    presence: str = "token"
    rejection_token: str = "[REJ]"

    def __post_init__(self) -> None:
        n = len(self.candidate_tokens)
        if n < 1 or len(set(self.candidate_tokens)) != n:
            raise ConfigError("config 'medisee_config#candidate_tokens' must be a non-empty list of distinct tokens")
        if self.fusion not in FUSIONS:
            raise ConfigError(f"config 'medisee_config#fusion' must be one of {FUSIONS}, got {self.fusion!r}")
        for key in ("hard_seg_index", "hard_det_index"):
            if not -n <= getattr(self, key) < n:
                raise ConfigError(f"config 'medisee_config#{key}' is out of range for {n} candidate tokens")
        if self.trainable not in TRAINABLE_SETS:
            raise ConfigError(
                f"config 'medisee_config#trainable' must be one of {TRAINABLE_SETS}, got {self.trainable!r}"
            )
        if self.presence not in PRESENCE_MODES:
            raise ConfigError(
                f"config 'medisee_config#presence' must be one of {PRESENCE_MODES}, got {self.presence!r}"
            )
        if self.presence == "token" and self.trainable == "frozen_llm":
            # the decision is read from the LM head, which frozen_llm freezes: it could never be learned
            raise ConfigError(
                "config 'medisee_config#trainable' 'frozen_llm' freezes the LM head the presence decision is read "
                "from: set 'presence' to 'none' for that ablation"
            )
        if self.presence == "token" and self.rejection_token in self.candidate_tokens:
            raise ConfigError("config 'medisee_config#rejection_token' must differ from the candidate tokens")
        if not (self.use_box_prompt or self.use_text_prompt):
            raise ConfigError("config 'medisee_config': use_box_prompt and use_text_prompt cannot both be false")

    @property
    def num_candidates(self) -> int:
        """n, the number of candidate tokens."""
        return len(self.candidate_tokens)

    @property
    def added_tokens(self) -> list[str]:
        """The tokens MediSee adds to a tokenizer: the image placeholder, the candidates and the rejection token."""
        rejection = [self.rejection_token] if self.presence == "token" else []
        return [self.image_token, *self.candidate_tokens, *rejection]

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> MediSeeConfig:
        """Builds the config from the bundle's ``medisee_config`` dictionary."""
        return _from_dict(cls, values, "medisee_config")

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form, stored next to trained checkpoints."""
        return asdict(self)
