"""Hostile and odd inputs through the inference workflow (``configs/inference.json``).

Bad inputs stop the run with one MediSee error naming the file or config key and leave no output
folder behind; they run in-process through ``monai.bundle.run`` (what the command line calls), and
two of them also through the command line itself, for the one-line message and the exit status.
Valid but odd inputs (one slice, NaN/Inf voxels, a constant volume, a non-ASCII question) run and
say what they did.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import monai.bundle
import nibabel as nib
import numpy as np
import pytest

from bundle.inference.errors import report_errors_briefly
from common.errors import MediSeeError, root_cause
from networks import save_checkpoint
from tests.helpers.configs import ROOT
from tests.helpers.tiny import TINY, build_tiny
from tests.helpers.volumes import write_nifti

pytestmark = pytest.mark.filterwarnings("ignore:builtin type:DeprecationWarning")  # ITK's SWIG bindings

QUERY = "Where is the liver?"
SHAPE = (32, 24, 6)
AFFINE = np.diag([0.7, 0.9, 3.0, 1.0])  # anisotropic voxels
LONG_QUESTION_CHARS = 10_000
NON_ASCII_QUERY = "Où est le foie ? 肝臓はどこ？ Где печень?"


def write(path: Path, array: np.ndarray, affine: np.ndarray = AFFINE) -> Path:
    return write_nifti(path, array, affine)


def ct(shape=SHAPE, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(-200, 200, size=shape).astype(np.float32)


def run_bundle(**overrides) -> None:
    monai.bundle.run(config_file=TINY, logging_file=False, max_new_tokens=2, **overrides)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """One file per hostile case (and a good volume for the cases about other settings)."""
    folder = tmp_path_factory.mktemp("hostile")
    good = write(folder / "good.nii.gz", ct())
    data = good.read_bytes()
    text = folder / "text.nii.gz"
    text.write_text("patient notes, not an image\n")
    truncated = folder / "truncated.nii.gz"
    truncated.write_bytes(data[: int(len(data) * 0.9)])  # header intact, voxel data cut off
    empty = folder / "empty.nii.gz"
    empty.write_bytes(b"")
    return {
        "good": good,
        "text": text,
        "truncated": truncated,
        "empty": empty,
        "2d": write(folder / "flat.nii.gz", ct((32, 24))),
        "4d": write(folder / "series.nii.gz", ct((*SHAPE, 3))),
    }


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    """A corrupt copy of a tiny checkpoint, and one of another architecture."""
    folder = tmp_path_factory.mktemp("checkpoints")
    model, tokenizer = build_tiny(seed=3)
    corrupt = save_checkpoint(model, tokenizer, folder / "corrupt")
    (corrupt / "medisee.safetensors").write_bytes(b"\x00" * 64)
    other, other_tokenizer = build_tiny(seed=3, **{"medisee_config#router_hidden_size": 8})
    return {"corrupt": corrupt, "mismatched": save_checkpoint(other, other_tokenizer, folder / "mismatched")}


def refused(out: Path, **overrides) -> str:
    """The message of the MediSee error the run stops with; checks that nothing was written."""
    with pytest.raises(Exception) as raised:
        run_bundle(output_dir=str(out), **overrides)
    cause = root_cause(raised.value)
    assert isinstance(cause, MediSeeError), raised.value
    assert not out.exists(), "a refused run leaves no output folder"
    assert "\n" not in str(cause), "one line"
    return str(cause)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing", "image not found: {path}"),
        ("text", "cannot read image {path} .*not a valid gzip file"),
        ("truncated", "cannot read image {path} .*truncated"),
        ("empty", "image {path} is an empty file"),
        ("2d", r"image {path} is a 2D image \(it has shape \(32, 24\)\); a 3D volume"),
        ("4d", "image {path} is 4D with 3 volumes"),
    ],
)
def test_bad_image_files_are_refused_naming_the_file(files, tmp_path, case, expected):
    path = files.get(case, tmp_path / "missing.nii.gz")
    message = refused(tmp_path / "out", image=str(path), query=QUERY)
    assert re.search(expected.format(path=re.escape(str(path))), message), message


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", "config 'query' is empty"),
        ("   \t ", "config 'query' is empty"),
        (
            "x" * LONG_QUESTION_CHARS,
            "config 'query': the question is too long: 10000 characters.*max_position_embeddings",
        ),
    ],
    ids=["empty", "whitespace", "10000 characters"],
)
def test_unusable_questions_are_refused_naming_the_query(files, tmp_path, query, expected):
    message = refused(tmp_path / "out", image=str(files["good"]), query=query)
    assert re.search(expected, message), message


def test_the_question_limit_comes_from_the_model_positions(files, tmp_path):
    # the tiny model takes 1024 positions; with 4096 the same question fits
    message = refused(tmp_path / "out", image=str(files["good"]), query="x" * 2000)
    assert "the model takes 1024" in message
    run_bundle(
        image=str(files["good"]), query="x" * 2000, output_dir=str(tmp_path / "ok"), generate_answer=False,
        **{"text_config#max_position_embeddings": 4096},
    )  # fmt: skip
    assert (tmp_path / "ok" / "good_mask.nii.gz").is_file()


def test_an_unwritable_output_folder_is_refused_before_any_model_work(files, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    message = refused(blocker / "out", image=str(files["good"]), query=QUERY)
    assert f"cannot write to output folder {blocker / 'out'} (config 'output_dir')" in message


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("missing", r"MediSee checkpoint not found: .* \(config 'checkpoint'\)"),
        ("corrupt", "cannot read MediSee checkpoint"),
        ("mismatched", "mismatched shapes: .*router"),
    ],
)
def test_bad_checkpoints_are_refused_naming_them(files, checkpoints, tmp_path, setting, expected):
    checkpoint = checkpoints.get(setting, tmp_path / "no_checkpoint")
    message = refused(tmp_path / "out", image=str(files["good"]), query=QUERY, checkpoint=str(checkpoint))
    assert str(checkpoint) in message and re.search(expected, message), message


def test_a_missing_medsam_file_is_refused_naming_the_setting(files, tmp_path):
    message = refused(tmp_path / "out", image=str(files["good"]), query=QUERY, medsam_path=str(tmp_path / "sam.pth"))
    assert "medsam_path" in message and str(tmp_path / "sam.pth") in message


@pytest.fixture(scope="module")
def odd_run(tmp_path_factory):
    """One run over a folder of valid but odd volumes, asked a non-ASCII question; (outputs, log, stdout)."""
    folder = tmp_path_factory.mktemp("odd")
    with_nan = ct(seed=1)
    with_nan[3, 4, 2], with_nan[5, 6, 1], with_nan[0, 0, 0] = np.nan, np.inf, -np.inf
    write(folder / "one_slice.nii.gz", ct((32, 24, 1), seed=2))
    write(folder / "nan.nii.gz", with_nan)
    write(folder / "constant.nii.gz", np.full(SHAPE, 50.0, dtype=np.float32))
    write(folder / "singleton_4d.nii.gz", ct((*SHAPE, 1), seed=3))
    out = tmp_path_factory.mktemp("odd_out")
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger().addHandler(handler)
    try:
        run_bundle(image=str(folder), query=NON_ASCII_QUERY, output_dir=str(out))
    finally:
        logging.getLogger().removeHandler(handler)
    return out, [r.getMessage() for r in records if r.levelno >= logging.WARNING]


def result(out: Path, name: str) -> dict:
    return json.loads((out / f"{name}_result.json").read_text(encoding="utf-8"))


def test_a_one_slice_volume_runs(odd_run):
    out, _ = odd_run
    assert nib.load(out / "one_slice_mask.nii.gz").shape == (32, 24, 1)


def test_nan_and_inf_voxels_are_repaired_with_a_warning_naming_the_file(odd_run):
    out, warnings = odd_run
    assert nib.load(out / "nan_mask.nii.gz").shape == SHAPE
    assert any("nan.nii.gz: 3 of" in w and "NaN or infinite" in w for w in warnings), warnings


def test_a_constant_volume_runs_to_an_empty_mask_and_says_so(odd_run):
    out, warnings = odd_run
    assert not np.asanyarray(nib.load(out / "constant_mask.nii.gz").dataobj).any()
    found = result(out, "constant")
    assert found["slices"] == [] and found["box_3d"] is None and found["answer"] is None
    assert any("volume constant is constant" in w and "nothing to segment" in w for w in warnings), warnings


def test_a_singleton_fourth_axis_is_read_as_one_volume(odd_run):
    out, _ = odd_run
    assert nib.load(out / "singleton_4d_mask.nii.gz").shape == SHAPE


def test_a_non_ascii_question_is_asked_and_recorded_verbatim(odd_run):
    out, _ = odd_run
    assert result(out, "nan")["query"] == NON_ASCII_QUERY and isinstance(result(out, "nan")["answer"], str)


def test_debug_keeps_the_tracebacks(monkeypatch):
    sentinel = object()
    monkeypatch.setattr(sys, "excepthook", sentinel)
    report_errors_briefly(debug="true")
    assert sys.excepthook is sentinel
    report_errors_briefly()
    assert sys.excepthook is not sentinel


def _cli(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "monai.bundle", "run", "--config_file", str(TINY), *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, encoding="utf-8", errors="replace", timeout=300)


@pytest.mark.parametrize("case", ["truncated", "long question"])
def test_command_line_errors_after_the_model_is_built_are_one_line(files, tmp_path, case):
    image, query = (files["truncated"], QUERY) if case == "truncated" else (files["good"], "x" * LONG_QUESTION_CHARS)
    out = tmp_path / "out"
    process = _cli("--image", str(image), "--query", query, "--output_dir", str(out))
    assert process.returncode == 1
    last = process.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and ("truncated" in last if case == "truncated" else "too long" in last)
    assert "Traceback" not in process.stderr and not out.exists()
