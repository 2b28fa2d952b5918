"""The MediSee network: LLaVA-Med + candidate-token routers + box head + MedSAM.

Exports are resolved lazily (PEP 562), so that ``from networks import ConfigError`` (the error types
live in :mod:`common.errors`) loads neither torch nor transformers.
"""

from __future__ import annotations

from networks.lazy import lazy_exports

_EXPORTS = {
    "MediSee": "networks.medisee",
    "MediSeeOutput": "networks.medisee",
    "MediSeeConfig": "networks.config",
    "SamConfig": "networks.config",
    "build_medisee": "networks.build",
    "build_tokenizer": "networks.tokenizer",
    "compile_network": "networks.compile",
    "save_checkpoint": "networks.checkpoint",
    "load_checkpoint": "networks.checkpoint",
    "trainable_report": "networks.trainable",
    "format_report": "networks.trainable",
    "upcast_trainable": "networks.trainable",
    "set_gradient_checkpointing": "networks.llava",
    "set_sequence_packing": "networks.packing",
    "MediSeeError": "common.errors",
    "WeightsError": "common.errors",
    "ConfigError": "common.errors",
    "InputError": "common.errors",
    "DataError": "common.errors",
}

__all__ = list(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
