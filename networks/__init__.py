"""The MediSee network: LLaVA-Med + candidate-token routers + box head + MedSAM.

Exports are resolved lazily (PEP 562), so light modules such as ``networks.errors`` and
``networks.files`` can be imported without loading torch and transformers.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "MediSee": "networks.medisee",
    "MediSeeOutput": "networks.medisee",
    "MediSeeConfig": "networks.config",
    "SamConfig": "networks.config",
    "build_medisee": "networks.build",
    "build_tokenizer": "networks.tokenizer",
    "save_checkpoint": "networks.checkpoint",
    "load_checkpoint": "networks.checkpoint",
    "trainable_report": "networks.trainable",
    "format_report": "networks.trainable",
    "MediSeeError": "networks.errors",
    "WeightsError": "networks.errors",
    "ConfigError": "networks.errors",
    "InputError": "networks.errors",
    "DataError": "networks.errors",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'networks' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return sorted(__all__)
