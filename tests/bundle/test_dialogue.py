"""Dialogues about one volume: ``--dialogue`` in the inference workflow, the session API, follow-ups that see the
earlier turns, and the slice encodings computed once.

The tiny model has random weights (seeded by the workflow), so masks are arbitrary but reproducible;
``presence_threshold`` 0 keeps every slice's mask, so the earlier turns' answers hold candidates.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from bundle.inference import SliceInferer, read_dialogue
from bundle.inference.encodings import SliceEncodings
from bundle.inference.inferer import PastTurn, slice_batch
from bundle.prompts import PromptBuilder
from bundle.session import Session
from common.errors import ConfigError, DataError, root_cause
from tests.helpers.inference import QUERY, mask_array, run_bundle, save_phantom
from tests.helpers.tiny import TINY

pytestmark = pytest.mark.filterwarnings("ignore:builtin type:DeprecationWarning")

QUESTIONS = [QUERY, "And the one on the other side?", "Which of the two is larger?"]
KEEP_EVERY_SLICE = {"presence_threshold": 0.0}


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    return save_phantom(tmp_path_factory.mktemp("dialogue") / "ph0.nii.gz", 0)


@pytest.fixture(scope="module")
def dialogue_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("dialogue") / "turns.json"
    path.write_text(json.dumps([QUESTIONS[0], {"question": QUESTIONS[1]}, QUESTIONS[2]]))
    return path


@pytest.fixture(scope="module")
def workflow_outputs(image, dialogue_file, tmp_path_factory):
    """The inference workflow's outputs for the dialogue and for its first question alone."""
    dialogue, single = tmp_path_factory.mktemp("turns"), tmp_path_factory.mktemp("single")
    run_bundle(image=str(image), dialogue=str(dialogue_file), output_dir=str(dialogue), **KEEP_EVERY_SLICE)
    run_bundle(image=str(image), query=QUERY, output_dir=str(single), **KEEP_EVERY_SLICE)
    return dialogue, single


def test_the_workflow_writes_every_turns_outputs_and_one_summary(workflow_outputs, image):
    out, _ = workflow_outputs
    names = {f"ph0_turn{k}{suffix}" for k in (1, 2, 3) for suffix in ("_mask.nii.gz", "_result.json", "_overlay.png")}
    assert {p.name for p in out.iterdir()} == names | {"ph0_dialogue.json"}
    summary = json.loads((out / "ph0_dialogue.json").read_text())
    assert summary["image"] == str(image)
    assert [t["turn"] for t in summary["turns"]] == [1, 2, 3]
    assert [t["question"] for t in summary["turns"]] == QUESTIONS
    for turn in summary["turns"]:
        result = json.loads((out / f"ph0_turn{turn['turn']}_result.json").read_text())
        assert result["query"] == turn["question"] and result["volume_ml"] == turn["volume_ml"]
        assert turn["files"]["mask"] == str(out / f"ph0_turn{turn['turn']}_mask.nii.gz")


def test_the_first_turn_is_the_single_question_bit_for_bit(workflow_outputs):
    out, single = workflow_outputs
    assert np.array_equal(mask_array(out, "ph0_turn1"), mask_array(single, "ph0"))
    assert json.loads((out / "ph0_turn1_result.json").read_text()) == json.loads(
        (single / "ph0_result.json").read_text()
    )


def test_a_follow_up_sees_the_earlier_turns(workflow_outputs, image, tmp_path):
    # the same question asked as turn 2 of a dialogue and alone: the context changes the model's input
    out, _ = workflow_outputs
    run_bundle(image=str(image), query=QUESTIONS[1], output_dir=str(tmp_path), **KEEP_EVERY_SLICE)
    alone = json.loads((tmp_path / "ph0_result.json").read_text())["presence"]
    followed = json.loads((out / "ph0_turn2_result.json").read_text())["presence"]
    assert [s["score"] for s in alone] != [s["score"] for s in followed]


def test_each_slice_holds_the_earlier_turns_as_answered_there(tiny):
    model, tokenizer = tiny
    prompts = PromptBuilder.for_model(tokenizer, model)
    inferer = SliceInferer(prompts, progress=False)
    history = [PastTurn(QUESTIONS[0], frozenset({3}))]
    found, missed = (tokenizer.decode(c.input_ids) for c in inferer.slice_conversations(QUESTIONS[1], history, [3, 4]))
    assert "It is [SEG] and [BBOX].</s>[INST] And the one" in found.replace(" </s>", "</s>")
    assert "It is [REJ].</s>[INST] And the one" in missed.replace(" </s>", "</s>")


