"""A workflow run is quiet by default: library notices that tell the user nothing are dropped, in one place
(:mod:`bundle.quiet`), and come back with ``--debug true``; under ``torchrun`` only rank 0 prints."""

from __future__ import annotations

import logging

import pytest

from bundle.quiet import WorkflowNoise, process_rank, quiet_workflow


def record(name: str, message: str, level: int = logging.INFO) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, None, None)


RESUMING = "Engine run resuming from iteration 0, epoch 0 until 1 epochs"
TERMINATING = "Current run is terminating due to exception: applying transform <bundle.inference.inputs.LoadInputd>"


@pytest.mark.parametrize("engine", ["VolumeEvaluator", "VolumeQuestionEvaluator", "MediSeeEvaluator"])
def test_a_one_pass_engine_prints_no_epoch_lines(engine):
    noise = WorkflowNoise(training=False)
    assert not noise.filter(record(f"ignite.engine.engine.{engine}", RESUMING))
    assert not noise.filter(record(f"ignite.engine.engine.{engine}", "Key metric: dice best value: 0.0 at epoch: 1"))


def test_training_keeps_its_epoch_lines_and_its_validation_lines():
    noise = WorkflowNoise(training=True)
    assert noise.filter(record("ignite.engine.engine.MediSeeTrainer", "Epoch[1] Complete. Time taken: 00:00:03"))
    assert noise.filter(record("ignite.engine.engine.MediSeeEvaluator", "Epoch[1] Complete. Time taken: 00:00:01"))
    assert not noise.filter(record("ignite.engine.engine.VolumeEvaluator", RESUMING))


@pytest.mark.parametrize("training", [False, True])
def test_engine_error_lines_restating_the_exception_go_other_errors_stay(training):
    noise = WorkflowNoise(training)
    assert not noise.filter(record("ignite.engine.engine.MediSeeTrainer", TERMINATING, logging.ERROR))
    assert noise.filter(record("ignite.engine.engine.MediSeeTrainer", "handler failed", logging.ERROR))


def test_vocabulary_growth_is_silent_unless_the_run_trains():
    grow = record("networks.llava", "growing the vocabulary from 320 to 1027 tokens")
    normal = record("transformers.modeling_utils", "The new embeddings will be initialized from a multivariate normal")
    assert not WorkflowNoise(training=False).filter(grow) and WorkflowNoise(training=True).filter(grow)
    assert not WorkflowNoise(training=False).filter(normal) and not WorkflowNoise(training=True).filter(normal)
    assert WorkflowNoise(training=False).filter(record("networks.build", "no 'checkpoint' configured", logging.WARNING))


@pytest.fixture
def logging_state():
    """Restores the root logger's level and handler filters after a test."""
    root, summary = logging.getLogger(), logging.getLogger("monai.bundle.scripts")
    handler = logging.StreamHandler()
    root.addHandler(handler)
    levels = (root.level, summary.level)
    yield handler
    root.removeHandler(handler)
    root.setLevel(levels[0])
    summary.setLevel(levels[1])


def test_the_filter_sits_on_the_console_handlers_once_and_debug_leaves_them(logging_state, monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    quiet_workflow(debug="false", training=False)
    quiet_workflow(debug=False, training=True)
    noises = [f for f in logging_state.filters if isinstance(f, WorkflowNoise)]
    assert len(noises) == 1 and noises[0].training, "a second run replaces the first one's filter"
    assert logging.getLogger("monai.bundle.scripts").level == logging.WARNING, "MONAI's input summary goes"
    logging_state.filters.clear()
    quiet_workflow(debug="true", training=False)
    assert not logging_state.filters and logging.getLogger("monai.bundle.scripts").level == logging.INFO


def test_other_ranks_print_errors_only(logging_state, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    assert process_rank() == 1
    quiet_workflow(debug=True, training=True)
    assert logging.getLogger().level == logging.ERROR
    monkeypatch.setenv("RANK", "0")
    logging.getLogger().setLevel(logging.INFO)
    quiet_workflow(debug=False, training=True)
    assert logging.getLogger().level == logging.INFO
