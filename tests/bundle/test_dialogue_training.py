"""Training on dialogues: one conversation row per dialogue, read once per turn, each turn with its target."""

from __future__ import annotations

import json

import pytest
import torch

from bundle.data import DialogueSampler, FollowUp, NiftiSliceDataset, TargetDialogue, parse_dialogue_pools
from bundle.data.base import Target, turns_of
from bundle.data.collate import MediSeeCollate
from bundle.data.queries import Query
from bundle.losses import MediSeeLoss
from bundle.prompts import IGNORE_INDEX, PromptBuilder
from common.errors import ConfigError, DataError


def _target(name: str, rows: slice | None, question: str, kind: str = "label", present: bool = True) -> Target:
    mask = torch.zeros(24, 24, dtype=torch.bool)
    if rows is not None:
        mask[rows, 4:12] = True
    explanation = None if present else f"That describes the {name}, which is not visible in this image."
    return Target(mask, name, Query(kind, question, explanation, present))


def _dialogue_sample() -> dict:
    turns = [
        _target("right kidney", slice(2, 8), "Please segment and locate the right kidney in this image."),
        _target("left kidney", slice(10, 20), "And the one on the other side?", "follow_up"),
        _target("renal cyst", None, "Is there a cyst inside it?", "follow_up", present=False),
    ]
    single = _target("liver", slice(0, 4), "Please segment and locate the liver in this image.")
    return {"image": torch.rand(1, 24, 24), "targets": [TargetDialogue(turns), single], "source": "slice 3"}


def _collate(model, tokenizer, **kwargs) -> MediSeeCollate:
    sizes = model.input_sizes
    return MediSeeCollate(PromptBuilder.for_model(tokenizer, model), *sizes, **kwargs)


def test_a_dialogue_is_one_row_read_once_per_turn_with_every_answer_labelled(tiny):
    model, tokenizer = tiny
    batch = _collate(model, tokenizer)([_dialogue_sample()])
    assert len(batch) == 2 and batch.num_readings == 4
    assert batch.turn_row.tolist() == [0, 0, 0, 1]
    assert batch.turns == [1, 2, 3, 1]
    assert batch.present.tolist() == [True, True, False, True]
    assert [m.sum().item() for m in batch.masks] == [48, 80, 0, 32]
    # each reading's span holds exactly its own answer's candidate or rejection tokens, and is labelled
    vocab = tokenizer.get_vocab()
    for reading, (row, start, end) in enumerate(zip(batch.turn_row, batch.answer_start, batch.answer_end)):
        ids = batch.input_ids[row, start:end].tolist()
        rejected = not batch.present[reading]
        assert (vocab["[REJ]"] in ids) == rejected and (vocab["[SEG]"] in ids) == (not rejected)
        assert (batch.labels[row, start:end] != IGNORE_INDEX).all()
    labelled = (batch.labels[0] != IGNORE_INDEX).sum().item()
    assert labelled == sum(
        int(e - s) for r, s, e in zip(batch.turn_row, batch.answer_start, batch.answer_end) if r == 0
    )