@pytest.fixture(scope="module")
def session(tmp_path_factory, image):
    session = Session.from_configs(TINY, {"output_dir": str(tmp_path_factory.mktemp("session")), **KEEP_EVERY_SLICE})
    session.open(image)
    return session


def test_a_session_gives_the_workflows_masks_from_encodings_computed_once(session, workflow_outputs, monkeypatch):
    out, _ = workflow_outputs
    slices = session.volume.shape[-1]
    calls = []
    encode = session.network.medsam.encode_images
    monkeypatch.setattr(session.network.medsam, "encode_images", lambda x: calls.append(len(x)) or encode(x))
    for k, question in enumerate(QUESTIONS, 1):
        turn = session.ask(question)
        assert turn["name"] == f"ph0_turn{k}"
        assert np.array_equal(mask_array(session.layout.output_dir, f"ph0_turn{k}"), mask_array(out, f"ph0_turn{k}"))
    assert sum(calls) == slices and len(session.dialogue.encodings) == slices  # SAM ran on the first turn only
    summary = json.loads(session.save().read_text())
    assert [t["question"] for t in summary["turns"]] == QUESTIONS


def test_a_new_dialogue_forgets_the_turns_but_not_the_volume(session, workflow_outputs):
    out, _ = workflow_outputs
    session.new()
    turn = session.ask(QUERY)
    assert turn["name"].startswith("ph0_turn") and turn["name"] != "ph0_turn1"  # earlier files are kept
    assert np.array_equal(mask_array(session.layout.output_dir, turn["name"]), mask_array(out, "ph0_turn1"))


def test_a_session_refuses_empty_questions_and_existing_outputs(session, image, tmp_path):
    with pytest.raises(ConfigError, match="empty"):
        session.ask("  ")
    (tmp_path / "ph0_turn1_result.json").write_text("{}")
    other = Session.from_configs(TINY, {"output_dir": str(tmp_path)})
    other.open(image)
    with pytest.raises(DataError, match="output exists"):
        other.ask(QUERY)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ph0_turn1_result.json"]
    assert other.dialogue.turns == []


@pytest.mark.parametrize(
    ("content", "message"),
    [("{}", "non-empty JSON list"), ("[]", "non-empty JSON list"), ('["ok", 3]', "turn 2"), ("not json", "not a JSON")],
)
def test_bad_dialogue_files_are_refused_with_their_name(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(DataError, match=message) as caught:
        read_dialogue(path)
    assert str(path) in str(caught.value)


def test_a_dialogue_with_a_query_file_is_refused_before_anything_runs(image, dialogue_file, tmp_path):
    question = tmp_path / "q.txt"
    question.write_text(QUERY)
    out = tmp_path / "out"
    with pytest.raises(Exception) as caught:
        run_bundle(image=str(image), dialogue=str(dialogue_file), query_file=str(question), output_dir=str(out))
    assert isinstance(root_cause(caught.value), ConfigError) and "not both" in str(root_cause(caught.value))
    assert not out.exists()


def test_existing_turn_outputs_stop_the_workflow_before_any_model_work(image, dialogue_file, tmp_path):
    (tmp_path / "ph0_turn3_mask.nii.gz").write_bytes(b"")
    with pytest.raises(Exception) as caught:
        run_bundle(image=str(image), dialogue=str(dialogue_file), output_dir=str(tmp_path))
    assert "ph0_turn3_mask.nii.gz" in str(root_cause(caught.value))
    assert [p.name for p in tmp_path.iterdir()] == ["ph0_turn3_mask.nii.gz"]


def test_slice_encodings_equal_the_models_own(tiny):
    model, tokenizer = tiny
    prompts = PromptBuilder.for_model(tokenizer, model)
    images = [torch.rand(1, 24, 20, generator=torch.Generator().manual_seed(i)) for i in range(3)]
    batch = slice_batch(model, images, prompts.inference_example(QUERY), tokenizer.pad_token_id)
    encodings = SliceEncodings()
    with torch.no_grad():
        fresh = model(**batch.model_inputs(targets=False))
        first = encodings.encode(model, [0, 1, 2], batch)
        no_pixels = slice_batch(model, images, prompts.inference_example(QUERY), tokenizer.pad_token_id, pixels=False)
        again = encodings.encode(model, [0, 1, 2], no_pixels)
        cached = model(**no_pixels.model_inputs(again[1], targets=False, clip_image_features=again[0]))
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert all(torch.equal(a, b) for a, b in zip(fresh.mask_logits, cached.mask_logits))
    assert encodings.bytes > 0
