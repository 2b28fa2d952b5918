"""The training and evaluation workflows on dialogues (tiny config, phantom data): follow-ups measured per turn."""

from __future__ import annotations

import json

import pytest
from ignite.engine import Events
from monai.bundle import ConfigWorkflow

from bundle.engines.checkpoints import checkpoints_in
from tests.helpers.configs import ROOT, config_files

SMALL = {"validate#dataset#kinds": ["label"], "validate#dataset#min_target_pixels": 20, "val_batch_size": 8}


@pytest.fixture(autouse=True)
def _elsewhere(tmp_path_factory, monkeypatch):
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


def _workflow(files, **overrides) -> ConfigWorkflow:
    flow = ConfigWorkflow(config_file=config_files(*files), workflow_type="train", bundle_root=str(ROOT), **overrides)
    flow.initialize()
    return flow


@pytest.fixture(scope="module")
def dialogue_checkpoint(split_dataset, tmp_path_factory):
    """Two training iterations on rows that are all dialogues (when their class has follow-ups)."""
    out = tmp_path_factory.mktemp("dialogue_training")
    flow = _workflow(
        ["train.json"], dataset_dir=str(split_dataset), output_dir=str(out), epochs=1, batch_size=4,
        dialogue_fraction=1.0, max_turns=4, save_interval=2, **SMALL,
    )  # fmt: skip
    trainer = flow.parser.get_parsed_content("train#trainer")
    turns = []
    trainer.add_event_handler(
        Events.ITERATION_COMPLETED, lambda engine: turns.extend(engine.state.batch.turn_numbers())
    )
    trainer.add_event_handler(Events.ITERATION_COMPLETED(once=2), lambda engine: engine.terminate())
    flow.run()
    assert max(turns) >= 2, "the batches held follow-up turns"
    assert all(value == value for value in trainer.state.output["losses"].values()), "finite losses"
    flow.finalize()
    return out


def test_slice_evaluation_reports_follow_ups_per_turn(split_dataset, dialogue_checkpoint, tmp_path):
    evaluation = _workflow(
        ["train.json", "evaluate.json"], dataset_dir=str(split_dataset), output_dir=str(tmp_path),
        checkpoint=str(checkpoints_in(dialogue_checkpoint / "checkpoints")[-1]), eval_follow_ups=True, **SMALL,
    )  # fmt: skip
    evaluation.run()
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert {"turn1", "turn2", "follow_up"} <= set(metrics)
    assert 0.0 <= metrics["turn2"]["dice"] <= 1.0 and "presence_f1" in metrics["turn2"]


def test_volume_evaluation_asks_dialogues_turn_by_turn_and_reports_each_turn(
    split_dataset, dialogue_checkpoint, tmp_path
):
    evaluation = _workflow(
        ["train.json", "evaluate_volumes.json"], dataset_dir=str(split_dataset), output_dir=str(tmp_path),
        checkpoint=str(checkpoints_in(dialogue_checkpoint / "checkpoints")[-1]), eval_follow_ups=True,
        val_batch_size=16, outside_structures=[],
    )  # fmt: skip
    evaluation.run()
    summary = json.loads((tmp_path / "volume_metrics.json").read_text())
    assert set(summary["turns"]) >= {"1", "2"}
    assert summary["kinds"]["follow_up"]["questions"] == sum(
        group["questions"] for turn, group in summary["turns"].items() if turn != "1"
    )
    assert "nothing" in summary["labels"], "follow-ups answered 'nothing' are measured too"
