"""The volume inferer: MediSee on every slice of a volume, ``batch_size`` slices per forward pass.

Each slice is one image with one conversation row (the question with the teacher-forced answer
"It is [SEG] and [BBOX]."), so the batch's ``image_index`` is simply 0..B-1; the batch is a
:class:`bundle.data.batch.MediSeeBatch`, built by the training collate's function. A slice keeps
its mask (the model's ``mask_logits > 0`` at the slice's own size) only when its presence score
reaches ``presence_threshold``; the masks are written back into a volume on the loaded grid. The
optional :class:`bundle.inference.answer.AnswerGenerator` answers the question on the slice with
the largest predicted target (none: the slice the model found likeliest), and the optional 3D
clean-up (:class:`transforms.cleanup.TargetMaskCleanup`) then makes the mask consistent across
slices. When no slice holds the target, the answer says it was not found. The answer is then worded
for a person (:class:`bundle.inference.wording.AnswerWording`: no candidate tokens); the model's own
text is kept beside it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from monai.data import MetaTensor
from monai.inferers import Inferer
from tqdm import tqdm

from bundle.data.batch import MediSeeBatch, build_batch
from bundle.inference import keys as K
from bundle.inference.answer import AnswerGenerator, not_found_answer
from bundle.inference.encodings import SliceEncodings
from bundle.inference.settings import flag
from bundle.inference.structures import names_single_structure
from bundle.inference.wording import AnswerWording
from bundle.prompts import PromptBuilder, TokenizedConversation, Turn
from common.errors import ConfigError
from transforms import keys as TK
from transforms.cleanup import TargetMaskCleanup
from transforms.reassemble import empty_mask_volume, put_slice
from transforms.slicing import check_axis, iter_slices

logger = logging.getLogger(__name__)

MIN_TARGET_PIXELS = 1
"""A slice holds the target from this many predicted pixels."""


ProgressCallback = Callable[[int, int], None]
"""A progress callback: (slices done, slices in all)."""


@dataclass(frozen=True)
class PastTurn:
    """An earlier turn of a dialogue about a volume, as its follow-ups see it.

    Attributes:
        question: the question asked.
        found: the slice indices where the target was found (after the presence gate and clean-up).
    """

    question: str
    found: frozenset[int]


@dataclass
class SlicePrediction:
    """MediSee's output on one slice.

    Attributes:
        index: slice index along the slicing axis (of the volume as loaded, RAS).
        box: (4,) normalised xyxy box from the box head (x along the slice's W, y along its H).
        score: mean target probability (sigmoid of the mask logits) over the predicted mask; 0 when empty.
        pixels: number of target pixels in the slice's final mask (after the presence gate and clean-up).
        presence: the model's presence score of the slice (None without a rejection token).
    """

    index: int
    box: torch.Tensor
    score: float
    pixels: int
    presence: float | None = None

    @property
    def has_target(self) -> bool:
        """Whether the model found the target on this slice."""
        return self.pixels >= MIN_TARGET_PIXELS


def batches(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """Consecutive chunks of ``items`` of at most ``size`` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def slice_batch(
    network: torch.nn.Module,
    images: Sequence[torch.Tensor],
    conversation: TokenizedConversation | Sequence[TokenizedConversation],
    pad_token_id: int,
    pixels: bool = True,
) -> MediSeeBatch:
    """The batch of B slices, one row per slice, built as the training collate's.

    Sizes and the SAM resize scheme come from the model (``MediSee.input_sizes``), so the preprocessing
    always matches it; the pixels are in the model's dtype.

    Args:
        network: the MediSee model.
        images: the B (C, H, W) slices.
        conversation: one conversation for every slice, or one per slice (a dialogue's earlier
            answers differ from slice to slice).
        pad_token_id: the tokenizer's padding id.
        pixels: preprocess the slices for CLIP and SAM (False: their encodings are cached).
    """
    rows = len(images)
    conversations = [conversation] * rows if isinstance(conversation, TokenizedConversation) else list(conversation)
    return build_batch(
        images,
        conversations,
        range(rows),
        network.input_sizes,
        pad_token_id,
        pixel_dtype=network.llava.dtype,
        pixels=pixels,
    )


def is_blank(volume: torch.Tensor, name: str = "") -> bool:
    """Whether the preprocessed volume is constant (e.g. all air in the window), with a warning saying so."""
    low, high = torch.aminmax(volume)
    if bool(low < high):
        return False
    logger.warning(
        "volume %s is constant after intensity preprocessing (every voxel %g): nothing to segment; "
        "check the image and --window / --a_min / --a_max", name or "(unnamed)", float(low),
    )  # fmt: skip
    return True


class SliceInferer(Inferer):
    """Runs MediSee over the slices of a (C, X, Y, Z) volume for one question.

    Args:
        prompts: tokenises the question (built for the model: image token count, candidates).
        batch_size: slices per forward pass; results do not depend on it.
        slice_axis: spatial axis to slice along (2 = axial for RAS volumes).
        skip_empty: skip constant (background) slices; their mask stays empty.
        answer_generator: writes the text answer; None skips generation.
        progress: show a progress bar of the slices done.
        presence_threshold: a slice keeps its mask from this presence score (models with a rejection token).
        cleanup: the 3D clean-up of the volume's mask; None keeps the per-slice masks as they are.
    """

    def __init__(
        self,
        prompts: PromptBuilder,
        batch_size: int = 8,
        slice_axis: int = 2,
        skip_empty: bool | str = False,
        answer_generator: AnswerGenerator | None = None,
        progress: bool | str = True,
        presence_threshold: float = 0.5,
        cleanup: TargetMaskCleanup | None = None,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"config 'batch_size' must be a positive integer, got {batch_size!r}")
        self.prompts = prompts
        self.batch_size = batch_size
        self.slice_axis = check_axis(slice_axis)
        self.skip_empty = flag(skip_empty, "skip_empty_slices")
        self.answer_generator = answer_generator
        self.progress = flag(progress, "progress")
        if isinstance(presence_threshold, bool) or not 0.0 <= float(presence_threshold) <= 1.0:
            raise ConfigError(f"config 'presence_threshold' must be a number in [0, 1], got {presence_threshold!r}")
        self.presence_threshold = float(presence_threshold)
        self.cleanup = cleanup
        self.wording = AnswerWording.for_prompts(prompts)

    def __call__(
        self,
        inputs: MetaTensor,
        network: torch.nn.Module,
        query: str,
        name: str = "",
        history: Sequence[PastTurn] = (),
        encodings: SliceEncodings | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> dict[str, Any]:
        """Segments the target on every slice, then answers the question.

        Args:
            inputs: the preprocessed (C, X, Y, Z) volume, intensities in [0, 1], on the model's device.
            network: a :class:`networks.MediSee` in eval mode.
            query: the question.
            name: the volume's name, for the progress bar.
            history: the earlier turns of a dialogue about this volume; each slice's conversation holds
                them as answered on that slice.
            encodings: the volume's cached slice encodings (filled on first use); None encodes every slice.
            on_progress: called with (slices done, slices in all) after each batch (a front end's progress bar).

        Returns:
            ``pred``: (1, X, Y, Z) uint8 mask on ``inputs``' grid (with its metadata and trace);
            ``slices``: :class:`SlicePrediction` of the slices holding the target; ``predictions``:
            those of every slice processed; ``answer`` (worded for a person), ``answer_raw`` (the model's
            text) and ``answer_slice`` (None when generation is off or no slice was processed).
        """
        # a volume with nothing to see gets no model calls: random or confused masks would look like findings
        skip_empty = self.skip_empty or is_blank(inputs, name)
        slices = list(iter_slices(inputs, self.slice_axis, skip_empty=skip_empty))
        mask = empty_mask_volume(inputs)
        predictions = self.segment(slices, network, query, name, mask, history, encodings, on_progress)
        answer, answer_slice = self.answer(network, slices, predictions, query, history)
        if self.cleanup is not None:
            mask = self.cleanup(mask, single_structure=names_single_structure([query, answer]))
            self.recount(predictions, mask)
        found = [p for p in predictions if p.has_target]
        raw = answer
        if not found and answer is not None:
            answer = not_found_answer(answer, self.prompts.rejection_token)
        return {
            K.PRED: mask,
            K.SLICES: found,
            K.PREDICTIONS: predictions,
            K.ANSWER: self.wording(answer, query, found=bool(found)),
            K.ANSWER_RAW: raw,
            K.ANSWER_SLICE: answer_slice,
        }

    def segment(
        self,
        slices: Sequence[dict],
        network: torch.nn.Module,
        query: str,
        name: str,
        mask: torch.Tensor,
        history: Sequence[PastTurn] = (),
        encodings: SliceEncodings | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> list[SlicePrediction]:
        """Runs the model on ``slices`` in batches; writes each slice's mask into ``mask`` and returns the predictions.

        Masks go straight into the (1, X, Y, Z) volume, batch by batch, so a large volume never holds
        its slice masks twice. ``history``, ``encodings`` and ``on_progress`` are as for :meth:`__call__`.
        """
        shared = None if history else self.prompts.inference_example(query)
        made: dict[tuple[bool, ...], TokenizedConversation] = {}
        pad_token_id = self.prompts.tokenizer.pad_token_id
        predictions: list[SlicePrediction] = []
        with tqdm(total=len(slices), desc=name or "slices", unit="slice", disable=not self.progress) as bar:
            for batch in batches(slices, self.batch_size):
                indices = [int(item[TK.SLICE_INDEX]) for item in batch]
                conversation = shared if shared is not None else self.slice_conversations(query, history, indices, made)
                cached = encodings is not None and encodings.holds(indices)
                inputs = slice_batch(network, [s[TK.IMAGE] for s in batch], conversation, pad_token_id, not cached)
                if encodings is None:
                    out = network(**inputs.model_inputs(targets=False))
                else:
                    clip, sam = encodings.encode(network, indices, inputs)
                    out = network(**inputs.model_inputs(sam, targets=False, clip_image_features=clip))
                presence = out.presence_scores
                presence = [None] * len(batch) if presence is None else presence.float().cpu().tolist()
                logits_rows = out.gated_mask_logits(self.presence_threshold)
                for item, logits, box, score in zip(batch, logits_rows, out.boxes_xyxy, presence):
                    index = int(item[TK.SLICE_INDEX])
                    put_slice(mask, self.slice_axis, index, logits > 0)
                    predictions.append(self.describe(index, logits, box, score))
                bar.update(len(batch))
                if on_progress is not None:
                    on_progress(bar.n, len(slices))
        return predictions

    @staticmethod
    def describe(index: int, logits: torch.Tensor, box: torch.Tensor, presence: float | None = None) -> SlicePrediction:
        """The prediction record of one slice from its (gated) mask logits, box and presence score."""
        foreground = logits > 0
        pixels = int(foreground.sum())
        score = float(torch.sigmoid(logits.float())[foreground].mean()) if pixels else 0.0
        return SlicePrediction(index=index, box=box.float().cpu(), score=score, pixels=pixels, presence=presence)

    def recount(self, predictions: Sequence[SlicePrediction], mask: torch.Tensor) -> None:
        """Sets each prediction's pixel count from the cleaned (1, X, Y, Z) ``mask``."""
        spatial = mask.as_tensor()[0] if isinstance(mask, MetaTensor) else mask[0]
        for prediction in predictions:
            # slice by slice: counting the whole volume at once makes an int64 copy of it (8 bytes a voxel)
            prediction.pixels = int(torch.count_nonzero(spatial.select(self.slice_axis, prediction.index)))

    def slice_conversations(
        self,
        query: str,
        history: Sequence[PastTurn],
        indices: Sequence[int],
        made: dict[tuple[bool, ...], TokenizedConversation] | None = None,
    ) -> list[TokenizedConversation]:
        """The teacher-forced conversation of each slice of ``indices``, after the dialogue's earlier turns.

        Slices whose earlier turns were answered alike share one conversation: each is tokenised once,
        kept in ``made`` (pass the same dict for every batch of a volume).
        """
        made = {} if made is None else made
        conversations = []
        for index in indices:
            pattern = tuple(index in past.found for past in history)
            if pattern not in made:
                made[pattern] = self.prompts.inference_example(query, self.history_on(history, index))
            conversations.append(made[pattern])
        return conversations

    def history_on(self, history: Sequence[PastTurn], index: int) -> list[Turn]:
        """The earlier turns as slice ``index``'s conversation holds them: each answered as found there or not."""
        return [Turn(past.question, self.prompts.history_answer(index in past.found)) for past in history]

    def answer(
        self,
        network: torch.nn.Module,
        slices: Sequence[dict],
        predictions: Sequence[SlicePrediction],
        query: str,
        history: Sequence[PastTurn] = (),
    ) -> tuple[str | None, int | None]:
        """The generated answer and the index of the slice it was generated on; Nones when generation is off."""
        index = self.answer_slice(predictions, slices)
        if self.answer_generator is None or index is None:
            return None, None
        image = next(s[TK.IMAGE] for s in slices if s[TK.SLICE_INDEX] == index)
        return self.answer_generator(network, image, query, self.history_on(history, index)), index

    @staticmethod
    def answer_slice(predictions: Sequence[SlicePrediction], slices: Sequence[dict]) -> int | None:
        """The slice to answer on: the one with the largest predicted target; else the one with the highest
        presence score; else (no rejection token) the middle slice processed."""
        found = [p for p in predictions if p.has_target]
        if found:
            return max(found, key=lambda p: p.pixels).index
        scored = [p for p in predictions if p.presence is not None]
        if scored:
            return max(scored, key=lambda p: p.presence).index
        if slices:
            return int(slices[len(slices) // 2][TK.SLICE_INDEX])
        return None
