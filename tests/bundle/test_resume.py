"""A resumed run is the same run: random states and the loader's position come back with the weights.

The end-to-end test kills a real training command with SIGKILL mid-epoch, resumes it, and compares
the final weights with those of the same command run without interruption (tiny model, CPU, one
thread per process).
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torch.utils.data import DataLoader, Dataset, RandomSampler

from bundle.data import LengthGroupedBatchSampler, ResumableDataLoader
from bundle.engines.checkpoints import STATE_FILE, checkpoints_in, random_states, set_random_states
from networks.checkpoint import WEIGHTS_NAME
from tests.helpers.configs import ROOT, config_files, config_list

ITEMS = 23
BATCH = 4
RUN = {"epochs": 2, "batch_size": 2, "save_interval": 3, "val_interval": 10}
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
"""The same thread count in every process: float sums then add up in the same order."""
POLL_SECONDS = 0.05
STARTUP_LIMIT_SECONDS = 600
"""Only a guard against a hung child: the test waits for a file, never for a duration."""


class Recorded(Dataset):
    """Items are their index; every item loaded is recorded."""

    def __init__(self, n: int = ITEMS) -> None:
        self.n, self.loaded = n, []

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> int:
        self.loaded.append(index)
        return index


def draws() -> tuple:
    return torch.rand(3).tolist(), random.random(), np.random.rand(3).tolist()


def test_random_states_come_back_exactly_through_a_weights_only_file(tmp_path):
    random.gauss(0, 1)  # a cached Gaussian is part of Python's state
    np.random.standard_normal()
    states = random_states()
    torch.save(states, tmp_path / "state.pt")
    expected = draws()
    set_random_states(torch.load(tmp_path / "state.pt", weights_only=True))
    assert draws() == expected


def test_without_a_fast_forward_the_loader_yields_torchs_batches():
    for shuffle in (False, True):
        torch.manual_seed(0)
        ours = [b.tolist() for b in ResumableDataLoader(Recorded(), batch_size=BATCH, shuffle=shuffle)]
        torch.manual_seed(0)
        theirs = [b.tolist() for b in DataLoader(Recorded(), batch_size=BATCH, shuffle=shuffle)]
        assert ours == theirs


@pytest.mark.parametrize("grouped", [False, True], ids=["shuffled", "length_grouped"])
def test_a_fast_forward_yields_the_rest_of_the_epoch_without_loading_the_skipped_batches(grouped):
    dataset = Recorded()

    def loader() -> ResumableDataLoader:
        if grouped:
            sampler = LengthGroupedBatchSampler(RandomSampler(dataset), lambda i: i % 5, BATCH, group_batches=2)
            return ResumableDataLoader(dataset, batch_sampler=sampler)
        return ResumableDataLoader(dataset, batch_size=BATCH, shuffle=True)

    torch.manual_seed(7)
    whole = [b.tolist() for b in loader()]
    torch.manual_seed(7)
    resumed = loader()
    restored = []
    resumed.batch_sampler.skip_next(2, then=lambda: restored.append(len(dataset.loaded)))
    dataset.loaded.clear()
    rest = [b.tolist() for b in resumed]
    assert rest == whole[2:] and restored == [0], "the state comes back before the first remaining batch is loaded"
    assert sorted(dataset.loaded) == sorted(i for b in whole[2:] for i in b)
    assert len(resumed) == len(whole) and [b.tolist() for b in resumed] != [], "the skip applies to one pass only"


def train_command(split_dataset, out, accumulation: int = 1) -> list[str]:
    run = {**RUN, "gradient_accumulation_steps": accumulation}
    options = [arg for key, value in run.items() for arg in (f"--{key}", str(value))]
    files = config_list(config_files("train.json"))
    return [sys.executable, "-m", "monai.bundle", "run", "--config_file", files,
            "--dataset_dir", str(split_dataset), "--output_dir", str(out), *options]  # fmt: skip


def train(split_dataset, out, accumulation: int = 1) -> None:
    result = subprocess.run(
        train_command(split_dataset, out, accumulation), cwd=ROOT, capture_output=True, encoding="utf-8", errors="replace",
        timeout=STARTUP_LIMIT_SECONDS, env={**os.environ, **ONE_THREAD},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]


def kill_after_first_checkpoint(split_dataset, out, accumulation: int = 1) -> None:
    child = subprocess.Popen(
        train_command(split_dataset, out, accumulation), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        encoding="utf-8", errors="replace", env={**os.environ, **ONE_THREAD},
    )  # fmt: skip
    deadline = time.monotonic() + STARTUP_LIMIT_SECONDS
    try:
        while not checkpoints_in(out / "checkpoints"):
            assert child.poll() is None, f"training ended before its first checkpoint: {child.stderr.read()[-2000:]}"
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(POLL_SECONDS)
    finally:
        child.kill()  # SIGKILL: no handler, no cleanup runs
        child.communicate()


@pytest.mark.slow
@pytest.mark.parametrize("accumulation", [1, 2], ids=["plain", "accumulating"])
def test_a_run_killed_mid_epoch_and_resumed_ends_with_the_uninterrupted_runs_weights(
    split_dataset, tmp_path, accumulation
):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    train(split_dataset, whole, accumulation)
    kill_after_first_checkpoint(split_dataset, killed, accumulation)
    (saved,) = checkpoints_in(killed / "checkpoints")
    at = torch.load(saved / STATE_FILE, weights_only=True)["engine"]["iteration"]
    train(split_dataset, killed, accumulation)  # resumes from the checkpoint the kill left

    final, resumed = checkpoints_in(whole / "checkpoints")[-1], checkpoints_in(killed / "checkpoints")[-1]
    assert final.name == resumed.name
    end = torch.load(final / STATE_FILE, weights_only=True)
    assert at % (end["engine"]["iteration"] // RUN["epochs"]) != 0, "the kill came mid-epoch"
    expected, got = load_file(final / WEIGHTS_NAME), load_file(resumed / WEIGHTS_NAME)
    assert expected.keys() == got.keys()
    different = [name for name in expected if not torch.equal(expected[name], got[name])]
    assert not different, f"{len(different)} of {len(expected)} tensors differ, e.g. {different[:3]}"
    again = torch.load(resumed / STATE_FILE, weights_only=True)["rng"]
    assert torch.equal(again["torch"], end["rng"]["torch"]) and again["python"] == end["rng"]["python"]
