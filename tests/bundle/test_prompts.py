"""Prompts: CE only on the answer, candidate and image tokens where expected, both tokenizer kinds."""

from __future__ import annotations

import random

import pytest
import torch

from bundle.prompts import (
    IGNORE_INDEX,
    LABEL_QUESTIONS,
    PromptBuilder,
    Turn,
    label_question,
    pad_conversations,
    reasoning_question,
)
from networks import ConfigError, build_tokenizer
from networks.candidates import candidate_state_positions
from tests.helpers.checkpoints import write_sentencepiece_tokenizer

NUM_IMAGE_TOKENS = 9


@pytest.fixture(scope="module", params=["byte-level", "sentencepiece"])
def builder(request, tmp_path_factory):
    if request.param == "byte-level":
        tokenizer = build_tokenizer()
    else:
        tokenizer = build_tokenizer(llava_path=write_sentencepiece_tokenizer(tmp_path_factory.mktemp("tok")))
    return PromptBuilder(tokenizer, NUM_IMAGE_TOKENS)


def test_labels_cover_exactly_the_answer_and_eos(builder):
    conv = builder.training_example("Where is the liver?", "It sits under the right ribs.")
    labelled = (conv.labels != IGNORE_INDEX).nonzero().flatten()
    start = int(labelled[0])
    assert labelled.tolist() == list(range(start, len(conv.input_ids)))
    assert torch.equal(conv.labels[start:], conv.input_ids[start:])
    assert int(conv.input_ids[-1]) == builder.tokenizer.eos_token_id
    answer = builder.tokenizer.decode(conv.input_ids[start:-1]).strip()
    assert answer == "It is [SEG] and [BBOX]. It sits under the right ribs."
    assert "[/INST]" in builder.tokenizer.decode(conv.input_ids[:start])


def test_image_tokens_and_candidate_tokens_are_placed(builder):
    conv = builder.training_example("Where is the liver?")
    ids = conv.input_ids
    image = ids == builder.image_token_id
    assert int(image.sum()) == NUM_IMAGE_TOKENS
    first = int(image.nonzero()[0])
    assert bool(image[first : first + NUM_IMAGE_TOKENS].all())  # one contiguous run
    assert int(ids[0]) == builder.tokenizer.bos_token_id
    seg, box = (builder.tokenizer.convert_tokens_to_ids(t) for t in ("[SEG]", "[BBOX]"))
    positions = candidate_state_positions(ids[None], [seg, box])[0]
    labelled_from = int((conv.labels != IGNORE_INDEX).nonzero()[0])
    assert labelled_from <= int(positions[0]) < int(positions[1])  # states are read inside the answer


def test_inference_path_uses_the_training_answer_prefix(builder):
    trained = builder.training_example("Which organ filters blood?", "The kidneys filter blood.")
    forced = builder.inference_example("Which organ filters blood?")
    box = builder.tokenizer.convert_tokens_to_ids("[BBOX]")
    cut = int((forced.input_ids == box).nonzero()[0]) + 1
    assert torch.equal(forced.input_ids[:cut], trained.input_ids[:cut])


def test_candidate_tokens_follow_the_configured_list(tmp_path):
    tokenizer = build_tokenizer({"candidate_tokens": ["[SEG]", "[BBOX]", "[CAND3]"]})
    builder = PromptBuilder(tokenizer, 4, ["[SEG]", "[BBOX]", "[CAND3]"])
    assert builder.answer() == "It is [SEG] and [BBOX] and [CAND3]."
    with pytest.raises(ConfigError, match=r"\[CAND3\]"):
        PromptBuilder(build_tokenizer(), 4, ["[SEG]", "[CAND3]"])


def test_empty_question_is_rejected(builder):
    with pytest.raises(ConfigError, match="empty"):
        builder.prompt_ids("   ")


def test_question_templates():
    assert label_question("left kidney") == "Please segment and locate the left kidney in this image."
    rng = random.Random(0)
    assert {label_question("x", rng) for _ in range(50)} == {t.format(class_name="x") for t in LABEL_QUESTIONS}
    assert reasoning_question(" Which organ filters blood? ").endswith("and explain why.")


@pytest.mark.parametrize("side", ["right", "left"])
def test_padding_keeps_each_conversation_and_masks_the_rest(builder, side):
    convs = [builder.training_example("Short?"), builder.training_example("A much longer question about the spleen?")]
    batch = pad_conversations(convs, builder.tokenizer.pad_token_id, side)
    for row, conv in enumerate(convs):
        keep = batch["attention_mask"][row].bool()
        assert torch.equal(batch["input_ids"][row][keep], conv.input_ids)
        assert torch.equal(batch["labels"][row][keep], conv.labels)
        assert bool((batch["labels"][row][~keep] == IGNORE_INDEX).all())
    assert bool(batch["attention_mask"][0, -1] == (side == "left"))


