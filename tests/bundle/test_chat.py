"""The terminal chat, driven through its input stream: a scripted dialogue, its commands and its errors."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

from bundle.chat import main, model_overrides
from common.errors import ConfigError
from tests.helpers.configs import ROOT
from tests.helpers.inference import QUERY, save_phantom
from tests.helpers.tiny import TINY

pytestmark = pytest.mark.filterwarnings("ignore:builtin type:DeprecationWarning")

CONFIGS = "[" + ",".join(f"'{f}'" for f in TINY) + "]"


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    return save_phantom(tmp_path_factory.mktemp("chat") / "ph0.nii.gz", 0)


def chat(image, out, script: str, *options: str) -> int:
    argv = ["--image", str(image), "--config_file", CONFIGS, "--output_dir", str(out), *options]
    return main(argv, stream=io.StringIO(script))


def test_a_scripted_dialogue_writes_each_turn_and_the_summary(image, tmp_path, capsys):
    script = f"{QUERY}\nAnd the one on the other side?\n/oops\n/new\n\nWhere is the liver?\n/save\n/quit\nignored\n"
    assert chat(image, tmp_path, script, "--presence_threshold", "0") == 0
    printed = capsys.readouterr().out
    files = {p.name for p in tmp_path.iterdir()}
    turns = {f"ph0_turn{k}{s}" for k in (1, 2, 3) for s in ("_mask.nii.gz", "_result.json", "_overlay.png")}
    assert files == turns | {"ph0_dialogue.json"}
    summary = json.loads((tmp_path / "ph0_dialogue.json").read_text())
    assert [t["question"] for t in summary["turns"]] == [QUERY, "And the one on the other side?", "Where is the liver?"]
    assert printed.count("ph0_turn") >= 3 and "question: 'Where is the liver?'" in printed
    assert "unknown command '/oops'" in printed and "new dialogue" in printed
    assert "ignored" not in printed  # nothing is read after /quit


def test_the_end_of_input_saves_the_dialogue(image, tmp_path):
    assert chat(image, tmp_path, f"{QUERY}\n") == 0
    assert json.loads((tmp_path / "ph0_dialogue.json").read_text())["turns"][0]["question"] == QUERY


def test_a_bad_question_is_reported_and_the_chat_goes_on(image, tmp_path, capsys):
    long = "liver " * 5000
    assert chat(image, tmp_path, f"{long}\n{QUERY}\n") == 0
    printed = capsys.readouterr().out
    assert "error: config 'query': the question is too long" in printed
    assert (tmp_path / "ph0_turn1_mask.nii.gz").exists() and not (tmp_path / "ph0_turn2_mask.nii.gz").exists()


def test_unknown_model_options_and_missing_images_stop_before_the_model_is_built(image, tmp_path, capsys):
    assert chat(image, tmp_path, "", "--batchsize", "2") == 1
    assert "config key 'batchsize' is not known (did you mean 'batch_size'?)" in capsys.readouterr().err
    assert chat(tmp_path / "missing.nii.gz", tmp_path, "") == 1
    assert "image not found" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_model_options_are_read_as_config_values():
    assert model_overrides(["--batch_size", "4", "--window=mr", "--a_min", "null"]) == {
        "batch_size": 4,
        "window": "mr",
        "a_min": None,
    }
    with pytest.raises(ConfigError, match="needs a value"):
        model_overrides(["--checkpoint"])
    with pytest.raises(ConfigError, match="--id value"):
        model_overrides(["stray"])


def test_the_command_line_runs_as_a_module(image, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "bundle.chat", "--image", str(image), "--config_file", CONFIGS, "--output_dir", str(tmp_path)],
        input=f"{QUERY}\n/quit\n", capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "ph0_turn1" in result.stdout and (tmp_path / "ph0_dialogue.json").exists()
