"""MedSeg-QA-style conversation json: read as dialogue rows with a target per segmenting turn."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from bundle.data import MediSeeCollate, TargetDialogue
from bundle.data.conversations import ConversationDataset
from bundle.prompts import IGNORE_INDEX, PromptBuilder
from common.errors import DataError


def _png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array.astype(np.uint8)).save(path)


@pytest.fixture
def conversation_file(tmp_path):
    image = np.random.default_rng(0).integers(0, 255, (32, 40))
    mask = np.zeros((32, 40))
    mask[4:12, 6:20] = 255
    _png(tmp_path / "images" / "a.png", image)
    _png(tmp_path / "masks" / "a_liver.png", mask)
    entries = [{
        "image": "images/a.png",
        "conversations": [
            {"from": "human", "value": "<image>\nWhich organ here makes bile?"},
            {"from": "gpt", "value": "It is [SEG]. The liver makes bile."},
            {"from": "human", "value": "Is it enlarged?"},
            {"from": "gpt", "value": "No, its size is normal."},
            {"from": "human", "value": "Is there a cyst inside it?"},
            {"from": "gpt", "value": "[SEG] No cyst is visible in it."},
        ],
        "masks": ["masks/a_liver.png", None, None],
        "classes": ["liver", None, "liver cyst"],
    }]  # fmt: skip
    path = tmp_path / "conversations.json"
    path.write_text(json.dumps(entries))
    return path


def test_segmenting_turns_become_targets_and_text_turns_stay_as_context(conversation_file, tiny):
    dataset = ConversationDataset(conversation_file)
    assert len(dataset) == 1
    row = dataset[0]["targets"][0]
    assert isinstance(row, TargetDialogue) and len(row.turns) == 3
    first, text, cyst = row.turns
    assert first.query.question == "Which organ here makes bile?" and first.present and first.mask.sum() == 8 * 14
    assert first.query.explanation == "The liver makes bile." and cyst.query.explanation == "No cyst is visible in it."
    assert not text.read and text.query.answer == "No, its size is normal."
    assert cyst.read and not cyst.present and cyst.query.kind == "follow_up" and cyst.class_name == "liver cyst"

    model, tokenizer = tiny
    prompts = PromptBuilder.for_model(tokenizer, model)
    batch = MediSeeCollate(prompts, *model.input_sizes)([dataset[0]])
    assert len(batch) == 1 and batch.num_readings == 2 and batch.turns == [1, 3]
    assert batch.present.tolist() == [True, False]
    text_ids = tokenizer(" No, its size is normal.", add_special_tokens=False).input_ids
    labelled = batch.labels[0][batch.labels[0] != IGNORE_INDEX].tolist()
    assert all(token in labelled for token in text_ids), "the text-only answer is trained on"


def test_bad_conversations_are_refused_naming_the_entry(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps([{"image": "x.png", "conversations": [{"from": "human", "value": "Hi"}]}]))
    with pytest.raises(DataError, match=r"c.json \[0\]: 'conversations' must hold human/gpt pairs"):
        ConversationDataset(path)
    path.write_text(json.dumps([{"image": "x.png", "conversations": [
        {"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello."}]}]))  # fmt: skip
    with pytest.raises(DataError, match="no gpt turn segments anything"):
        ConversationDataset(path)
    path.write_text(json.dumps([{"image": "x.png", "mask": "m.png", "conversations": [
        {"from": "human", "value": "Where?"}, {"from": "gpt", "value": "[SEG]"}]}]))  # fmt: skip
    with pytest.raises(DataError, match="missing"):
        ConversationDataset(path)
