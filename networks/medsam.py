"""MedSAM (segment-anything SAM ViT-B) as MediSee's vision backbone and mask decoder.

The image and prompt encoders are frozen; the mask decoder is trained. Sparse prompts are the
predicted box (as SAM corner embeddings, in the square SAM input frame) plus the projected
h_seg as one extra token; the dense prompt is SAM's no-mask embedding; one mask per prompt.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from common.errors import InputError, WeightsError, brief, list_names
from networks.config import SamConfig
from networks.sam_import import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer


def build_sam(config: SamConfig) -> Sam:
    """Builds a segment-anything ``Sam`` with the sizes in ``config``.

    With the default config this is exactly ``segment_anything.build_sam_vit_b`` (same classes,
    arguments and parameter names), which is what ``medsam_vit_b.pth`` was saved from.
    """
    encoder = ImageEncoderViT(
        depth=config.encoder_depth,
        embed_dim=config.encoder_embed_dim,
        img_size=config.image_size,
        mlp_ratio=4,
        norm_layer=functools.partial(nn.LayerNorm, eps=1e-6),
        num_heads=config.encoder_num_heads,
        patch_size=config.patch_size,
        qkv_bias=True,
        use_rel_pos=True,
        global_attn_indexes=tuple(config.encoder_global_attn_indexes),
        window_size=config.window_size,
        out_chans=config.prompt_embed_dim,
    )
    prompt_encoder = PromptEncoder(
        embed_dim=config.prompt_embed_dim,
        image_embedding_size=(config.embedding_size, config.embedding_size),
        input_image_size=(config.image_size, config.image_size),
        mask_in_chans=config.mask_in_chans,
    )
    decoder = MaskDecoder(
        num_multimask_outputs=3,
        transformer=TwoWayTransformer(
            depth=config.decoder_depth,
            embedding_dim=config.prompt_embed_dim,
            mlp_dim=config.decoder_mlp_dim,
            num_heads=config.decoder_num_heads,
        ),
        transformer_dim=config.prompt_embed_dim,
        iou_head_depth=3,
        iou_head_hidden_dim=config.iou_head_hidden_dim,
    )
    # SAM's own pixel statistics are unused: MedSAM preprocessing happens in transforms/.
    return Sam(encoder, prompt_encoder, decoder, pixel_mean=[0.0, 0.0, 0.0], pixel_std=[1.0, 1.0, 1.0])


def load_medsam_state_dict(sam: Sam, path: str | Path) -> None:
    """Loads ``medsam_vit_b.pth`` (a SAM state dict) into ``sam``, strictly.

    Args:
        sam: the model built by :func:`build_sam`.
        path: the MedSAM checkpoint file.

    Raises:
        WeightsError: the file is missing or unreadable, is not a state dict, or its keys or
            shapes differ from the model's (the message names them).
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"MedSAM checkpoint not found: {path} (config 'medsam_path')")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt / non-torch files
        raise WeightsError(f"cannot read MedSAM checkpoint {path}: {brief(exc)}") from None
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]  # training checkpoints wrap the state dict
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"MedSAM checkpoint {path} is not a SAM state dict")
    expected = sam.state_dict()
    missing, unexpected = set(expected) - set(state), set(state) - set(expected)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing keys: {list_names(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {list_names(unexpected)}")
        raise WeightsError(f"MedSAM checkpoint {path} does not match SAM ViT-B ({'; '.join(parts)})")
    wrong = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items() if state[k].shape != v.shape
    ]
    if wrong:
        raise WeightsError(f"MedSAM checkpoint {path} has mismatched shapes: {list_names(wrong)}")
    sam.load_state_dict(state, strict=True)


class MedSAM(nn.Module):
    """SAM wrapper that turns (image embedding, box, text token) prompts into mask logits.

    Args:
        config: SAM sizes and the resize scheme shared with the preprocessing.
    """

    def __init__(self, config: SamConfig) -> None:
        super().__init__()
        self.config = config
        self.sam = build_sam(config)

    @property
    def image_size(self) -> int:
        """Side of the square SAM input."""
        return self.config.image_size

    def encode_images(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Image encoder: (N, 3, S, S) preprocessed slices -> (N, C, S/16, S/16).

        Frozen in the paper's setup, so autograd keeps no graph for it; a model trained from
        random initialisation (``trainable == "all"``) trains it through this call.
        """
        expected = (3, self.image_size, self.image_size)
        if pixel_values.ndim != 4 or tuple(pixel_values.shape[1:]) != expected:
            raise InputError(
                f"sam_pixel_values must be (N, {expected[0]}, {expected[1]}, {expected[2]}), "
                f"got {tuple(pixel_values.shape)}"
            )
        return self.sam.image_encoder(pixel_values)

    def input_frame_scale(self, original_sizes: torch.Tensor) -> torch.Tensor:
        """Per-row (sx, sy) mapping normalised slice coordinates to SAM input pixels."""
        sizes = original_sizes.to(torch.float32)  # (B, 2) as (H, W)
        side = float(self.image_size)
        if self.config.resize == "stretch":
            return torch.full((sizes.shape[0], 2), side, device=sizes.device)
        scale = side / sizes.max(dim=1).values
        return torch.stack([sizes[:, 1] * scale, sizes[:, 0] * scale], dim=1)

    def decode(
        self,
        image_embeddings: torch.Tensor,
        image_index: torch.Tensor,
        boxes_xyxy: torch.Tensor | None,
        text_embeddings: torch.Tensor | None,
        original_sizes: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Runs the prompt encoder and mask decoder for one prompt set per row.

        Args:
            image_embeddings: (N, C, h, w) from :meth:`encode_images`, one per image.
            image_index: (B,) row -> image, so several prompts can share one image embedding.
            boxes_xyxy: (B, 4) normalised boxes, or None when the box prompt is off.
            text_embeddings: (B, C) projected h_seg, or None when the text prompt is off.
            original_sizes: (B, 2) slice (H, W), used to place boxes in the SAM frame.

        Returns:
            Low-resolution mask logits (B, 1, 4h, 4w) and SAM's IoU predictions (B, 1).
        """
        box_prompts = None
        if boxes_xyxy is not None:
            scale = self.input_frame_scale(original_sizes).to(boxes_xyxy.dtype)
            box_prompts = boxes_xyxy * scale.repeat(1, 2)
        sparse, dense = self.sam.prompt_encoder(points=None, boxes=box_prompts, masks=None)
        if text_embeddings is not None:
            text_tokens = text_embeddings.unsqueeze(1).to(sparse.dtype)
            sparse = text_tokens if box_prompts is None else torch.cat([sparse, text_tokens], dim=1)
        if box_prompts is None and text_embeddings is not None:
            # the prompt encoder sized its outputs from the (absent) prompts: match the batch
            dense = dense.expand(text_embeddings.shape[0], -1, -1, -1)
        image_pe = self.sam.prompt_encoder.get_dense_pe()
        masks, ious = [], []
        # SAM's decoder repeats one image embedding for the prompts it is given, so it is
        # called once per image with all of that image's prompts.
        for image in torch.unique(image_index).tolist():
            rows = (image_index == image).nonzero(as_tuple=True)[0]
            low_res, iou = self.sam.mask_decoder(
                image_embeddings=image_embeddings[image : image + 1],
                image_pe=image_pe,
                sparse_prompt_embeddings=sparse[rows],
                dense_prompt_embeddings=dense[rows],
                multimask_output=False,
            )
            masks.append((rows, low_res))
            ious.append((rows, iou))
        return _scatter_rows(masks), _scatter_rows(ious)

    def upscale_masks(self, low_res_masks: torch.Tensor) -> torch.Tensor:
        """(B, 1, h, w) low-res logits -> (B, S, S) logits in the SAM input frame."""
        size = (self.image_size, self.image_size)
        return F.interpolate(low_res_masks.float(), size, mode="bilinear", align_corners=False)[:, 0]

    def masks_to_original(self, sam_masks: torch.Tensor, original_sizes: Sequence[Sequence[int]]) -> list[torch.Tensor]:
        """Maps (B, S, S) SAM-frame logits back to each slice's own (H, W)."""
        out = []
        for mask, (height, width) in zip(sam_masks, original_sizes):
            height, width = int(height), int(width)
            if self.config.resize == "longest_side":
                scale = self.image_size / max(height, width)
                mask = mask[: round(height * scale), : round(width * scale)]
            out.append(F.interpolate(mask[None, None], (height, width), mode="bilinear", align_corners=False)[0, 0])
        return out


def _scatter_rows(parts: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """Reassembles per-image decoder outputs into the original row order."""
    order = torch.cat([rows for rows, _ in parts])
    values = torch.cat([value for _, value in parts])
    return values[torch.argsort(order)]
