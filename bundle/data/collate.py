"""Collate: samples (an image with up to K targets) -> one :class:`bundle.data.batch.MediSeeBatch`.

Each target becomes one conversation row; rows of the same image share its CLIP and SAM inputs
through ``image_index``, so the model encodes each image once. A dialogue (a target per turn) is
one training row read once per turn; teacher-forced, each turn read is its own row, after the
earlier turns answered as they truly are on the image (as a user who saw the right answers would
have them).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from bundle.data.base import Target, TargetDialogue, turns_of
from bundle.data.batch import MediSeeBatch, build_batch
from bundle.data.queries import Query
from bundle.prompts import PromptBuilder, TokenizedConversation, Turn, label_question, pad_conversations
from networks.medisee import InputSizes
from transforms.boxes import mask_to_box


def training_conversation(prompts: PromptBuilder, queries: Sequence[Query]) -> TokenizedConversation:
    """The training conversation of a row's turns: every answer with its candidates (or rejection) and
    explanation (a text-only turn's own answer), each labelled."""
    answers = [q.answer if q.answer is not None else prompts.answer(q.explanation, q.present) for q in queries]
    return prompts.dialogue([Turn(q.question, a) for q, a in zip(queries, answers)])


class MediSeeCollate:
    """Builds model batches (:class:`bundle.data.batch.MediSeeBatch`, targets filled in).

    Args:
        prompts: tokenises the questions (training answers or teacher-forced ones).
        clip_size: CLIP input side (the vision config's ``image_size``).
        sam_size: SAM input side (``sam_config#image_size``).
        sam_resize: ``stretch`` or ``longest_side`` (``sam_config#resize``).
        teacher_forced: use the inference answer (no explanation) instead of the training answer.
        padding_side: ``right`` (training) or ``left``.
        with_label_queries: also tokenise each reading's plain label question ("Please segment and
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

    def conversation(self, row: Target | TargetDialogue) -> TokenizedConversation:
        """The tokenised conversation of one row (teacher-forced: its last turn after the earlier ones)."""
        turns = turns_of(row)
        if not self.teacher_forced:
            return training_conversation(self.prompts, [t.query for t in turns])
        history = [Turn(t.query.question, self._history_answer(t.query)) for t in turns[:-1]]
        return self.prompts.inference_example(turns[-1].query.question, history)

    def _history_answer(self, query: Query) -> str:
        """An earlier turn's answer as it truly is on the image (a text-only turn's own text)."""
        return query.answer if query.answer is not None else self.prompts.history_answer(query.present)

    def __call__(self, samples: Sequence[dict]) -> MediSeeBatch:
        rows = [(i, row) for i, s in enumerate(samples) for row in s["targets"]]
        if self.teacher_forced:
            # each turn read is a row of its own, ending with that turn
            rows = [(i, TargetDialogue(turns_of(row)[: k + 1])) for i, row in rows
                    for k, turn in enumerate(turns_of(row)) if turn.read]  # fmt: skip
            read = [[len(turns_of(row)) - 1] for _, row in rows]
        else:
            read = [[k for k, turn in enumerate(turns_of(row)) if turn.read] for _, row in rows]
        dialogues = not self.teacher_forced and any(isinstance(row, TargetDialogue) for _, row in rows)
        readings = [(i, turns_of(row)[k], k + 1) for (i, row), turns in zip(rows, read) for k in turns]
        pad_token_id = self.prompts.tokenizer.pad_token_id
        batch = build_batch(
            [s["image"] for s in samples],
            [self.conversation(row) for _, row in rows],
            [i for i, _ in rows],
            self.sizes,
            pad_token_id,
            self.padding_side,
            read_turns=read if dialogues else None,
        )
        self._add_targets(batch, samples, readings)
        if self.with_label_queries:
            plain = [self.prompts.inference_example(label_question(t.class_name)) for _, t, _ in readings]
            padded = pad_conversations(plain, pad_token_id, self.padding_side)
            batch.label_input_ids, batch.label_attention_mask = padded["input_ids"], padded["attention_mask"]
        return batch

    def _add_targets(
        self, batch: MediSeeBatch, samples: Sequence[dict], readings: list[tuple[int, Target, int]]
    ) -> None:
        """The targets of each reading (its image, target and turn number)."""
        boxes, empty = zip(*(self._box(t) for _, t, _ in readings)) if readings else ((), ())
        batch.masks = [t.mask.float() for _, t, _ in readings]
        batch.boxes = torch.stack(boxes) if boxes else torch.zeros(0, 4)
        batch.box_valid = ~torch.tensor(empty, dtype=torch.bool)
        batch.present = torch.tensor([t.query.present for _, t, _ in readings], dtype=torch.bool)
        batch.kinds = [t.query.kind for _, t, _ in readings]
        batch.class_names = [t.class_name for _, t, _ in readings]
        batch.questions = [t.query.question for _, t, _ in readings]
        batch.sources = [samples[i]["source"] for i, _, _ in readings]
        batch.turns = [turn for _, _, turn in readings]
        batch.image_sources = [s["source"] for s in samples]

    @staticmethod
    def _box(target: Target) -> tuple[torch.Tensor, bool]:
        if target.box is not None:
            return target.box.float(), False
        return mask_to_box(target.mask)
