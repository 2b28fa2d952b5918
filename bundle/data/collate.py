"""Collate: samples (an image with up to K targets) -> one padded model batch.

Each target becomes one conversation row; rows of the same image share its CLIP and SAM inputs
through ``image_index``, so the model encodes each image once.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from bundle.engines.batch import LABEL_QUERY_PREFIX
from bundle.prompts import PromptBuilder, label_question, pad_conversations
from transforms.boxes import masks_to_boxes
from transforms.preprocess import clip_preprocess, medsam_preprocess


class MediSeeCollate:
    """Builds model batches.

    Args:
        prompts: tokenises the questions (training answers or teacher-forced ones).
        clip_size: CLIP input side (the vision config's ``image_size``).
        sam_size: SAM input side (``sam_config#image_size``).
        sam_resize: ``stretch`` or ``longest_side`` (``sam_config#resize``).
        teacher_forced: use the inference answer (no explanation) instead of the training answer.
        padding_side: ``right`` (training) or ``left``.
        with_label_queries: also tokenise each row's plain label question ("Please segment and
            locate the {class} ...", teacher-forced) as ``label_input_ids`` /
            ``label_attention_mask``: the fine-tuning similarity loss compares against it.

    The batch holds the model inputs (``input_ids``, ``attention_mask``, ``labels``,
    ``clip_pixel_values``, ``sam_pixel_values``, ``image_index``, ``original_sizes``) and the
    targets: ``masks`` (list of (H, W) float), ``boxes`` (B, 4 normalised xyxy), ``box_valid``
    (B,) (False for empty masks), ``present`` (B,) bool (False for questions about a structure that
    is not on the image), ``kinds``, ``class_names``, ``questions``, ``sources`` (per row)
    and ``image_sources`` (per image: the key of :class:`bundle.engines.SamEmbeddingCache`).
    """

    def __init__(
        self,
        prompts: PromptBuilder,
        clip_size: int,
        sam_size: int,
        sam_resize: str = "stretch",
        teacher_forced: bool = False,
        padding_side: str = "right",
        with_label_queries: bool = False,
    ) -> None:
        self.prompts = prompts
        self.clip_size = clip_size
        self.sam_size = sam_size
        self.sam_resize = sam_resize
        self.teacher_forced = teacher_forced
        self.padding_side = padding_side
        self.with_label_queries = with_label_queries

    def conversation(self, target):
        """The tokenised conversation of one target."""
        if self.teacher_forced:
            return self.prompts.inference_example(target.query.question)
        query = target.query
        return self.prompts.training_example(query.question, query.explanation, query.present)

    def __call__(self, samples: Sequence[dict]) -> dict:
        images = [s["image"] for s in samples]
        rows = [(i, t) for i, s in enumerate(samples) for t in s["targets"]]
        batch = pad_conversations(
            [self.conversation(t) for _, t in rows], self.prompts.tokenizer.pad_token_id, self.padding_side
        )
        masks = [t.mask.float() for _, t in rows]
        boxes, empty = zip(*(self._box(t) for _, t in rows)) if rows else ((), ())
        batch.update(
            clip_pixel_values=clip_preprocess(images, self.clip_size),
            sam_pixel_values=medsam_preprocess(images, self.sam_size, self.sam_resize),
            image_index=torch.tensor([i for i, _ in rows], dtype=torch.long),
            original_sizes=torch.tensor([list(images[i].shape[-2:]) for i, _ in rows], dtype=torch.long),
            masks=masks,
            boxes=torch.stack(boxes) if boxes else torch.zeros(0, 4),
            box_valid=~torch.tensor(empty, dtype=torch.bool),
            kinds=[t.query.kind for _, t in rows],
            present=torch.tensor([t.query.present for _, t in rows], dtype=torch.bool),
            class_names=[t.class_name for _, t in rows],
            questions=[t.query.question for _, t in rows],
            sources=[samples[i]["source"] for i, _ in rows],
            image_sources=[s["source"] for s in samples],
        )
        if self.with_label_queries:
            plain = [self.prompts.inference_example(label_question(t.class_name)) for _, t in rows]
            padded = pad_conversations(plain, self.prompts.tokenizer.pad_token_id, self.padding_side)
            batch.update({f"{LABEL_QUERY_PREFIX}{k}": v for k, v in padded.items() if k != "labels"})
        return batch

    @staticmethod
    def _box(target) -> tuple[torch.Tensor, bool]:
        if target.box is not None:
            return target.box.float(), False
        boxes, empty = masks_to_boxes(target.mask[None])
        return boxes[0], bool(empty[0])
