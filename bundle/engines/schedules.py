"""Learning-rate schedules: a linear warm-up from 0, then linear (the paper's) or cosine decay to 0.

The paper trains with DeepSpeed's ``WarmupDecayLR`` (100 warm-up iterations; the released LISA-style
code sets ``warmup_min_lr`` 0 and a linear warm-up): the rate rises linearly from 0 to
``learning_rate`` over ``warmup_steps`` optimizer steps, then falls linearly to 0 at the last step.
transformers' ``get_linear_schedule_with_warmup`` is that function, and
``get_cosine_schedule_with_warmup`` the cosine variant with the same warm-up; both are a
``torch.optim.lr_scheduler.LambdaLR``, stepped once per optimizer step (``LrScheduleHandler``,
one Ignite iteration being one optimizer step, see :class:`bundle.engines.MediSeeTrainer`).

``warmup_steps`` is honoured as given. MONAI's ``WarmupCosineSchedule`` would silently shorten a
warm-up longer than the run; here a warning says so and the warm-up stays what the config says.
"""

from __future__ import annotations

import logging

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR
from transformers import get_cosine_schedule_with_warmup, get_linear_schedule_with_warmup

from common.errors import ConfigError

logger = logging.getLogger(__name__)

SCHEDULES = {"linear": get_linear_schedule_with_warmup, "cosine": get_cosine_schedule_with_warmup}


def warmup_schedule(optimizer: Optimizer, schedule: str, warmup_steps: int, total_steps: int) -> LambdaLR:
    """The configured learning-rate schedule.

    Args:
        optimizer: its learning rate is the peak (``learning_rate``).
        schedule: ``linear`` (warm-up, then linear decay to 0: the paper's ``WarmupDecayLR``) or
            ``cosine`` (warm-up, then half a cosine to 0).
        warmup_steps: optimizer steps of the linear warm-up from 0.
        total_steps: optimizer steps of the whole run (the rate reaches 0 there).

    Raises:
        ConfigError: an unknown schedule, or negative step counts, naming the config key.
    """
    if schedule not in SCHEDULES:
        raise ConfigError(f"config 'lr_schedule' must be one of {sorted(SCHEDULES)}, got {schedule!r}")
    if warmup_steps < 0:
        raise ConfigError(f"config 'warmup_steps' must be 0 or more, got {warmup_steps}")
    if total_steps < 0:
        raise ConfigError(f"the run's optimizer steps (config 'epochs' x steps per epoch) are negative: {total_steps}")
    if warmup_steps >= total_steps:
        logger.warning(
            "config 'warmup_steps' (%d) is not below the run's %d optimizer steps: the learning rate never "
            "reaches 'learning_rate' and never decays (the warm-up is kept as given)",
            warmup_steps,
            total_steps,
        )
    return SCHEDULES[schedule](optimizer, num_warmup_steps=warmup_steps, num_training_steps=total_steps)
