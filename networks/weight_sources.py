"""Random weights only on request: every part of a model comes from a weight file, or is about to be trained.

Without ``llava_path`` the language model and CLIP are random; without ``medsam_path`` SAM is
random; without ``checkpoint`` the MediSee heads (LoRA, routers, box head, mask decoder) are.
A random model runs and draws masks: meaningless ones, which look like findings. So unless the
config says ``random_weights: true`` (tests, benchmarks, ``configs/tiny.json``), the bundle
refuses, before building anything, a model whose weights would be random:

- in inference (``training: false``), any part no file provides: a checkpoint that holds the whole
  state (``include: all``, a model trained from random initialisation such as the demo) provides
  everything, otherwise ``llava_path``, ``medsam_path`` and ``checkpoint`` are all needed;
- in training (``training: true``), the frozen parts: with ``trainable: paper`` the language model,
  CLIP and SAM's encoders need ``llava_path`` and ``medsam_path`` (LoRA and the heads train);
  with ``trainable: all`` every parameter trains and nothing is needed.
"""

from __future__ import annotations

import os

from common.errors import ConfigError
from networks.checkpoint import read_checkpoint_meta

WHOLE_STATE = "all"
"""A checkpoint's ``include`` when it holds every parameter (:func:`networks.checkpoint.save_checkpoint`)."""
TRAINS_EVERYTHING = "all"
"""``trainable`` of a model trained from random initialisation."""
DEMO_COMMAND = (
    "python -m monai.bundle run --config_file "
    "\"['configs/model.json','configs/demo_model.json','configs/inference.json','configs/demo.json']\""
)


def holds_whole_state(checkpoint: str | os.PathLike | None) -> bool:
    """Whether ``checkpoint`` holds every parameter of its model (False when it is None).

    Raises:
        WeightsError: the checkpoint is missing or unreadable (checked here, before anything is built).
    """
    if checkpoint is None:
        return False
    _, meta = read_checkpoint_meta(checkpoint)
    return meta.get("include") == WHOLE_STATE


def missing_weight_settings(
    llava_path: str | os.PathLike | None,
    medsam_path: str | os.PathLike | None,
    checkpoint: str | os.PathLike | None,
    trainable: str,
    training: bool,
) -> list[str]:
    """The weight settings a model needs and lacks: what would be random and is neither loaded nor trained."""
    if (training and trainable == TRAINS_EVERYTHING) or holds_whole_state(checkpoint):
        return []
    missing = [key for key, value in (("llava_path", llava_path), ("medsam_path", medsam_path)) if value is None]
    if not training and checkpoint is None:
        missing.append("checkpoint")
    return missing


def check_weight_sources(
    llava_path: str | os.PathLike | None,
    medsam_path: str | os.PathLike | None,
    checkpoint: str | os.PathLike | None,
    trainable: str = "paper",
    training: bool = False,
    random_weights: bool = False,
) -> None:
    """Refuses a model whose weights would be random, unless ``random_weights`` asks for one.

    Args:
        llava_path: the ``llava_path`` setting.
        medsam_path: the ``medsam_path`` setting.
        checkpoint: the ``checkpoint`` setting.
        trainable: the trainable set (``paper`` or ``all``).
        training: the model is built to be trained (its trainable parts may start at random).
        random_weights: random weights are wanted (tests, benchmarks).

    Raises:
        ConfigError: one line naming the missing settings and the demo command.
        WeightsError: a configured checkpoint is missing or unreadable.
    """
    if random_weights:
        return
    missing = missing_weight_settings(llava_path, medsam_path, checkpoint, trainable, training)
    if missing:
        names = ", ".join(f"'{key}'" for key in missing)
        raise ConfigError(
            f"config {names} not set: the model would have random weights. Give the weights (README, "
            f"'Using the real weights'), try the demo model ({DEMO_COMMAND}), or set random_weights true "
            "for a random model on purpose"
        )
