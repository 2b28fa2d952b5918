"""The learning-rate schedules: warm-up from 0, then the paper's linear decay (or cosine) to 0."""

from __future__ import annotations

import logging
import math

import pytest
import torch

from bundle.engines import warmup_schedule
from common.errors import ConfigError

PEAK = 3e-4


def paper_factor(step: int, warmup: int, total: int) -> float:
    """DeepSpeed's WarmupDecayLR with warmup_type linear and warmup_min_lr 0 (the paper's scheduler)."""
    if step < warmup:
        return step / warmup
    return max(0.0, (total - step) / max(1, total - warmup))


def cosine_factor(step: int, warmup: int, total: int) -> float:
    if step < warmup:
        return step / warmup
    return 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / (total - warmup)))


def rates(schedule: str, warmup: int, total: int, steps: int) -> list[float]:
    """The learning rate used at each of ``steps`` optimizer steps."""
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=PEAK)
    scheduler = warmup_schedule(optimizer, schedule, warmup, total)
    out = []
    for _ in range(steps):
        out.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return out


@pytest.mark.parametrize(("schedule", "factor"), [("linear", paper_factor), ("cosine", cosine_factor)])
def test_the_rate_warms_up_from_zero_then_decays_to_zero_at_the_last_step(schedule, factor):
    warmup, total = 4, 10
    expected = [PEAK * factor(step, warmup, total) for step in range(total + 1)]
    assert rates(schedule, warmup, total, total + 1) == pytest.approx(expected, abs=1e-12)
    assert expected[warmup] == PEAK and expected[total] == 0.0


def test_the_linear_decay_is_a_straight_line_and_the_cosine_one_is_not():
    linear, cosine = rates("linear", 2, 12, 12), rates("cosine", 2, 12, 12)
    linear_steps = {round(b - a, 15) for a, b in zip(linear[2:], linear[3:])}
    assert len(linear_steps) == 1 and linear_steps.pop() < 0
    assert cosine[7] == pytest.approx(PEAK / 2) and linear[7] == pytest.approx(PEAK / 2)
    assert cosine[4] > linear[4] and cosine[10] < linear[10]


def test_a_warm_up_longer_than_the_run_is_kept_as_given_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="bundle.engines.schedules"):
        used = rates("linear", 100, 10, 10)
    assert "'warmup_steps' (100)" in caplog.text and "10 optimizer steps" in caplog.text
    assert used == pytest.approx([PEAK * step / 100 for step in range(10)], abs=1e-12)  # not squeezed into 10 steps


def test_no_warning_when_the_warm_up_fits(caplog):
    with caplog.at_level(logging.WARNING, logger="bundle.engines.schedules"):
        rates("cosine", 3, 10, 1)
    assert caplog.text == ""


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [({"schedule": "step"}, "lr_schedule"), ({"warmup_steps": -1}, "warmup_steps")],
)
def test_bad_schedule_settings_are_refused_naming_the_key(kwargs, key):
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=PEAK)
    arguments = {"schedule": "linear", "warmup_steps": 2, "total_steps": 10, **kwargs}
    with pytest.raises(ConfigError, match=key):
        warmup_schedule(optimizer, **arguments)


def test_a_saved_schedule_resumes_at_its_step(tmp_path):
    """As TrainingCheckpoint does it: optimizer and scheduler states saved, loaded with weights_only."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=PEAK)
    scheduler = warmup_schedule(optimizer, "linear", 2, 10)
    for _ in range(5):
        optimizer.step()
        scheduler.step()
    torch.save({"optimizer": optimizer.state_dict(), "lr_scheduler": scheduler.state_dict()}, tmp_path / "state.pt")
    again = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=PEAK)
    resumed = warmup_schedule(again, "linear", 2, 10)
    state = torch.load(tmp_path / "state.pt", weights_only=True)
    again.load_state_dict(state["optimizer"])
    resumed.load_state_dict(state["lr_scheduler"])
    assert again.param_groups[0]["lr"] == pytest.approx(PEAK * 5 / 8)
    scheduler.step()
    resumed.step()
    assert again.param_groups[0]["lr"] == optimizer.param_groups[0]["lr"] == pytest.approx(PEAK * 4 / 8)
