"""The bundle's config lists as the README composes them: ``model.json``, a size preset, a workflow, its overrides."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"

WORKFLOWS = {
    "inference": ["inference.json"],
    "multi-GPU inference": ["inference.json", "multi_gpu_inference.json"],
    "train": ["train.json"],
    "evaluate": ["train.json", "evaluate.json"],
    "whole volumes": ["train.json", "evaluate_volumes.json"],
    "fine-tune": ["train.json", "finetune.json"],
    "multi-GPU train": ["train.json", "multi_gpu_train.json"],
}
"""Every workflow the README documents: its files after ``model.json`` and the size preset."""


def config_files(*workflow: str, preset: str | None = "tiny.json") -> list[str]:
    """Absolute paths of ``configs/model.json``, the size ``preset`` (None: full size) and ``workflow``'s files.

    Args:
        workflow: file names under ``configs/``, merged in this order after the model (e.g.
            ``"train.json", "evaluate.json"``).
        preset: the size preset merged right after the model.
    """
    names = ["model.json", *([preset] if preset else []), *workflow]
    return [str(CONFIGS / name) for name in names]


def config_list(files: list[str]) -> str:
    """The ``--config_file`` value of a command line: ``"['a.json','b.json']"``."""
    return "[" + ",".join(f"'{name}'" for name in files) + "]"
