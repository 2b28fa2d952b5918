"""MediSee: LLaVA-Med + candidate-token fusion + box head + MedSAM (paper Sec. 4, Fig. 5).

One forward pass over a padded batch of conversations (each row one target) returns mask
logits, boxes, the LM loss on the answer tokens when labels are given, and the candidate and
fused states. Several rows may share one image (``image_index``): CLIP and the SAM image
encoder then run once per image. A row may also be a dialogue with a target per turn
(``turn_row``): the language model runs once over it, and each turn's answer is read for its own
mask, box and presence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from monai.data.box_utils import convert_box_mode
from torch import nn
from transformers import LlavaForConditionalGeneration

from common.errors import ConfigError, InputError
from networks.candidates import candidate_state_positions, gather_candidate_states, presence_logits
from networks.config import MediSeeConfig
from networks.heads import BoxHead, TextProjection
from networks.medsam import MedSAM
from networks.packing import pack_rows, unpack_rows
from networks.router import CandidateRouter

IGNORE_INDEX = -100
"""Label of the positions that carry no loss (transformers' and torch's cross-entropy convention); the prompts set it."""


class InputSizes(NamedTuple):
    """The image inputs a model takes: the training collate and the volume inferer both read them here.

    Attributes:
        clip_size: CLIP input side (the vision config's ``image_size``).
        sam_size: SAM input side (``sam_config#image_size``).
        sam_resize: how slices reach the SAM frame, ``stretch`` or ``longest_side`` (``sam_config#resize``).
    """

    clip_size: int
    sam_size: int
    sam_resize: str


@dataclass
class MediSeeOutput:
    """What :meth:`MediSee.forward` returns: B readings, one per row (or R, one per turn with ``turn_row``).

    Attributes:
        low_res_masks: (B, 1, h, w) SAM decoder logits.
        sam_mask_logits: (B, S, S) logits in the square SAM input frame.
        mask_logits: B tensors (H_b, W_b): logits at each slice's original size.
        boxes_cxcywh: (B, 4) normalised (cx, cy, w, h).
        boxes_xyxy: (B, 4) normalised (x0, y0, x1, y1).
        iou_predictions: (B, 1) SAM's own mask-quality estimate.
        lm_loss: answer-token cross entropy, when labels were given.
        candidate_states: (B, n, H) h_{c_1..n}.
        seg_state: (B, H) h_seg.
        det_state: (B, H) h_det.
        seg_weights: (B, n) R_s weights.
        det_weights: (B, n) R_d weights.
        last_hidden_state: (B, L, H) per conversation row, only when requested (similarity loss, analysis).
        presence_logits: (B,) logit of "the target is on the image" (first candidate against the
            rejection token at the decision state), or None without a rejection token.
    """

    low_res_masks: torch.Tensor
    sam_mask_logits: torch.Tensor
    mask_logits: list[torch.Tensor]
    boxes_cxcywh: torch.Tensor
    boxes_xyxy: torch.Tensor
    iou_predictions: torch.Tensor
    lm_loss: torch.Tensor | None
    candidate_states: torch.Tensor
    seg_state: torch.Tensor
    det_state: torch.Tensor
    seg_weights: torch.Tensor
    det_weights: torch.Tensor
    last_hidden_state: torch.Tensor | None = None
    presence_logits: torch.Tensor | None = None

    @property
    def presence_scores(self) -> torch.Tensor | None:
        """(B,) presence probabilities in [0, 1], or None without a rejection token."""
        return None if self.presence_logits is None else self.presence_logits.sigmoid()

    def kept_rows(self, threshold: float) -> torch.Tensor:
        """(B,) bool: the rows whose presence score reaches ``threshold`` (every row without a rejection token)."""
        if self.presence_logits is None:
            return torch.ones(self.boxes_xyxy.shape[0], dtype=torch.bool, device=self.boxes_xyxy.device)
        return self.presence_scores >= threshold

    def gated_mask_logits(self, threshold: float) -> list[torch.Tensor]:
        """``mask_logits`` with the rows below the presence ``threshold`` emptied (every logit the lowest value)."""
        kept = self.kept_rows(threshold).tolist()
        return [m if keep else torch.full_like(m, torch.finfo(m.dtype).min) for m, keep in zip(self.mask_logits, kept)]


class MediSee(nn.Module):
    """The MediSee model.

    Args:
        llava: the multimodal LLM (its vocabulary already holds the image and candidate tokens).
        medsam: the SAM wrapper.
        config: MediSee settings (candidate tokens, fusion, prompts, LoRA).
        candidate_token_ids: ids of ``config.candidate_tokens`` in the tokenizer.
        rejection_token_id: id of ``config.rejection_token`` (required when ``config.presence`` is
            ``token``, else unused).
    """

    def __init__(
        self,
        llava: LlavaForConditionalGeneration,
        medsam: MedSAM,
        config: MediSeeConfig,
        candidate_token_ids: Sequence[int],
        rejection_token_id: int | None = None,
    ) -> None:
        super().__init__()
        if len(candidate_token_ids) != config.num_candidates:
            raise ConfigError("one token id is needed per candidate token in 'medisee_config#candidate_tokens'")
        if config.presence == "token" and rejection_token_id is None:
            raise ConfigError("'medisee_config#presence' is 'token' but no rejection token id was given")
        self.config = config
        self.llava = llava
        self.medsam = medsam
        self.candidate_token_ids = [int(i) for i in candidate_token_ids]
        self.rejection_token_id = int(rejection_token_id) if config.presence == "token" else None
        hidden = llava.config.text_config.hidden_size
        n = config.num_candidates
        self.seg_router = CandidateRouter(n, hidden, config.router_hidden_size, config.fusion, config.hard_seg_index)
        self.det_router = CandidateRouter(n, hidden, config.router_hidden_size, config.fusion, config.hard_det_index)
        self.text_projection = (
            TextProjection(hidden, medsam.config.prompt_embed_dim) if config.use_text_prompt else None
        )
        self.box_head = BoxHead(hidden, config.box_head_hidden_size)
        # run the LLM on the real tokens only (networks.packing.set_sequence_packing)
        self.pack_sequences = False

    @property
    def image_token_id(self) -> int:
        """Id of the image placeholder token."""
        return self.llava.config.image_token_id

    @property
    def num_image_tokens(self) -> int:
        """How many image placeholder tokens a prompt must hold (576 for CLIP ViT-L/14-336)."""
        return self.llava.config.image_seq_length

    @property
    def input_sizes(self) -> InputSizes:
        """The CLIP and SAM input sizes and the SAM resize scheme, as built (a ``llava_path`` brings its own CLIP)."""
        return InputSizes(self.llava.config.vision_config.image_size, self.medsam.image_size, self.medsam.config.resize)

    def encode_clip(self, clip_pixel_values: torch.Tensor) -> torch.Tensor:
        """(N, 3, C, C) CLIP inputs -> (N, T, H) image features in the language model's space (the
        projector's output): what fills the image tokens. Frozen at inference, so they can be cached."""
        return torch.stack(list(self.llava.model.get_image_features(pixel_values=clip_pixel_values).pooler_output))

    def language_hidden_states(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        clip_image_features: torch.Tensor,
        image_index: torch.Tensor,
    ) -> torch.Tensor:
        """Last-layer LLM states (B, L, H) with the (N, T, H) CLIP features placed at the image tokens.

        Only the final hidden states are computed (no vocabulary-wide logits). With
        ``pack_sequences`` the rows run as one packed row and come back padded (zeros on padding).
        """
        image_features = clip_image_features[image_index]
        placeholders = input_ids == self.image_token_id
        counts = placeholders.sum(dim=1)
        if bool((counts != image_features.shape[1]).any()):
            row = int((counts != image_features.shape[1]).nonzero()[0, 0])
            raise InputError(
                f"row {row} has {int(counts[row])} image tokens; the vision tower gives {image_features.shape[1]}"
            )
        embeds = self.llava.get_input_embeddings()(input_ids)
        embeds = embeds.masked_scatter(placeholders.unsqueeze(-1), image_features.to(embeds.dtype))
        language_model = self.llava.model.language_model
        if self.pack_sequences:
            packed = pack_rows(embeds, attention_mask)
            # no attention mask and no cache: transformers then separates the conversations by their position restarts
            out = language_model(inputs_embeds=packed.inputs_embeds, position_ids=packed.position_ids, use_cache=False)
            return unpack_rows(out.last_hidden_state, packed)
        # positions count real tokens only, so left- and right-padded rows are encoded alike
        position_ids = (attention_mask.long().cumsum(dim=1) - 1).clamp(min=0)
        out = language_model(
            inputs_embeds=embeds, attention_mask=attention_mask, position_ids=position_ids, use_cache=False
        )
        return out.last_hidden_state

    def answer_loss(self, hidden_states: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Next-token cross entropy on labelled positions, projecting only those through lm_head."""
        targets = labels[:, 1:]
        keep = targets != IGNORE_INDEX
        if not bool(keep.any()):
            return hidden_states.sum() * 0.0
        logits = self.llava.lm_head(hidden_states[:, :-1][keep])
        return F.cross_entropy(logits.float(), targets[keep])

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        clip_pixel_values: torch.Tensor | None = None,
        sam_pixel_values: torch.Tensor | None = None,
        sam_image_embeddings: torch.Tensor | None = None,
        original_sizes: torch.Tensor | Sequence[Sequence[int]] | None = None,
        labels: torch.Tensor | None = None,
        image_index: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        clip_image_features: torch.Tensor | None = None,
        answer_start: torch.Tensor | None = None,
        answer_end: torch.Tensor | None = None,
        turn_row: torch.Tensor | None = None,
    ) -> MediSeeOutput:
        """Runs MediSee on a padded batch.

        Args:
            input_ids: (B, L) prompt + answer ids, each row holding ``num_image_tokens`` image
                tokens and each candidate token once.
            attention_mask: (B, L), 1 on real tokens.
            clip_pixel_values: (N, 3, 336, 336) CLIP-preprocessed images; or give
            clip_image_features: (N, T, H) their precomputed features (:meth:`encode_clip`).
            sam_pixel_values: (N, 3, S, S) MedSAM-preprocessed images; or give
            sam_image_embeddings: (N, C, S/16, S/16) precomputed frozen SAM embeddings.
            original_sizes: (B, 2) each slice's (H, W); default (S, S).
            labels: (B, L) ids with -100 outside the answer, for the LM loss. With a rejection token, a
                row may instead hold the rejection token once and no candidate (a target not on
                the image): its candidates then read the decision state.
            image_index: (B,) row -> image; default row b uses image b.
            output_hidden_states: also return the last hidden states.
            answer_start: (B,) first position of each row's current answer, for rows that hold earlier
                turns of a conversation (their candidate tokens are context); None: one turn per row.
                With ``turn_row``: (R,) the first position of each reading's answer.
            answer_end: (R,) the position after each reading's answer (with ``turn_row``); None: the row's end.
            turn_row: (R,) the row each reading is taken from, for dialogue rows with a target per turn
                (a row read once per turn, in the span ``answer_start`` .. ``answer_end``); None: one
                reading per row. Every output but ``lm_loss`` and ``last_hidden_state`` is per reading.
        """
        batch = input_ids.shape[0]
        device = input_ids.device
        if image_index is None:
            image_index = torch.arange(batch, device=device)
        if (sam_pixel_values is None) == (sam_image_embeddings is None):
            raise InputError("give exactly one of sam_pixel_values and sam_image_embeddings")
        if (clip_pixel_values is None) == (clip_image_features is None):
            raise InputError("give exactly one of clip_pixel_values and clip_image_features")
        if original_sizes is None:
            original_sizes = torch.full((batch, 2), self.medsam.image_size, device=device)
        original_sizes = torch.as_tensor(original_sizes, device=device).reshape(batch, 2)

        if clip_image_features is None:
            clip_image_features = self.encode_clip(clip_pixel_values)
        hidden = self.language_hidden_states(input_ids, attention_mask, clip_image_features, image_index)
        lm_loss = self.answer_loss(hidden, labels) if labels is not None else None

        if turn_row is not None:
            turn_row = turn_row.to(device)
            input_ids, image_index, original_sizes = (
                input_ids[turn_row],
                image_index[turn_row],
                original_sizes[turn_row],
            )
        positions = candidate_state_positions(
            input_ids, self.candidate_token_ids, self.rejection_token_id, answer_start, answer_end
        )
        candidates = gather_candidate_states(hidden, positions, turn_row)
        presence = self.presence(candidates)
        h_seg, seg_weights = self.seg_router(candidates)
        h_det, det_weights = self.det_router(candidates)

        boxes_cxcywh = self.box_head(h_det).float()
        boxes_xyxy = convert_box_mode(boxes_cxcywh, src_mode="ccwh", dst_mode="xyxy")
        if sam_image_embeddings is None:
            sam_image_embeddings = self.medsam.encode_images(sam_pixel_values)
        text = self.text_projection(h_seg) if self.text_projection is not None else None
        low_res, iou = self.medsam.decode(
            sam_image_embeddings,
            image_index,
            boxes_xyxy if self.config.use_box_prompt else None,
            text,
            original_sizes,
        )
        sam_masks = self.medsam.upscale_masks(low_res)
        return MediSeeOutput(
            low_res_masks=low_res,
            sam_mask_logits=sam_masks,
            mask_logits=self.medsam.masks_to_original(sam_masks, original_sizes.tolist()),
            boxes_cxcywh=boxes_cxcywh,
            boxes_xyxy=boxes_xyxy,
            iou_predictions=iou,
            lm_loss=lm_loss,
            candidate_states=candidates,
            seg_state=h_seg,
            det_state=h_det,
            seg_weights=seg_weights,
            det_weights=det_weights,
            last_hidden_state=hidden if output_hidden_states else None,
            presence_logits=presence,
        )

    def presence(self, candidates: torch.Tensor) -> torch.Tensor | None:
        """(B, n, H) candidate states -> (B,) presence logits, read at the decision state (the first
        candidate's state, which a rejected row shares with its rejection token); None without one."""
        if self.rejection_token_id is None:
            return None
        logits = self.llava.lm_head(candidates[:, 0])
        return presence_logits(logits, self.candidate_token_ids[0], self.rejection_token_id)
