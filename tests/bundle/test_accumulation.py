"""Gradient accumulation: K micro-batches make one optimizer step, the same as one K-times-larger batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from bundle.data.batch import MediSeeBatch
from bundle.engines import MediSeeTrainer, MicroBatches, optimizer_steps
from bundle.losses import MediSeeLoss
from common.errors import ConfigError
from tests.helpers.configs import ROOT
from tests.helpers.training import (
    batch_with_targets,
    deterministic_tiny,
    equal_count_batch,
    micro_batches,
    scheduled_trainer,
    trainable_weights,
)

LR = 1e-3
CLIP = 0.5  # small enough to act on every step: clipping must see the summed gradient
SGD_LR = 0.1
WEIGHT_TOLERANCE = 1e-6
"""float64 model; the losses themselves run in float32 (they cast logits up from bf16), hence not 1e-12."""


def train(batches: list[MediSeeBatch], model, accumulation: int, optimizer: str = "adamw") -> MediSeeTrainer:
    """Runs :func:`scheduled_trainer` over ``batches``: AdamW with clipping, or SGD without (the gradient's scale)."""
    if optimizer == "adamw":
        trainer = scheduled_trainer(model, batches, accumulation, grad_clip=CLIP, lr=LR)
    else:
        trainer = scheduled_trainer(model, batches, accumulation, grad_clip=None, lr=SGD_LR, optimizer="sgd")
    trainer.run()
    return trainer


@pytest.mark.parametrize("optimizer", ["adamw", "sgd"])
@pytest.mark.parametrize("accumulation", [2, 4])
def test_k_micro_batches_train_to_the_weights_of_one_batch_k_times_larger(accumulation, optimizer):
    runs = {}
    for k in (1, accumulation):
        model, tokenizer = deterministic_tiny(seed=3, dtype=torch.float64)
        initial = trainable_weights(model)
        batches = [equal_count_batch(model, tokenizer, seed=s, dtype=torch.float64) for s in (1, 2)]
        loader = batches if k == 1 else [part for batch in batches for part in micro_batches(batch, k)]
        trainer = train(loader, model, k, optimizer)
        runs[k] = (trainer, trainable_weights(model))
    (whole, whole_weights), (parts, part_weights) = runs[1], runs[accumulation]
    assert whole.state.iteration == parts.state.iteration == 2  # iterations are optimizer steps
    assert parts.state.epoch_length == 2 and len(parts.data_loader) == 2
    assert parts.optimizer.param_groups[0]["lr"] == whole.optimizer.param_groups[0]["lr"] > 0
    if optimizer == "adamw":
        assert {s["step"].item() for s in parts.optimizer.state.values()} == {2.0}
    assert parts.state.output["loss"] == pytest.approx(whole.state.output["loss"], rel=1e-6)
    moved = max((whole_weights[n] - initial[n]).abs().max().item() for n in initial)
    assert moved > 100 * WEIGHT_TOLERANCE, "training changed the weights well beyond the tolerance"
    for name, weight in part_weights.items():
        assert torch.allclose(weight, whole_weights[name], rtol=0, atol=WEIGHT_TOLERANCE), name


def test_an_epoch_ends_with_one_step_over_the_micro_batches_left():
    model, tokenizer = deterministic_tiny(seed=4)
    batch = batch_with_targets(model, tokenizer)
    grouped = MicroBatches([batch] * 5, 2)
    assert [len(group) for group in grouped] == [2, 2, 1] and len(grouped) == 3 == optimizer_steps(5, 2)
    trainer = train([batch] * 5, model, accumulation=2)
    assert trainer.state.iteration == trainer.state.epoch_length == 3
    assert {s["step"].item() for s in trainer.optimizer.state.values()} == {3.0}


def test_one_step_per_batch_is_unchanged_without_accumulation():
    model, tokenizer = deterministic_tiny(seed=4)
    batch = batch_with_targets(model, tokenizer)
    trainer = train([batch] * 3, model, accumulation=1)
    assert trainer.data_loader == [batch] * 3 and trainer.state.iteration == 3
    assert {s["step"].item() for s in trainer.optimizer.state.values()} == {3.0}


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "2"])
def test_a_bad_accumulation_count_is_refused_naming_the_key(bad):
    with pytest.raises(ConfigError, match="gradient_accumulation_steps"):
        MicroBatches([], bad)


def test_monais_own_accumulation_argument_is_refused_rather_than_ignored():
    model, tokenizer = deterministic_tiny(seed=4)
    with pytest.raises(ConfigError, match="gradient_accumulation_steps"):
        MediSeeTrainer(
            device=torch.device("cpu"),
            max_epochs=1,
            train_data_loader=[batch_with_targets(model, tokenizer)],
            network=model,
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
            loss_function=MediSeeLoss(),
            accumulation_steps=2,
        )


@pytest.mark.slow
def test_two_ranks_accumulating_under_ddp_reach_the_weights_of_one_process_and_sync_once_per_step(tmp_path):
    result_file = tmp_path / "ddp.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29547",
         "-m", "tests.helpers.ddp_accumulation", str(result_file)],
        cwd=ROOT, capture_output=True, encoding="utf-8", errors="replace", timeout=600, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result_file.read_text())
    assert report["iterations"] == 2 and report["micro_steps"] == 4
    # the all-reduce hook ran in the last micro-step of each optimizer step only (no_sync before it)
    calls = report["allreduce_calls_after_each_backward"]
    assert calls[0] == 0 and calls[1] > 0 and calls[2] == calls[1] and calls[3] == 2 * calls[1]
    assert report["max_weight_difference_to_one_process"] <= WEIGHT_TOLERANCE
    assert report["max_weight_change"] > 100 * WEIGHT_TOLERANCE
