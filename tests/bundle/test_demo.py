"""The embedded demo: the shipped model answers the shipped question about the shipped volume."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest

from tests.helpers.configs import ROOT, config_list
from tests.helpers.printed import unexpected_lines

DEMO = ["configs/model.json", "configs/demo_model.json", "configs/inference.json", "configs/demo.json"]
"""The README's main command: the model at the demo's size, the inference workflow, the demo's question and volume."""
MODEL = ROOT / "models" / "demo"
TARGET = "right kidney"  # what the demo question in configs/demo.json asks for
MAX_MODEL_BYTES = 25 * 2**20


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """The main command from another directory, as the README says: absolute config paths and ``--bundle_root``."""
    out, elsewhere = tmp_path_factory.mktemp("demo"), tmp_path_factory.mktemp("cwd")
    files = config_list([str(ROOT / name) for name in DEMO])
    command = [sys.executable, "-m", "monai.bundle", "run", "--config_file", files, "--bundle_root", str(ROOT),
               "--output_dir", str(out)]  # fmt: skip
    done = subprocess.run(command, cwd=elsewhere, capture_output=True, encoding="utf-8", errors="replace", timeout=600)
    return done, out


def test_the_readme_main_command_runs_the_demo_config():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- main-command -->", 1)[1].split("```", 2)[1]
    assert f'--config_file "{config_list(DEMO)}"' in block


def test_the_shipped_model_is_small_safetensors_with_its_tokenizer():
    files = {p.name: p.stat().st_size for p in MODEL.iterdir()}
    assert {"medisee.safetensors", "medisee.json", "tokenizer.json"} <= set(files)
    assert not [name for name in files if name.endswith((".pt", ".pth", ".bin", ".pkl"))]
    assert sum(files.values()) < MAX_MODEL_BYTES
    meta = json.loads((MODEL / "medisee.json").read_text())
    assert meta["include"] == "all" and meta["medisee_config"]["trainable"] == "all"


@pytest.mark.slow
def test_the_demo_finds_the_asked_organ_and_says_where_its_outputs_are(demo_run):
    done, out = demo_run
    assert done.returncode == 0, done.stderr[-2000:]
    mask_file, result_file = out / "phantom_000_mask.nii.gz", out / "phantom_000_result.json"
    assert str(mask_file) in done.stdout and str(result_file) in done.stdout

    dataset = json.loads((ROOT / "demo" / "dataset.json").read_text())
    value = next(int(k) for k, name in dataset["labels"].items() if name == TARGET)
    label = nib.load(ROOT / "demo" / dataset["training"][0]["label"])
    mask = nib.load(mask_file)
    assert np.allclose(mask.affine, label.affine) and mask.shape == label.shape
    truth = np.asarray(label.dataobj) == value
    found = np.asarray(mask.dataobj) > 0
    dice = 2 * (truth & found).sum() / (truth.sum() + found.sum())
    assert dice >= 0.8, f"demo mask Dice {dice:.3f}"

    result = json.loads(result_file.read_text())
    assert result["slices"] and result["box_3d"] is not None
    assert re.search(r"right kidney", result["answer"], re.IGNORECASE), result["answer"]


@pytest.mark.slow
def test_the_demo_prints_only_the_result_lines_in_plain_words(demo_run):
    done, out = demo_run
    assert done.returncode == 0, done.stderr[-2000:]
    assert unexpected_lines(done.stdout) == [], done.stdout
    assert not any(token in done.stdout for token in ("[SEG]", "[BBOX]", "[REJ]")), done.stdout
    answer = json.loads((out / "phantom_000_result.json").read_text())
    assert "[SEG]" not in answer["answer"] and answer["answer_raw"].startswith("It is [SEG] and [BBOX].")
    assert answer["answer"] in answer["answer_raw"], "the plain answer is the model's own text without tokens"


ABSENT = "Please segment and locate the heart in this image."
"""A structure the demo volume (an abdominal phantom) does not hold."""


@pytest.mark.slow
def test_the_demo_says_an_absent_structure_is_not_found(tmp_path):
    files = config_list([str(ROOT / name) for name in DEMO])
    command = [sys.executable, "-m", "monai.bundle", "run", "--config_file", files, "--bundle_root", str(ROOT),
               "--output_dir", str(tmp_path), "--query", ABSENT]  # fmt: skip
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, encoding="utf-8", errors="replace", timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads((tmp_path / "phantom_000_result.json").read_text())
    assert result["found"] is False and result["slices"] == [] and result["box_3d"] is None
    assert result["volume_ml"] == 0.0
    assert not np.asarray(nib.load(tmp_path / "phantom_000_mask.nii.gz").dataobj).any()
    assert "phantom_000: no target found" in done.stdout
    assert "not" in result["answer"].lower() and "[REJ]" not in result["answer"], result["answer"]
