"""Collate: samples (an image with up to K targets) -> one :class:`bundle.data.batch.MediSeeBatch`.

Each target becomes one conversation row; rows of the same image share its CLIP and SAM inputs
through ``image_index``, so the model encodes each image once.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from bundle.data.batch import MediSeeBatch, build_batch
from bundle.prompts import PromptBuilder, label_question, pad_conversations
from networks.medisee import InputSizes
from transforms.boxes import mask_to_box


class MediSeeCollate:
    """Builds model batches (:class:`bundle.data.batch.MediSeeBatch`, targets filled in).

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
        self.sizes = InputSizes(clip_size, sam_size, sam_resize)
        self.teacher_forced = teacher_forced
        self.padding_side = padding_side
        self.with_label_queries = with_label_queries

    def conversation(self, target):
        """The tokenised conversation of one target."""
        if self.teacher_forced:
            return self.prompts.inference_example(target.query.question)
        query = target.query
        return self.prompts.training_example(query.question, query.explanation, query.present)

    def __call__(self, samples: Sequence[dict]) -> MediSeeBatch:
        rows = [(i, t) for i, s in enumerate(samples) for t in s["targets"]]
        pad_token_id = self.prompts.tokenizer.pad_token_id
        batch = build_batch(
            [s["image"] for s in samples],
            [self.conversation(t) for _, t in rows],
            [i for i, _ in rows],
            self.sizes,
            pad_token_id,
            self.padding_side,
        )
        boxes, empty = zip(*(self._box(t) for _, t in rows)) if rows else ((), ())
        batch.masks = [t.mask.float() for _, t in rows]
        batch.boxes = torch.stack(boxes) if boxes else torch.zeros(0, 4)
        batch.box_valid = ~torch.tensor(empty, dtype=torch.bool)
        batch.present = torch.tensor([t.query.present for _, t in rows], dtype=torch.bool)
        batch.kinds = [t.query.kind for _, t in rows]
        batch.class_names = [t.class_name for _, t in rows]
        batch.questions = [t.query.question for _, t in rows]
        batch.sources = [samples[i]["source"] for i, _ in rows]
        batch.image_sources = [s["source"] for s in samples]
        if self.with_label_queries:
            plain = [self.prompts.inference_example(label_question(t.class_name)) for _, t in rows]
            padded = pad_conversations(plain, pad_token_id, self.padding_side)
            batch.label_input_ids, batch.label_attention_mask = padded["input_ids"], padded["attention_mask"]
        return batch

    @staticmethod
    def _box(target) -> tuple[torch.Tensor, bool]:
        if target.box is not None:
            return target.box.float(), False
        return mask_to_box(target.mask)
