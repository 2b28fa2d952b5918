"""Ignite engines on monai.engines: the trainer, the evaluator, checkpoints and epoch-aware data."""

from bundle.engines.accumulation import MicroBatches, optimizer_steps
from bundle.engines.checkpoints import TrainingCheckpoint, latest_checkpoint
from bundle.engines.epochs import EpochSetter
from bundle.engines.evaluator import MediSeeEvaluator
from bundle.engines.sam_cache import SamEmbeddingCache
from bundle.engines.schedules import warmup_schedule
from bundle.engines.trainer import MediSeeTrainer
from bundle.engines.volumes import VolumeQuestionEvaluator

__all__ = [
    "MediSeeTrainer",
    "MediSeeEvaluator",
    "TrainingCheckpoint",
    "latest_checkpoint",
    "EpochSetter",
    "SamEmbeddingCache",
    "MicroBatches",
    "optimizer_steps",
    "warmup_schedule",
    "VolumeQuestionEvaluator",
]
