"""The bundle files: configs build the model, metadata and large-file lists are complete, README commands are real."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import yaml
from monai.bundle import ConfigParser

from networks import MediSee
from tests.conftest import ROOT, TINY

MANDATORY_METADATA = (
    "version", "changelog", "monai_version", "pytorch_version", "numpy_version", "required_packages_version",
    "task", "description", "authors", "copyright", "network_data_format",
)  # fmt: skip


def test_tiny_network_def_builds_with_config_parser():
    parser = ConfigParser()
    parser.read_config(TINY)
    model = parser.get_parsed_content("network_def")
    assert isinstance(model, MediSee)
    assert model.llava.config.text_config.hidden_size == parser["text_config"]["hidden_size"]
    assert type(model.llava).__name__ == "LlavaForConditionalGeneration"
    assert type(model.medsam.sam).__name__ == "Sam"


@pytest.mark.parametrize("preset", ["tiny.json", "demo_model.json"])
def test_size_presets_change_sizes_only(preset):
    base, tiny = (json.loads((ROOT / "configs" / name).read_text()) for name in ("model.json", preset))
    for key, value in tiny.items():
        top = key.split("#")[0]
        assert top in base, key
        if isinstance(value, dict):
            assert set(value) <= set(base[top]), key  # same fields, other values
    assert "network_def" not in tiny and "tokenizer" not in tiny


def test_metadata_has_the_mandatory_keys():
    metadata = json.loads((ROOT / "configs" / "metadata.json").read_text())
    assert [k for k in MANDATORY_METADATA if k not in metadata] == []
    formats = metadata["network_data_format"]
    assert {"image", "query"} <= set(formats["inputs"]) and {"mask", "box", "text"} <= set(formats["outputs"])
    assert [k for k in metadata if k.endswith("_data_format") and k != "network_data_format"]
    assert metadata["version"] in metadata["changelog"]


def test_large_files_name_the_three_external_checkpoints():
    entries = yaml.safe_load((ROOT / "models" / "large_files.yml").read_text())["large_files"]
    urls = " ".join(e["url"] for e in entries)
    assert len(entries) == 3
    assert all(name in urls for name in ("llava-med-v1.5-mistral-7b", "clip-vit-large-patch14-336", "MedSAM"))


def test_readme_commands_are_the_ones_ci_runs():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"<!-- (main|test)-command -->\s*```bash\n(.+?)\n```", readme)
    assert [name for name, _ in blocks] == ["main", "test"]
    assert all("constraints/cpu.txt" in cmd for _, cmd in blocks)
    program = "/<!-- test-command -->/{found=1; next} found && /^```/{if (inblock) exit; inblock=1; next} inblock{print; exit}"
    extracted = subprocess.run(
        ["awk", program, "README.md"], cwd=ROOT, capture_output=True, encoding="utf-8", errors="replace", check=True
    ).stdout.strip()
    assert extracted == dict(blocks)["test"]
    assert extracted in (ROOT / ".ci" / "run").read_text() or "test-command" in (ROOT / ".ci" / "run").read_text()
    assert (ROOT / "constraints" / "cpu.txt").read_text().strip() == "torch==2.13.0+cpu"


def test_report_command_prints_the_trainable_table():
    result = subprocess.run(
        [sys.executable, "-m", "networks.report", "--config_file", str(TINY)],
        cwd=ROOT, capture_output=True, encoding="utf-8", errors="replace", timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "[SEG], [BBOX]" in result.stdout and "LoRA adapters" in result.stdout and "total" in result.stdout


def test_report_command_gives_one_line_for_a_bad_weight_path(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "networks.report", "--config_file", str(TINY), "--medsam_path", str(tmp_path / "none.pth")],
        cwd=ROOT, capture_output=True, encoding="utf-8", errors="replace", timeout=300,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: MedSAM checkpoint not found")
    assert "Traceback" not in result.stderr


def test_report_command_names_a_missing_config_file(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "networks.report", "--config_file", str(tmp_path / "nope.json")],
        cwd=ROOT, capture_output=True, encoding="utf-8", errors="replace", timeout=300,
    )  # fmt: skip
    assert result.returncode == 1 and "nope.json" in result.stderr and "Traceback" not in result.stderr
