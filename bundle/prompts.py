"""Prompts: the Mistral-instruct conversation, question/answer templates and tokenisation (paper Sec. 4.1).

A conversation is ``<s>[INST] <image>\\n{question} [/INST] {answer}</s>``; ``<image>`` stands for
``num_image_tokens`` placeholder ids that the model fills with CLIP features. Cross-entropy labels
cover only the answer (and its closing ``</s>``). The answer names every candidate token
("It is [SEG] and [BBOX]."), followed by an explanation for reasoning questions. When the target
is not on the image (a negative question) and the model has a rejection token, the answer is
"It is [REJ]." followed by a sentence saying what is not visible: the rejection token takes the
first candidate's place, after the same words, so one state decides between the two.

A dialogue continues the conversation in Mistral-instruct's multi-turn form,
``<s>[INST] <image>\n{q1} [/INST] {a1}</s>[INST] {q2} [/INST] {a2}</s>``: the image comes once, in
the first turn, and each answer holds its own candidate (or rejection) tokens. At inference the
candidate states are read in the last answer only (``answer_start``); earlier answers are context.
In training every answer is labelled and read (``answer_spans``), each for its own target.

Teacher-forced inference uses the same answer prefix as training, so each candidate state is read
in the context it was trained in. (The released evaluation forced "[SEG] and [BBOX]." without
"It is"; with our own trained models the training context is the faithful choice.)
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase

from common.errors import ConfigError
from networks.medisee import IGNORE_INDEX

QUERY_KINDS = ("label", "short", "long", "follow_up")
"""Question kinds: plain label questions, short and long reasoning questions, and follow-ups in a dialogue
(a question that refers to an earlier turn, e.g. "And the one on the other side?")."""
MAX_TURNS = 8
"""The longest dialogue a dataset may ask for and metrics split by turn (conversations grow by every turn)."""

LABEL_QUESTIONS = (
    "Please segment and locate the {class_name} in this image.",
    "Can you segment and locate the {class_name} in this image?",
    "Where is the {class_name} in this image? Please output segmentation mask and location bounding box.",
    "Segment the {class_name} and give its bounding box.",
    "What is the {class_name} in this image? Please respond with segmentation mask and bounding box.",
)
REASONING_INSTRUCTION = "Please output segmentation mask and location bounding box, and explain why."
ANSWER_PREFIX = "It is {candidates}."
CANDIDATE_JOINER = " and "
NOT_VISIBLE = "The {class_name} is not visible in this image."
DESCRIBED_NOT_VISIBLE = "That describes the {class_name}, which is not visible in this image."
NOTHING_TO_SEGMENT = "This request does not name anything to segment in this image."


@dataclass
class TokenizedConversation:
    """One tokenised conversation.

    Attributes:
        input_ids: (L,) ids including BOS, the image placeholders and the answer(s).
        labels: (L,) ids on answer positions, ``IGNORE_INDEX`` elsewhere.
        answer_start: where the last answer begins, for a conversation of several turns (its
            candidate tokens are the ones read); None for one turn (the whole row is read).
        answer_spans: (start, end) of every answer, in turn order: where each turn's candidate
            tokens are read when every turn has a target (training on dialogues).
    """

    input_ids: torch.Tensor
    labels: torch.Tensor
    answer_start: int | None = None
    answer_spans: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class Turn:
    """One question and its answer in a dialogue (the answer as :meth:`PromptBuilder.answer` writes it)."""

    question: str
    answer: str


def label_question(class_name: str, rng: random.Random | None = None) -> str:
    """A plain label question ("Please segment and locate the liver in this image.")."""
    template = LABEL_QUESTIONS[0] if rng is None else rng.choice(LABEL_QUESTIONS)
    return template.format(class_name=class_name)


def reasoning_question(description: str) -> str:
    """A reasoning question: the (implicit) description plus the output instruction."""
    description = description.strip()
    return f"{description} {REASONING_INSTRUCTION}"


def absence_explanation(class_name: str | None, kind: str) -> str:
    """The sentence a rejected answer carries: what is not visible (a reasoning question: what it describes).

    Args:
        class_name: the structure asked about; None for a request that names none (e.g. unrelated text).
        kind: the query kind (``label``, ``short``, ``long``).
    """
    if class_name is None:
        return NOTHING_TO_SEGMENT
    template = NOT_VISIBLE if kind == "label" else DESCRIBED_NOT_VISIBLE
    return template.format(class_name=class_name)


class PromptBuilder:
    """Turns questions and answers into token ids and labels for one tokenizer and model.

    Args:
        tokenizer: MediSee's tokenizer (with the image and candidate tokens).
        num_image_tokens: image placeholders per prompt (``MediSee.num_image_tokens``).
        candidate_tokens: the model's candidate tokens, in order.
        image_token: the image placeholder token.
        max_positions: longest sequence the language model takes (its ``max_position_embeddings``);
            longer conversations are refused (None: no limit).
        rejection_token: the model's rejection token (None: the model has none, ``presence: none``).
    """

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        num_image_tokens: int,
        candidate_tokens: Sequence[str] = ("[SEG]", "[BBOX]"),
        image_token: str = "<image>",
        max_positions: int | None = None,
        rejection_token: str | None = None,
    ) -> None:
        vocab = tokenizer.get_vocab()
        rejection = [rejection_token] if rejection_token is not None else []
        missing = [t for t in (image_token, *candidate_tokens, *rejection) if t not in vocab]
        if missing:
            raise ConfigError(f"the tokenizer lacks {missing}; build it with networks.build_tokenizer")
        if tokenizer.eos_token_id is None:
            raise ConfigError("the tokenizer has no end-of-sequence token")
        self.tokenizer = tokenizer
        self.num_image_tokens = num_image_tokens
        self.candidate_tokens = list(candidate_tokens)
        self.image_token_id = vocab[image_token]
        self.max_positions = max_positions
        self.rejection_token = rejection_token

    @classmethod
    def for_model(cls, tokenizer: PreTrainedTokenizerBase, model) -> PromptBuilder:
        """A builder matching a :class:`networks.MediSee` (image token count, candidates, longest sequence)."""
        max_positions = model.llava.config.text_config.max_position_embeddings
        config = model.config
        rejection = config.rejection_token if config.presence == "token" else None
        return cls(
            tokenizer, model.num_image_tokens, config.candidate_tokens, config.image_token, max_positions, rejection
        )

    def check_length(self, question: str, length: int, earlier_turns: int = 0) -> None:
        """Refuses a sequence of ``length`` positions that holds ``question`` when the model cannot take it.

        Raises:
            ConfigError: naming the question's length and the longest question that fits, derived from
                the model's ``max_position_embeddings`` (positions past it were never trained).
        """
        if self.max_positions is None or length <= self.max_positions:
            return
        question_tokens = len(self.tokenizer(question.strip(), add_special_tokens=False).input_ids)
        room = self.max_positions - (length - question_tokens)
        if earlier_turns:
            raise ConfigError(
                f"the dialogue is too long: with its {earlier_turns} earlier turns, the {self.num_image_tokens} "
                f"image tokens and the answer it needs {length} positions, but the model takes {self.max_positions} "
                f"(text_config 'max_position_embeddings'): start a new dialogue, or ask in at most {max(room, 0)} tokens"
            )
        raise ConfigError(
            f"the question is too long: {len(question.strip())} characters, {question_tokens} tokens; with the "
            f"{self.num_image_tokens} image tokens and the answer it needs {length} positions, but the model takes "
            f"{self.max_positions} (text_config 'max_position_embeddings'): ask in at most {max(room, 0)} tokens"
        )

    def answer(self, explanation: str | None = None, present: bool = True) -> str:
        """The answer text: "It is [SEG] and [BBOX]." (or "It is [REJ]." when the target is not
        ``present``) plus an optional explanation.

        Raises:
            ConfigError: an absent target for a model without a rejection token.
        """
        if present:
            text = ANSWER_PREFIX.format(candidates=CANDIDATE_JOINER.join(self.candidate_tokens))
        elif self.rejection_token is None:
            raise ConfigError(
                "a question about an absent structure needs a rejection token: set 'medisee_config#presence' to "
                "'token', or 'negative_fraction' to 0"
            )
        else:
            text = ANSWER_PREFIX.format(candidates=self.rejection_token)
        return f"{text} {explanation.strip()}" if explanation and explanation.strip() else text

    def prompt_ids(self, question: str, history: Sequence[Turn] = ()) -> list[int]:
        """Ids of ``<s>[INST] <image>\\n{question} [/INST]`` (the generation prompt), after the earlier
        turns of a dialogue when ``history`` holds them."""
        if history:
            ids = self.dialogue(history).input_ids.tolist()
            return ids + self._instruction_ids(question, first=False)
        return self._instruction_ids(question, first=True)

    def _instruction_ids(self, question: str, first: bool) -> list[int]:
        """``<s>[INST] <image>\\n{question} [/INST]`` for the first turn, ``[INST] {question} [/INST]`` after it."""
        question = question.strip()
        if not question:
            raise ConfigError("the question is empty")
        if not first:
            return self.tokenizer(f"[INST] {question} [/INST]", add_special_tokens=False).input_ids
        head = self.tokenizer("[INST] ").input_ids  # BOS comes from the tokenizer
        tail = self.tokenizer(f"\n{question} [/INST]", add_special_tokens=False).input_ids
        return head + [self.image_token_id] * self.num_image_tokens + tail

    def _answer_ids(self, answer: str) -> list[int]:
        """`` {answer}</s>``."""
        return [*self.tokenizer(f" {answer.strip()}", add_special_tokens=False).input_ids, self.tokenizer.eos_token_id]

    def conversation(self, question: str, answer: str) -> TokenizedConversation:
        """A full conversation with CE labels on the answer and the closing ``</s>`` only."""
        return self.dialogue([Turn(question, answer)])

    def dialogue(self, turns: Sequence[Turn], label_every_answer: bool = True) -> TokenizedConversation:
        """A conversation of one or more turns, the image in the first.

        Args:
            turns: the questions and answers, in order.
            label_every_answer: CE labels on every answer (training); False labels the last one only.
        """
        if not turns:
            raise ConfigError("a dialogue needs at least one turn")
        ids: list[int] = []
        labels: list[int] = []
        spans = []
        for k, turn in enumerate(turns):
            prompt = self._instruction_ids(turn.question, first=k == 0)
            answer = self._answer_ids(turn.answer)
            start = len(ids) + len(prompt)
            spans.append((start, start + len(answer)))
            labelled = label_every_answer or k == len(turns) - 1
            ids += prompt + answer
            labels += [IGNORE_INDEX] * len(prompt) + (answer if labelled else [IGNORE_INDEX] * len(answer))
        self.check_length(turns[-1].question, len(ids), earlier_turns=len(turns) - 1)
        return TokenizedConversation(
            torch.tensor(ids, dtype=torch.long),
            torch.tensor(labels, dtype=torch.long),
            answer_start=spans[-1][0] if len(turns) > 1 else None,
            answer_spans=tuple(spans),
        )

    def training_example(
        self, question: str, explanation: str | None = None, present: bool = True
    ) -> TokenizedConversation:
        """Training path: the answer with every candidate token (or the rejection token when the target is
        not ``present``) and the explanation, if any."""
        return self.conversation(question, self.answer(explanation, present))

    def inference_example(self, question: str, history: Sequence[Turn] = ()) -> TokenizedConversation:
        """Teacher-forced inference path: the answer prefix alone, which holds the candidate tokens, after
        the earlier turns of a dialogue when ``history`` holds them."""
        return self.dialogue([*history, Turn(question, self.answer())], label_every_answer=False)

    def history_answer(self, found: bool) -> str:
        """An earlier turn's answer on one slice as the user saw it there: the target found (its candidates)
        or not (the rejection; a model without a rejection token answered with its candidates everywhere)."""
        return self.answer(present=found or self.rejection_token is None)


def pad_conversations(
    conversations: Sequence[TokenizedConversation], pad_token_id: int, padding_side: str = "right"
) -> dict[str, torch.Tensor]:
    """Pads conversations into ``input_ids``, ``attention_mask`` and ``labels`` (B, L) tensors, and
    ``answer_start`` (B,) when one of them holds several turns."""
    if padding_side not in ("right", "left"):
        raise ConfigError(f"padding_side must be 'right' or 'left', got {padding_side!r}")
    length = max(len(c.input_ids) for c in conversations)
    batch = len(conversations)
    ids = torch.full((batch, length), pad_token_id, dtype=torch.long)
    labels = torch.full((batch, length), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((batch, length), dtype=torch.long)
    starts = torch.zeros(batch, dtype=torch.long)
    for row, conv in enumerate(conversations):
        n = len(conv.input_ids)
        span = slice(length - n, length) if padding_side == "left" else slice(0, n)
        ids[row, span], labels[row, span], mask[row, span] = conv.input_ids, conv.labels, 1
        starts[row] = span.start + (conv.answer_start or 0)
    padded = {"input_ids": ids, "attention_mask": mask, "labels": labels}
    if any(conv.answer_start is not None for conv in conversations):
        padded["answer_start"] = starts
    return padded
