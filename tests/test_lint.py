"""The project's own lint and format rules (pyproject.toml, the MONAI model zoo's settings) hold everywhere."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest brings tomli on Python 3.10
    import tomli as tomllib

from tests.helpers.configs import ROOT

JSON_INDENT = 4
"""The model zoo's pretty-format-json hook: indent 4, keys in their written order."""


def tracked_files(*patterns: str) -> list[str]:
    """Files git tracks under the bundle root matching ``patterns``."""
    out = subprocess.run(["git", "ls-files", *patterns], cwd=ROOT, capture_output=True, text=True, check=True)
    return out.stdout.split()


@pytest.mark.parametrize("command", [["check", "."], ["format", "--check", "."]], ids=["check", "format"])
def test_ruff_finds_nothing(command):
    result = subprocess.run([sys.executable, "-m", "ruff", *command], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_json_configs_are_formatted_as_the_model_zoo_formats_them():
    unformatted = []
    for name in tracked_files("configs/*.json"):
        text = (ROOT / name).read_text()
        if text != json.dumps(json.loads(text), indent=JSON_INDENT) + "\n":
            unformatted.append(name)
    assert not unformatted, f"reformat with json.dumps(..., indent={JSON_INDENT}): {unformatted}"


SUFFIXES = (".py", ".json", ".md", ".toml", ".yml", ".yaml", ".sh", ".conf", ".txt", ".cfg")


def test_text_files_have_no_trailing_whitespace_and_unix_line_endings():
    """The zoo's trailing-whitespace and mixed-line-ending hooks."""
    found = []
    for name in tracked_files():
        if name.endswith(SUFFIXES) and not name.endswith("tokenizer.json"):
            for number, line in enumerate((ROOT / name).read_bytes().split(b"\n"), 1):
                if line.rstrip() != line:
                    found.append(f"{name}:{number}")
    assert not found


def test_yaml_and_toml_files_parse():
    """The zoo's check-yaml and check-toml hooks."""
    for name in tracked_files("*.yml", "*.yaml"):
        yaml.safe_load((ROOT / name).read_text())
    for name in tracked_files("*.toml"):
        tomllib.loads((ROOT / name).read_text())


def test_text_files_end_with_a_newline():
    suffixes = SUFFIXES
    # the tokenizer file is written by the tokenizers library as it is
    missing = [
        name
        for name in tracked_files()
        if name.endswith(suffixes) and not name.endswith("tokenizer.json") and (ROOT / name).stat().st_size
        if not (ROOT / name).read_bytes().endswith(b"\n")
    ]
    assert not missing
