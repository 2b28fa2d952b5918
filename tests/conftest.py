"""Shared fixtures: the tiny model and two small phantom datasets. Anything built twice is module- or session-scoped.

Helpers live in ``tests/helpers/`` (the tiny config and model in ``tiny.py``); import them from there.
"""

from __future__ import annotations

import logging

import pytest

from tests.helpers.phantoms import write_small_dataset, write_split_dataset
from tests.helpers.tiny import build_tiny


@pytest.fixture(scope="session")
def tiny():
    """A shared tiny model in eval mode (do not mutate; build your own to train)."""
    model, tokenizer = build_tiny()
    return model.eval(), tokenizer


@pytest.fixture(scope="session")
def phantom_dataset(tmp_path_factory):
    """The small phantom dataset (:func:`tests.helpers.phantoms.write_small_dataset`), written once per run."""
    return write_small_dataset(tmp_path_factory.mktemp("phantom_dataset") / "data")


@pytest.fixture(scope="session")
def split_dataset(tmp_path_factory):
    """The phantom dataset with all three splits (:func:`tests.helpers.phantoms.write_split_dataset`), written once per run."""
    return write_split_dataset(tmp_path_factory.mktemp("split_dataset") / "data")


@pytest.fixture(autouse=True)
def _quiet_transformers():
    logging.getLogger("transformers").setLevel(logging.ERROR)
