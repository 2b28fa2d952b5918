"""Configs compose by list on ``configs/model.json``, hang every path on ``bundle_root`` and keep the shared checks.

Every config list the README and docs show is read here from another working directory, as
``--bundle_root`` runs do: each file exists, the model comes first, every ``@`` reference resolves
in the merged config, and every workflow keeps the model's ``initialize`` (one-line errors, seeding).
The workflows' error paths run for real, from a temporary directory.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys

import pytest
from monai.bundle import ConfigParser
from monai.bundle.reference_resolver import ReferenceResolver

from tests.helpers.configs import CONFIGS, ROOT, WORKFLOWS, config_files, config_list

DOCUMENTS = ("README.md", "docs/README.md", "docs/demo.md")
CONFIG_OPTION = re.compile(r"--config(?:_file)?\s+\"?(\[[^\]]+\]|configs/[\w.]+\.json)")
"""A ``--config_file`` / ``--config`` value in a document: a list or one file under ``configs/``."""
ELSEWHERE = "/path/to/bundle/"
"""How the documents spell the bundle's folder in commands run from another directory."""
PATH_STARTS = ("configs/", "models/", "demo/", "data/", "runs/", "outputs/")


def documented_config_lists() -> list[tuple[str, list[str]]]:
    """(document, config files) of every command in the README and docs that names configs."""
    found = []
    for document in DOCUMENTS:
        text = (ROOT / document).read_text(encoding="utf-8")
        for value in CONFIG_OPTION.findall(text):
            files = ast.literal_eval(value) if value.startswith("[") else [value]
            found.append((document, [name.removeprefix(ELSEWHERE) for name in files]))
    return found


def merged(files: list[str]) -> ConfigParser:
    parser = ConfigParser()
    parser.read_config(files)
    parser["bundle_root"] = str(ROOT)
    return parser


def strings(config, at: str = ""):
    """(id, value) of every string in a config, ids joined with ``#``."""
    if isinstance(config, dict):
        for key, value in config.items():
            yield from strings(value, f"{at}#{key}" if at else str(key))
    elif isinstance(config, list):
        for index, value in enumerate(config):
            yield from strings(value, f"{at}#{index}")
    elif isinstance(config, str):
        yield at, config


def unresolved(parser: ConfigParser) -> list[str]:
    """``@`` references of the merged config that name no id in it."""
    return sorted(
        f"{at} -> @{ref}"
        for at, value in strings(parser.get())
        for ref in ReferenceResolver.match_refs_pattern(value)
        if ref not in parser
    )


def test_the_documents_show_config_lists():
    lists = documented_config_lists()
    assert len(lists) >= 15 and {"README.md", "docs/demo.md"} <= {document for document, _ in lists}


@pytest.mark.parametrize("document, files", documented_config_lists(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_documented_config_list_composes_on_the_model_from_any_directory(document, files, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert files[0] == "configs/model.json", f"{document}: {files} does not start with the model"
    missing = [name for name in files if not (ROOT / name).is_file()]
    assert not missing, f"{document}: {missing}"
    parser = merged([str(ROOT / name) for name in files])
    assert unresolved(parser) == [], document
    assert parser.get_parsed_content("bundle_root") == str(ROOT)


def test_no_config_uses_a_macro_or_a_path_outside_bundle_root():
    for path in sorted(CONFIGS.glob("*.json")):
        for at, value in strings(json.loads(path.read_text())):
            assert not value.startswith("%"), f"{path.name}: {at} is a cwd-relative macro"
            text = value.lstrip("$").strip("'\"")
            assert not text.startswith(PATH_STARTS) or "@bundle_root" in value, f"{path.name}: {at} = {value}"


@pytest.mark.parametrize("name", list(WORKFLOWS))
def test_every_workflow_keeps_the_model_initialize_and_its_pre_flight_checks(name):
    model = json.loads((CONFIGS / "model.json").read_text())
    parser = merged(config_files(*WORKFLOWS[name]))
    assert parser["initialize"] == model["initialize"]  # one-line errors, process group, seeding
    assert parser["finalize"] == model["finalize"]
    assert unresolved(parser) == []
    if "inference.json" in WORKFLOWS[name]:
        assert parser["run"][0] == "$@preflight"
        assert any("check_query_fits" in check for check in parser["preflight"])


def test_the_input_sizes_of_training_are_the_models_own():
    parser = merged(config_files("train.json"))
    collate = parser.get_parsed_content("train#collate_fn")
    network = parser.get_parsed_content("network_def")
    assert collate.sizes == network.input_sizes


def command(files: list[str], *args: str, torchrun: bool = False) -> list[str]:
    launcher = (
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "1"] if torchrun else [sys.executable]
    )
    return [
        *launcher,
        "-m",
        "monai.bundle",
        "run",
        "--config_file",
        config_list(files),
        "--bundle_root",
        str(ROOT),
        *args,
    ]


def run_elsewhere(argv: list[str], cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(argv, cwd=cwd, capture_output=True, encoding="utf-8", errors="replace", timeout=600, env=env)


ERROR_PATHS = {
    "inference": (["inference.json"], "image"),
    "evaluate": (["train.json", "evaluate.json"], "dataset"),
    "fine-tune": (["train.json", "finetune.json"], "dataset"),
}


@pytest.mark.parametrize("name", list(ERROR_PATHS))
def test_a_workflow_run_from_elsewhere_names_a_missing_input_in_one_line(name, tmp_path):
    files, kind = ERROR_PATHS[name]
    missing = tmp_path / "missing"
    args = ["--image", str(missing / "ct.nii.gz"), "--query", "Where is the liver?"] if kind == "image" else []
    if kind == "dataset":
        args = ["--dataset_dir", str(missing)]
    result = run_elsewhere(command(config_files(*files), *args, "--output_dir", str(tmp_path / "out")), tmp_path)
    assert result.returncode == 1, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and str(missing) in last, last
    assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["multi-GPU inference", "multi-GPU train"])
def test_a_torchrun_workflow_names_a_missing_input_in_one_line(name, tmp_path):
    missing = tmp_path / "missing"
    if name == "multi-GPU inference":
        args = ["--image", str(missing / "ct.nii.gz"), "--query", "Where is the liver?"]
    else:
        args = ["--dataset_dir", str(missing)]
    argv = command(config_files(*WORKFLOWS[name]), *args, "--output_dir", str(tmp_path / "out"), torchrun=True)
    result = run_elsewhere(argv, tmp_path)
    assert result.returncode != 0
    # torchrun prefixes each rank's lines with "[rankN]: " and adds its own failure report after them
    errors = [line for line in result.stderr.splitlines() if re.match(r"(\[rank\d+\]: )?error: ", line)]
    assert len(errors) == 1 and str(missing) in errors[0], result.stderr[-3000:]
    assert "Failed to evaluate" not in result.stderr  # the rank printed no MONAI traceback
    assert not (tmp_path / "out").exists()
