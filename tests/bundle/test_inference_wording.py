"""The answer a person reads holds no candidate or rejection token, and a label question's answer names the
structure; the model's own text stays available as ``answer_raw``."""

from __future__ import annotations

import pytest
import torch
from monai.data import MetaTensor

from bundle.inference import AnswerGenerator, SliceInferer
from bundle.inference import keys as K
from bundle.inference.answer import NOT_FOUND
from bundle.inference.structures import structure_named
from bundle.inference.wording import AnswerWording
from bundle.prompts import PromptBuilder, label_question

WORDING = AnswerWording(["[SEG]", "[BBOX]", "[REJ]"])


@pytest.mark.parametrize(
    ("generated", "expected"),
    [
        ("It is [SEG] and [BBOX]. The right kidney: it filters blood.", "The right kidney: it filters blood."),
        ("It is [REJ]. The heart is not visible in this image.", "The heart is not visible in this image."),
        ("The liver [SEG] lies here [BBOX].", "The liver lies here."),
        ("It is [SEG] and . The liver.", "The liver."),
    ],
)
def test_tokens_and_the_sentence_holding_them_are_removed(generated, expected):
    assert WORDING(generated, "Which organ filters blood?", found=True) == expected


def test_a_label_answer_names_the_structure_found_or_not_found():
    question = label_question("left kidney")
    assert WORDING("It is [SEG] and [BBOX].", question, found=True) == "Found the left kidney."
    assert WORDING("It is [SEG] and [BBOX].", question, found=False) == (
        "The left kidney was not found on any slice of this volume."
    )


def test_an_untrained_models_tokens_become_a_sentence():
    assert WORDING("[SEG] [SEG] [SEG] [BBOX]", "Where is the liver?", found=True) == "Found the liver."
    assert WORDING("[SEG] [SEG]", "What is this?", found=True) == "Found the target."
    assert WORDING("[SEG] [SEG]", "What is this?", found=False) == NOT_FOUND


def test_no_generation_stays_none():
    assert WORDING(None, "Where is the liver?", found=True) is None


def test_the_tokens_are_the_models_own():
    wording = AnswerWording(["<T1>", "<T2>", "<T3>"])
    assert wording("It is <T1> and <T2> and <T3>. The spleen.", "q", found=True) == "The spleen."
    assert "[SEG]" in wording("[SEG] here.", "q", found=True), "only the model's tokens are removed"


@pytest.mark.parametrize(
    ("question", "structure"),
    [
        ("Please segment and locate the inferior vena cava in this image.", "inferior vena cava"),
        ("Segment the Spleen and give its bounding box.", "spleen"),
        ("Is the right kidney larger than the liver?", "right kidney"),
        ("Which organ filters blood?", None),
    ],
)
def test_the_structure_comes_from_the_question(question, structure):
    assert structure_named(question) == structure


def test_the_inferer_words_the_answer_and_keeps_the_raw_text(tiny):
    model, tokenizer = tiny
    prompts = PromptBuilder.for_model(tokenizer, model)
    inferer = SliceInferer(prompts, batch_size=4, presence_threshold=0.0, progress=False,
                           answer_generator=AnswerGenerator(prompts, max_new_tokens=4))  # fmt: skip
    volume = MetaTensor(torch.rand((1, 24, 20, 3), generator=torch.Generator().manual_seed(0)))
    with torch.no_grad():
        out = inferer(volume, model, query="Where is the liver?")
    tokens = [*prompts.candidate_tokens, prompts.rejection_token]
    assert isinstance(out[K.ANSWER_RAW], str)
    assert out[K.ANSWER] and not any(token in out[K.ANSWER] for token in tokens)
    assert out[K.ANSWER] == inferer.wording(out[K.ANSWER_RAW], "Where is the liver?", found=bool(out[K.SLICES]))
