"""The bundle files: configs build the model, metadata and large-file lists are complete, README commands are real."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import jsonschema
import pytest
import yaml
from monai.bundle import ConfigParser, verify_metadata

from networks import MediSee
from tests.helpers.configs import ROOT
from tests.helpers.tiny import TINY

MANDATORY_METADATA = (
    "version", "changelog", "monai_version", "pytorch_version", "numpy_version", "required_packages_version",
    "task", "description", "authors", "copyright", "network_data_format",
)  # fmt: skip
METADATA = ROOT / "configs" / "metadata.json"
SCHEMA = ROOT / "tests" / "data" / "meta_schema_20240725.json"
"""A copy of the schema MONAI publishes at metadata.json's ``schema`` URL, which the model zoo's CI validates against."""
SCHEMA_MD5 = "76e1add273836515d0bbb3bc71962474"
DEMO_FIGURES = ("dice", "giou", "ciou", "box_iou", "box_acc")
"""The columns of the README's demo table, in order."""


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


def test_metadata_is_valid_against_the_model_zoo_schema_offline(tmp_path):
    schema = tmp_path / "schema.json"
    shutil.copy(SCHEMA, schema)
    # MONAI's own check (`python -m monai.bundle verify_metadata --filepath FILE --hash_val MD5`): the schema
    # file exists and matches the hash, so nothing is downloaded
    verify_metadata(meta_file=str(METADATA), filepath=str(schema), hash_val=SCHEMA_MD5)
    metadata = json.loads(METADATA.read_text())
    jsonschema.Draft201909Validator(json.loads(SCHEMA.read_text())).validate(metadata)
    shapes = [
        v["spatial_shape"]
        for key, io in metadata.items()
        if key.endswith("_data_format")
        for part in io.values()
        for v in part.values()
    ]
    assert shapes and all(-1 not in shape for shape in shapes)  # any size is written "*", as the zoo does


def test_metadata_eval_metrics_are_the_demo_figures_the_readme_reports():
    metrics = json.loads(METADATA.read_text())["eval_metrics"]
    row = re.search(r"^\| all \|(.+)\|$", (ROOT / "README.md").read_text(), re.MULTILINE).group(1)
    reported = [float(cell) for cell in row.split("|")]
    assert metrics == {f"demo_phantom_{name}": value for name, value in zip(DEMO_FIGURES, reported)}


def test_metadata_has_the_mandatory_keys():
    metadata = json.loads(METADATA.read_text())
    assert [k for k in MANDATORY_METADATA if k not in metadata] == []
    formats = metadata["network_data_format"]
    assert {"image", "query"} <= set(formats["inputs"]) and {"mask", "box", "text"} <= set(formats["outputs"])
    assert [k for k in metadata if k.endswith("_data_format") and k != "network_data_format"]
    assert metadata["version"] in metadata["changelog"]


HASH_LENGTHS = {"md5": 32, "sha256": 64}


def test_large_files_list_each_file_of_the_three_checkpoints_in_the_zoo_format():
    assert not (ROOT / "models" / "large_files.yml").exists()  # the zoo reads the bundle root only
    entries = yaml.safe_load((ROOT / "large_files.yml").read_text())["large_files"]
    assert all(set(e) == {"path", "url", "hash_val", "hash_type"} for e in entries)
    for entry in entries:  # a URL to the file itself, saved under the bundle's models/
        assert entry["url"].startswith("https://") and entry["url"].rsplit("/", 1)[1] == entry["path"].rsplit("/", 1)[1]
        assert entry["path"].startswith("models/") and ".." not in entry["path"]
        assert len(entry["hash_val"]) == HASH_LENGTHS.get(entry["hash_type"], 0), entry["path"]
    paths = {e["path"] for e in entries}
    llava, clip = "models/llava-med-v1.5-mistral-7b/", "models/clip-vit-large-patch14-336/"
    needed = {llava + "config.json", llava + "model.safetensors.index.json", llava + "tokenizer.model"}
    needed |= {f"{llava}model-0000{i}-of-00004.safetensors" for i in range(1, 5)}
    needed |= {clip + "config.json", clip + "pytorch_model.bin", "models/medsam_vit_b.pth"}
    assert needed <= paths, needed - paths  # what networks.convert and medsam_path read


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


ZOO_SECTIONS = (
    "Model Overview", "Data", "Training configuration", "Input / Output", "Performance", "MONAI Bundle Commands",
    "References", "License",
)  # fmt: skip
"""The sections of a model-zoo bundle's docs/README.md, in order (other sections may sit between them)."""


def test_docs_readme_follows_the_model_zoo_template_and_says_export_is_unsupported():
    text = (ROOT / "docs" / "README.md").read_text()
    headings = re.findall(r"^## (.+)$", text, re.MULTILINE)
    assert [h for h in headings if h in ZOO_SECTIONS] == list(ZOO_SECTIONS)
    assert any("TorchScript" in h and "TensorRT" in h and "not supported" in h for h in headings)


def test_data_licences_name_every_external_source():
    text = (ROOT / "docs" / "data_license.txt").read_text()
    for source in ("SA-Med2D-20M", "MLMR-SD", "LLaVA-Med", "Mistral-7B-Instruct-v0.2", "CLIP", "MedSAM"):
        assert source in text, source