def test_each_turn_reading_equals_that_turn_asked_alone_after_the_same_history(tiny):
    model, tokenizer = tiny
    sample = _dialogue_sample()
    collate = _collate(model, tokenizer)
    model.eval()
    with torch.no_grad():
        together = model(**collate([sample]).model_inputs(targets=False))
        turns = turns_of(sample["targets"][0])
        for k in range(len(turns)):
            alone = {**sample, "targets": [TargetDialogue(turns[: k + 1])] if k else [turns[0]]}
            batch = collate([alone])
            out = model(**batch.model_inputs(targets=False))
            last = batch.num_readings - 1
            torch.testing.assert_close(together.boxes_xyxy[k], out.boxes_xyxy[last], atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(together.mask_logits[k], out.mask_logits[last], atol=1e-4, rtol=1e-4)
            torch.testing.assert_close(together.presence_logits[k], out.presence_logits[last], atol=1e-5, rtol=1e-4)


def test_the_loss_of_a_dialogue_batch_reaches_every_turn(tiny):
    model, tokenizer = tiny
    batch = _collate(model, tokenizer)([_dialogue_sample()])
    model.train()
    model.zero_grad()
    output = model(**batch.model_inputs())
    terms = MediSeeLoss()(output, batch)
    assert output.presence_logits.shape == (4,) and len(output.mask_logits) == 4
    assert all(torch.isfinite(v) for v in terms.values())
    terms["loss"].backward()
    assert model.box_head.mlp[-1].weight.grad.abs().sum() > 0
    model.zero_grad()
    model.eval()


def test_teacher_forced_turns_are_rows_after_the_true_earlier_answers(tiny):
    model, tokenizer = tiny
    sample = _dialogue_sample()
    sample["targets"][0].turns[0].read = False  # as eval mode marks a dialogue's first turn
    batch = _collate(model, tokenizer, teacher_forced=True)([sample])
    assert batch.turn_row is None and len(batch) == 3
    assert batch.turns == [2, 3, 1] and batch.kinds == ["follow_up", "follow_up", "label"]
    rej = tokenizer.get_vocab()["[REJ]"]
    # the third turn's row holds the second answer as found ([SEG]) and its own teacher-forced candidates
    assert (batch.input_ids[1] == rej).sum() == 0
    assert batch.answer_start is not None


def test_dialogue_pools_are_read_with_errors_that_name_the_file():
    pools = parse_dialogue_pools(
        {"Right Kidney": [{"question": "And the other one?", "target": "Left Kidney"}]}, "data/dataset.json"
    )
    assert pools == {"right kidney": [FollowUp("And the other one?", "left kidney")]}
    with pytest.raises(DataError, match=r"data/dataset.json: dialogues \[liver\]\[0\] needs a non-empty 'question'"):
        parse_dialogue_pools({"liver": [{"target": "liver lesion"}]}, "data/dataset.json")
    with pytest.raises(DataError, match="without a target needs the 'explanation'"):
        parse_dialogue_pools({"liver": [{"question": "Anything inside?", "target": None}]}, "data/dataset.json")
    with pytest.raises(ConfigError, match="'max_turns' must be from 2"):
        DialogueSampler(pools, 0.5, max_turns=1)


def test_training_rows_become_dialogues_whose_follow_ups_are_this_slices_labels(phantom_dataset):
    dataset = NiftiSliceDataset(phantom_dataset, seed=1, dialogue_fraction=1.0, max_turns=4, negative_fraction=0.25)
    dialogues = 0
    for index in range(0, len(dataset), 7):
        sample = dataset[index]
        for row in sample["targets"]:
            turns = turns_of(row)
            assert 1 <= len(turns) <= 4
            for turn in turns[1:]:
                dialogues += 1
                assert turn.query.kind == "follow_up"
                assert turn.present == bool(turn.mask.any())
    assert dialogues > 0


def test_eval_follow_ups_are_asked_after_their_label_question_and_only_they_are_read(phantom_dataset):
    plain = NiftiSliceDataset(phantom_dataset, mode="eval", seed=1, negative_fraction=0.25)
    asked = NiftiSliceDataset(phantom_dataset, mode="eval", seed=1, negative_fraction=0.25, follow_ups=True)
    assert asked.counts()["dialogues"] > 0
    assert len(asked) == len(plain) + asked.counts()["dialogues"]
    rows = [row for i in range(len(asked)) for row in asked[i]["targets"] if isinstance(row, TargetDialogue)]
    assert rows and all(not row.turns[0].read and all(t.read for t in row.turns[1:]) for row in rows)
    assert {len(row.turns) for row in rows} <= {2, 3}


def test_dialogue_options_without_pools_are_refused(tmp_path, phantom_dataset):
    description = json.loads((phantom_dataset / "dataset.json").read_text())
    description.pop("dialogues")
    for entry in description["training"] + description["validation"] + description["test"]:
        entry.pop("dialogues", None)
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("imagesTr", "labelsTr"):
        (copy / name).symlink_to(phantom_dataset / name)
    (copy / "dataset.json").write_text(json.dumps(description))
    with pytest.raises(ConfigError, match="'dialogue_fraction' asks for dialogues but .* has no 'dialogues'"):
        NiftiSliceDataset(copy, dialogue_fraction=0.5)