def test_a_tokenized_conversation_runs_through_the_model(tiny):
    model, tokenizer = tiny
    builder = PromptBuilder.for_model(tokenizer, model)
    convs = [builder.training_example(q) for q in ("Where is the liver?", "Which organ filters blood and makes urine?")]
    batch = pad_conversations(convs, tokenizer.pad_token_id)
    size = model.llava.config.vision_config.image_size
    with torch.no_grad():
        out = model(
            **batch,
            clip_pixel_values=torch.randn(2, 3, size, size),
            sam_pixel_values=torch.rand(2, 3, model.medsam.image_size, model.medsam.image_size),
        )
    assert torch.isfinite(out.lm_loss)


def test_a_one_turn_dialogue_is_the_single_question_bit_for_bit(builder):
    question = "Which organ filters blood?"
    one = builder.dialogue([Turn(question, builder.answer())], label_every_answer=False)
    single = builder.inference_example(question)
    assert torch.equal(one.input_ids, single.input_ids) and torch.equal(one.labels, single.labels)
    assert one.answer_start is None and single.answer_start is None
    assert torch.equal(builder.inference_example(question, ()).input_ids, single.input_ids)
    assert builder.prompt_ids(question, ()) == builder.prompt_ids(question)


THREE_TURNS = [
    Turn("Where is the left kidney?", "It is [SEG] and [BBOX]. It lies beside the spine."),
    Turn("And the one on the other side?", "It is [SEG] and [BBOX]."),
    Turn("Which of the two is larger?", "It is [SEG] and [BBOX]. The right one."),
]


@pytest.mark.parametrize("every", [True, False], ids=["every answer", "last answer"])
def test_a_three_turn_dialogue_labels_answers_only_and_reads_the_last_turns_candidates(builder, every):
    conv = builder.dialogue(THREE_TURNS, label_every_answer=every)
    ids, labels, tokenizer = conv.input_ids, conv.labels, builder.tokenizer
    assert int((ids == builder.image_token_id).sum()) == NUM_IMAGE_TOKENS  # the image comes once, in turn 1
    assert int((ids == tokenizer.bos_token_id).sum()) == 1 and int((ids == tokenizer.eos_token_id).sum()) == 3
    labelled = labels != IGNORE_INDEX
    assert torch.equal(labels[labelled], ids[labelled])
    # the labelled spans are the answers (each ending with its </s>); nothing of a question is labelled
    spans = tokenizer.decode(ids[labelled]).replace(tokenizer.eos_token, "|").split("|")[:-1]
    answers = [t.answer for t in (THREE_TURNS if every else THREE_TURNS[-1:])]
    assert [s.strip() for s in spans] == answers
    assert "[INST]" not in tokenizer.decode(ids[labelled]) and "Which" not in tokenizer.decode(ids[labelled])
    start = conv.answer_start
    assert tokenizer.decode(ids[start:]).replace(tokenizer.eos_token, "").strip() == THREE_TURNS[-1].answer
    seg, box = (tokenizer.convert_tokens_to_ids(t) for t in ("[SEG]", "[BBOX]"))
    positions = candidate_state_positions(ids[None], [seg, box], start=torch.tensor([start]))[0]
    assert start - 1 <= int(positions[0]) < int(positions[1])
    assert int((ids[start:] == seg).nonzero()[0]) + start - 1 == int(positions[0])


def test_padding_carries_each_rows_answer_start(builder):
    short = builder.inference_example("Where is the liver?")
    long = builder.inference_example("Which of the two is larger?", THREE_TURNS[:2])
    for side in ("right", "left"):
        padded = pad_conversations([short, long], builder.tokenizer.pad_token_id, side)
        pad = len(long.input_ids) - len(short.input_ids)
        assert padded["answer_start"].tolist() == [pad if side == "left" else 0, long.answer_start]
    assert "answer_start" not in pad_conversations([short], builder.tokenizer.pad_token_id)


def test_a_dialogue_too_long_for_the_model_says_so(builder):
    tight = PromptBuilder(
        builder.tokenizer, NUM_IMAGE_TOKENS, max_positions=len(builder.dialogue(THREE_TURNS[:2]).input_ids)
    )
    with pytest.raises(ConfigError, match="the dialogue is too long: with its 2 earlier turns"):
        tight.inference_example("Which of the two is larger?", THREE_TURNS[:2])
