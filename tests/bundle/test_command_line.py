"""An unknown config id on the ``monai.bundle run`` command line stops every workflow with one line naming it and
the closest known ids; the configs' own ids, MONAI's run arguments and the standard bundle ids stay accepted."""

from __future__ import annotations

import importlib.util
import re
import shlex
import subprocess
import sys

import pytest

from bundle.command_line import check_command_line_ids, check_ids, read_configs
from common.errors import ConfigError
from tests.helpers.configs import ROOT, WORKFLOWS, config_files, config_list

BUNDLE_MAIN = importlib.util.find_spec("monai.bundle.__main__").origin


def bundle_argv(*args: str) -> list[str]:
    """What ``sys.argv`` holds inside ``python -m monai.bundle run ARGS``."""
    return [BUNDLE_MAIN, "run", *args]


@pytest.mark.parametrize("name", list(WORKFLOWS))
def test_every_workflow_refuses_a_typo_with_the_id_it_meant(name):
    files = config_list(config_files(*WORKFLOWS[name]))
    with pytest.raises(ConfigError, match=r"config key 'batchsize' is not known \(did you mean 'batch_size'"):
        check_command_line_ids(bundle_argv("--config_file", files, "--batchsize", "4"))
    check_command_line_ids(bundle_argv("--config_file", files, "--batch_size", "4", "--debug", "true"))


def test_known_ids_of_every_kind_are_accepted():
    config = read_configs(config_files("train.json", "evaluate.json"))
    check_ids(
        [
            "learning_rate",  # the configs' own
            "validate#dataset#split",  # nested, as MONAI writes it
            "validate::dataset::split",  # nested, as shells need it
            "train#handlers#1#interval",  # inside a list
            "validate#evaluator#_disabled_",  # a reserved key of a component
            "logging_file",  # MONAI's run arguments
            "train::trainer::max_epochs",  # a standard bundle property id
        ],
        config,
    )


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("train#handler#1", r"did you mean 'train#handlers#1'"),
        ("xyzzy", r"^config key 'xyzzy' is not known to these configs"),
        ("learning-rate-typo", r"config key 'learning-rate-typo'"),
    ],
)
def test_the_message_names_the_id_and_only_close_ones(given, message):
    with pytest.raises(ConfigError, match=message):
        check_ids([given], read_configs(config_files("train.json")))


def test_outside_monai_bundle_run_nothing_is_checked():
    check_command_line_ids(["pytest", "run", "--config_file", "configs/model.json", "--batchsize", "4"])


def readme_bundle_commands() -> list[list[str]]:
    """The arguments (after ``run``) of every ``monai.bundle run`` command in the README's code blocks."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            if "monai.bundle run" in line:
                words = shlex.split(line.split("monai.bundle run", 1)[1].split("&&")[0])
                commands.append(words)
    return commands


def test_every_readme_command_passes_the_check():
    commands = readme_bundle_commands()
    assert len(commands) >= 5
    for words in commands:
        # the configs as the check reads them, whatever the working directory
        words = [w.replace("/path/to/bundle/", "").replace("'configs/", f"'{ROOT}/configs/") for w in words]
        check_command_line_ids(bundle_argv(*words))


@pytest.mark.slow
def test_a_typo_on_the_command_line_stops_the_run_in_one_line(tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "monai.bundle", "run", "--config_file", config_list(config_files("inference.json")),
               "--image", str(tmp_path / "none.nii.gz"), "--output_dir", str(out), "--batchsize", "4"]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, encoding="utf-8", errors="replace", timeout=300)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "error: config key 'batchsize' is not known (did you mean 'batch_size'?): nothing was run"
    )
    assert "Traceback" not in done.stderr and not out.exists()
