"""Fixtures of the generator tests: six phantoms in memory, and a dataset written through the command line."""

from __future__ import annotations

import pytest

from bundle.phantoms import generate_phantom
from bundle.phantoms.__main__ import main
from tests.bundle.phantoms.series import SEED, SHAPE, VOLUMES


@pytest.fixture(scope="module")
def phantoms():
    return [generate_phantom(SEED, index, SHAPE) for index in range(VOLUMES)]


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """A dataset written through the command line, with its printed output."""
    out = tmp_path_factory.mktemp("cli") / "phantoms"
    argv = ["--out", str(out), "--n", "4", "--seed", str(SEED), "--shape", *map(str, SHAPE), "--val-fraction", "0.25",
            "--test-fraction", "0.25"]  # fmt: skip
    return out, main(argv), argv
