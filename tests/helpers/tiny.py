"""The tiny bundle config and the tiny model built from it (``configs/tiny.json``: small sizes, the real classes)."""

from __future__ import annotations

import torch
from monai.bundle import ConfigParser

from networks import build_medisee
from tests.helpers.configs import config_files

TINY = config_files("inference.json")
"""The inference workflow on the tiny model: ``['configs/model.json','configs/tiny.json','configs/inference.json']``."""


def tiny_parser(**overrides) -> ConfigParser:
    """The tiny inference config (:data:`TINY`), plus ``overrides`` (config ids)."""
    parser = ConfigParser()
    parser.read_config(TINY)
    for key, value in overrides.items():
        parser[key] = value
    return parser


def build_tiny(seed: int = 0, **overrides):
    """(model, tokenizer) for the tiny preset, deterministic by ``seed``.

    Calls the ``network_def`` target with the config's parsed arguments, so errors arrive as
    raised (ConfigParser would wrap them); test_bundle_config builds through ConfigParser itself.
    """
    torch.manual_seed(seed)
    parser = tiny_parser(**overrides)
    tokenizer = parser.get_parsed_content("tokenizer")
    definition = parser.get("network_def")
    kwargs = {k: parser.get_parsed_content(f"network_def#{k}") for k in definition if not k.startswith("_")}
    kwargs["tokenizer"] = tokenizer
    return build_medisee(**kwargs), tokenizer
