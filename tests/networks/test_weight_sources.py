"""Random weights only on request: a model whose weights would be random is refused before it is built."""

from __future__ import annotations

import pytest

from common.errors import ConfigError, WeightsError
from networks import save_checkpoint
from networks.report import main as report_main
from networks.weight_sources import DEMO_COMMAND, check_weight_sources, missing_weight_settings
from tests.helpers.configs import ROOT, config_files, config_list
from tests.helpers.processes import run_measured
from tests.helpers.tiny import TINY, build_tiny

DEMO_CHECKPOINT = ROOT / "models" / "demo"  # holds the whole state (trained from random initialisation)
VOLUME = ROOT / "demo" / "imagesTr" / "phantom_000.nii.gz"
ALL_WEIGHTS = ["llava_path", "medsam_path", "checkpoint"]
FULL_SIZE = config_list(config_files("inference.json", preset=None))
"""The model at its real size with the inference workflow."""


@pytest.fixture(scope="module")
def heads_only(tmp_path_factory):
    """A checkpoint of the trainable set only (``include: trainable``), as training the paper's set writes."""
    model, tokenizer = build_tiny(seed=2)
    return save_checkpoint(model, tokenizer, tmp_path_factory.mktemp("ckpt") / "heads", include="trainable")


def test_inference_needs_every_weight_unless_a_checkpoint_holds_the_whole_model(heads_only):
    assert missing_weight_settings(None, None, None, "paper", training=False) == ALL_WEIGHTS
    assert missing_weight_settings("/w/llava", "/w/medsam.pth", None, "paper", training=False) == ["checkpoint"]
    assert missing_weight_settings(None, None, heads_only, "paper", training=False) == ["llava_path", "medsam_path"]
    assert missing_weight_settings("/w/llava", "/w/medsam.pth", heads_only, "paper", training=False) == []
    assert missing_weight_settings(None, None, DEMO_CHECKPOINT, "all", training=False) == []
    assert missing_weight_settings(None, None, None, "all", training=False) == ALL_WEIGHTS


def test_training_needs_the_frozen_weights_only():
    assert missing_weight_settings(None, None, None, "paper", training=True) == ["llava_path", "medsam_path"]
    assert missing_weight_settings("/w/llava", "/w/medsam.pth", None, "paper", training=True) == []
    assert missing_weight_settings(None, None, None, "all", training=True) == []  # every parameter trains


def test_random_weights_are_allowed_only_when_asked_for(tmp_path):
    with pytest.raises(ConfigError, match=r"config 'llava_path', 'medsam_path', 'checkpoint' not set.*demo"):
        check_weight_sources(None, None, None)
    check_weight_sources(None, None, None, random_weights=True)
    with pytest.raises(WeightsError, match=r"checkpoint not found: .*nowhere \(config 'checkpoint'\)"):
        check_weight_sources("/w/llava", "/w/medsam.pth", tmp_path / "nowhere")  # before anything is built


def test_the_tiny_config_asks_for_random_weights_and_builds():
    model, _ = build_tiny()
    assert sum(p.numel() for p in model.parameters()) > 0
    with pytest.raises(ConfigError, match="random weights"):
        build_tiny(random_weights=False)


@pytest.mark.slow
def test_the_command_line_refuses_a_model_without_weights_in_one_line_without_building_it(tmp_path):
    out = tmp_path / "out"
    result = run_measured(
        [
            "-m", "monai.bundle", "run", "--config_file", FULL_SIZE,
            "--image", str(VOLUME), "--query", "Where is the liver?", "--output_dir", str(out),
        ]
    )  # fmt: skip
    last = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert last.startswith("error: config 'llava_path', 'medsam_path', 'checkpoint' not set") and DEMO_COMMAND in last
    assert result.peak_rss_gib < 3, "a 7.6 B model takes 28 GiB: it must not have been built"
    assert not out.exists()


def test_the_report_checks_weights_as_training_would_so_no_checkpoint_is_needed_yet(capsys):
    status = report_main(["--config_file", str(TINY), "--random_weights", "false"])
    message = capsys.readouterr().err.strip()
    assert status == 1 and message.startswith("error: config 'llava_path', 'medsam_path' not set")
