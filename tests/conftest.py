"""Shared fixtures: the tiny bundle config and small inputs. Anything built twice is module- or session-scoped."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from monai.bundle import ConfigParser

from networks import build_medisee
from tests.helpers.configs import config_files

ROOT = Path(__file__).resolve().parents[1]
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


@pytest.fixture(scope="session")
def tiny():
    """A shared tiny model in eval mode (do not mutate; build your own to train)."""
    model, tokenizer = build_tiny()
    return model.eval(), tokenizer


@pytest.fixture(autouse=True)
def _quiet_transformers():
    logging.getLogger("transformers").setLevel(logging.ERROR)
