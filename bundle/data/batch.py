"""The MediSee batch: one typed record from the data to the model, the loss and the metrics.

The training and evaluation collate (:class:`bundle.data.MediSeeCollate`) and the volume inferer
(:class:`bundle.inference.SliceInferer`) both build it with :func:`build_batch`, so a slice reaches
the model the same way in training, evaluation and inference. Rows are conversations (one question
each, or a dialogue); images are slices. Rows of one image share its CLIP and SAM inputs through
``image_index``, so the model encodes each image once. A training dialogue row has a target per
turn: the model reads it once per turn (``turn_row``), and the targets are per reading.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from bundle.prompts import TokenizedConversation, pad_conversations
from networks.medisee import InputSizes
from transforms.preprocess import clip_preprocess, medsam_preprocess


@dataclass
class MediSeeBatch:
    """B conversation rows about N images, with the targets of each reading when training or evaluating.

    A reading is what the model answers: one per row, or one per turn of a dialogue row (``turn_row``).
    The target fields (``masks`` ... ``sources``, ``turns``) and the label query are per reading.

    Attributes:
        input_ids: (B, L) prompt and answer token ids, padded.
        attention_mask: (B, L) 1 on real tokens.
        labels: (B, L) answer ids for the cross entropy, ``IGNORE_INDEX`` elsewhere.
        clip_pixel_values: (N, 3, C, C) CLIP inputs of the images (None: the caller has their encodings).
        sam_pixel_values: (N, 3, S, S) MedSAM inputs of the images (None: likewise).
        image_index: (B,) the image of each row.
        original_sizes: (B, 2) each row's image (H, W): masks come back at this size.
        masks: per reading, the (H, W) float target mask (empty list for inference).
        boxes: (B, 4) normalised xyxy target boxes.
        box_valid: (B,) False where the target mask is empty (no box to learn).
        present: (B,) False for questions about a structure that is not on the image.
        kinds: per row, the question kind (``label``, ``short``, ``long``, ...).
        class_names: per row, the structure asked about.
        questions: per row, the question text.
        sources: per row, the sample's source (file and slice).
        image_sources: per image, its source: the key of :class:`bundle.engines.SamEmbeddingCache`.
        label_input_ids: (B, L') each row's plain label question ("Please segment and locate the
            {class} ..."), teacher-forced: the fine-tuning similarity loss compares against it.
        label_attention_mask: (B, L') its attention mask.
        answer_start: (B,) where each row's current answer begins, for rows holding earlier turns of a
            dialogue (None: one turn per row); with ``turn_row``, (R,) where each reading's answer begins.
        answer_end: (R,) where each reading's answer ends (with ``turn_row``).
        turn_row: (R,) the row of each reading, when rows are read once per turn (None: once per row).
        turns: per reading, its turn number in its dialogue (1 for a single question); empty: all 1.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor
    clip_pixel_values: torch.Tensor | None
    sam_pixel_values: torch.Tensor | None
    image_index: torch.Tensor
    original_sizes: torch.Tensor
    masks: list[torch.Tensor] = field(default_factory=list)
    boxes: torch.Tensor | None = None
    box_valid: torch.Tensor | None = None
    present: torch.Tensor | None = None
    kinds: list[str] = field(default_factory=list)
    class_names: list[str] = field(default_factory=list)
    questions: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    image_sources: list[str] = field(default_factory=list)
    label_input_ids: torch.Tensor | None = None
    label_attention_mask: torch.Tensor | None = None
    answer_start: torch.Tensor | None = None
    answer_end: torch.Tensor | None = None
    turn_row: torch.Tensor | None = None
    turns: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        """The number of rows (conversations)."""
        return int(self.input_ids.shape[0])

    @property
    def num_readings(self) -> int:
        """The number of readings (model outputs): rows, or their turns with ``turn_row``."""
        return len(self) if self.turn_row is None else int(self.turn_row.shape[0])

    def turn_numbers(self) -> list[int]:
        """``turns``, or 1 for every reading of a batch that does not say."""
        return self.turns if self.turns else [1] * self.num_readings

    def reading_rows(self) -> torch.Tensor:
        """(R,) the row of each reading (``turn_row``, or every row once)."""
        if self.turn_row is not None:
            return self.turn_row
        return torch.arange(len(self), device=self.input_ids.device)

    def to(self, device: torch.device | str | None, non_blocking: bool = False, **kwargs) -> MediSeeBatch:
        """The same batch with its tensors (and lists of tensors) on ``device``.

        Args:
            device: where the model is.
            non_blocking: copy asynchronously (from pinned memory the copy overlaps compute).
            **kwargs: further ``Tensor.to`` arguments.
        """
        return self._map(lambda tensor: tensor.to(device, non_blocking=non_blocking, **kwargs))

    def pin_memory(self) -> MediSeeBatch:
        """The same batch in page-locked memory (PyTorch's data loader calls this with ``pin_memory``)."""
        return self._map(torch.Tensor.pin_memory)

    def model_inputs(
        self,
        sam_image_embeddings: torch.Tensor | None = None,
        targets: bool = True,
        label_query: bool = False,
        clip_image_features: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """The keyword arguments of ``MediSee.forward``.

        Args:
            sam_image_embeddings: (N, C, h, w) SAM embeddings the caller computed or cached; None
                passes the SAM pixels, which the model then encodes itself.
            clip_image_features: (N, T, H) CLIP features the caller cached; None passes the CLIP pixels.
            targets: include the text ``labels`` (for the cross entropy); False for a forward pass without loss.
            label_query: the rows' plain label questions instead of their questions (never with labels).
        """
        if label_query:
            if self.label_input_ids is None:
                raise ValueError("the batch holds no label queries (collate with with_label_queries=True)")
            inputs = {"input_ids": self.label_input_ids, "attention_mask": self.label_attention_mask}
            inputs.update(
                image_index=self.image_index[self.reading_rows()],
                original_sizes=self.original_sizes[self.reading_rows()],
            )
        else:
            inputs = {"input_ids": self.input_ids, "attention_mask": self.attention_mask}
            if targets:
                inputs["labels"] = self.labels
            for name in ("answer_start", "answer_end", "turn_row"):
                if getattr(self, name) is not None:
                    inputs[name] = getattr(self, name)
            inputs.update(image_index=self.image_index, original_sizes=self.original_sizes)
        if clip_image_features is None:
            inputs["clip_pixel_values"] = self.clip_pixel_values
        else:
            inputs["clip_image_features"] = clip_image_features
        if sam_image_embeddings is None:
            inputs["sam_pixel_values"] = self.sam_pixel_values
        else:
            inputs["sam_image_embeddings"] = sam_image_embeddings
        return inputs

    def present_or_all(self) -> torch.Tensor:
        """``present``, or all True for a batch that does not say (every question about a visible target)."""
        if self.present is not None:
            return self.present
        return torch.ones(self.num_readings, dtype=torch.bool, device=self.input_ids.device)

    def _map(self, move: Callable[[torch.Tensor], torch.Tensor]) -> MediSeeBatch:
        changes = {}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if isinstance(value, torch.Tensor):
                changes[item.name] = move(value)
            elif isinstance(value, list) and value and isinstance(value[0], torch.Tensor):
                changes[item.name] = [move(v) for v in value]
        return dataclasses.replace(self, **changes)


def build_batch(
    images: Sequence[torch.Tensor],
    conversations: Sequence[TokenizedConversation],
    image_index: Sequence[int],
    sizes: InputSizes,
    pad_token_id: int,
    padding_side: str = "right",
    pixel_dtype: torch.dtype | None = None,
    pixels: bool = True,
    read_turns: Sequence[Sequence[int]] | None = None,
) -> MediSeeBatch:
    """The model inputs of conversation rows about images (targets are the collate's to add).

    Args:
        images: N (C, H, W) slices, intensities in [0, 1]; the tensors are made where they are.
        conversations: B tokenised conversations, one per row.
        image_index: B indices into ``images``: the image of each row.
        sizes: the model's input sizes (``MediSee.input_sizes`` or the config's).
        pad_token_id: the tokenizer's padding id.
        padding_side: ``right`` (training) or ``left``.
        pixel_dtype: dtype of the pixel values (the model's); None keeps float32.
        pixels: preprocess the images for CLIP and SAM; False when their encodings are cached.
        read_turns: per row, the turns (0-based) the model reads, each its own reading with a target
            (training on dialogues); None: one reading per row, its last answer.
    """
    device = images[0].device
    tokens = {k: v.to(device) for k, v in pad_conversations(conversations, pad_token_id, padding_side).items()}
    if read_turns is not None:
        tokens.update({k: v.to(device) for k, v in turn_readings(conversations, read_turns, padding_side).items()})
    clip_pixels = sam_pixels = None
    if pixels:
        clip_pixels = clip_preprocess(images, sizes.clip_size)
        sam_pixels = medsam_preprocess(images, sizes.sam_size, sizes.sam_resize)
        if pixel_dtype is not None:
            clip_pixels, sam_pixels = clip_pixels.to(pixel_dtype), sam_pixels.to(pixel_dtype)
    return MediSeeBatch(
        **tokens,
        clip_pixel_values=clip_pixels,
        sam_pixel_values=sam_pixels,
        image_index=torch.tensor(list(image_index), dtype=torch.long, device=device),
        original_sizes=torch.tensor([list(images[i].shape[-2:]) for i in image_index], dtype=torch.long, device=device),
    )


def turn_readings(
    conversations: Sequence[TokenizedConversation], read_turns: Sequence[Sequence[int]], padding_side: str = "right"
) -> dict[str, torch.Tensor]:
    """``turn_row``, ``answer_start`` and ``answer_end`` (R,) of the turns read, in the padded rows' positions.

    Args:
        conversations: the B rows (each with its ``answer_spans``).
        read_turns: per row, the 0-based turns read, in reading order.
        padding_side: as the rows were padded (left padding shifts every span).
    """
    length = max(len(c.input_ids) for c in conversations)
    rows, starts, ends = [], [], []
    for row, (conversation, turns) in enumerate(zip(conversations, read_turns, strict=True)):
        offset = length - len(conversation.input_ids) if padding_side == "left" else 0
        for turn in turns:
            start, end = conversation.answer_spans[turn]
            rows.append(row)
            starts.append(offset + start)
            ends.append(offset + end)
    as_long = lambda values: torch.tensor(values, dtype=torch.long)  # noqa: E731
    return {"turn_row": as_long(rows), "answer_start": as_long(starts), "answer_end": as_long(ends)}
