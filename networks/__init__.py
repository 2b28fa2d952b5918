"""The MediSee network: LLaVA-Med + candidate-token routers + box head + MedSAM."""

from networks.build import build_medisee
from networks.checkpoint import load_checkpoint, save_checkpoint
from networks.config import MediSeeConfig, SamConfig
from networks.errors import ConfigError, DataError, InputError, MediSeeError, WeightsError
from networks.medisee import MediSee, MediSeeOutput
from networks.tokenizer import build_tokenizer
from networks.trainable import format_report, trainable_report

__all__ = [
    "MediSee",
    "MediSeeOutput",
    "MediSeeConfig",
    "SamConfig",
    "build_medisee",
    "build_tokenizer",
    "save_checkpoint",
    "load_checkpoint",
    "trainable_report",
    "format_report",
    "MediSeeError",
    "WeightsError",
    "DataError",
    "ConfigError",
    "InputError",
]
