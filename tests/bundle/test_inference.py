"""The inference workflow end to end through ``monai.bundle``: phantom volumes in, masks / results / overlays out.

Every run uses the tiny model with random weights (seeded by the workflow), so the masks are
arbitrary but reproducible; geometry is checked exactly with a network whose masks follow a
known pattern.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.bundle import ConfigWorkflow
from PIL import Image

from common.errors import DataError, root_cause
from tests.helpers.configs import ROOT
from tests.helpers.inference import QUERY, SHAPE, mask_array, outputs_of, run_bundle, save_phantom
from tests.helpers.tiny import TINY, build_tiny
from tests.helpers.volumes import ORIGIN, SPACING, label_volume, write_dicom_series

pytestmark = pytest.mark.filterwarnings("ignore:builtin type:DeprecationWarning")  # ITK's SWIG bindings

FEW_TOKENS = 3
RESULT_KEYS = {
    "image",
    "query",
    "answer",
    "answer_raw",
    "answer_slice",
    "slice_axis",
    "coordinates",
    "found",
    "slices",
    "box_3d",
    "volume_ml",
    "presence",
    "weights",
}
DICOM_SHAPE = (24, 20, 12)
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])
BLANK_FILE_SLICES = (0, 1, 2)
"""File z indices blanked to constant air in the geometry test (skipped with ``skip_empty_slices``)."""


@pytest.fixture(scope="module")
def volumes(tmp_path_factory) -> Path:
    """A folder with two phantoms: ``ph0`` (RAI) and ``ph1`` (oblique)."""
    folder = tmp_path_factory.mktemp("volumes")
    for index in range(2):
        save_phantom(folder / f"ph{index}.nii.gz", index)
    assert nib.aff2axcodes(nib.load(folder / "ph0.nii.gz").affine) != ("R", "A", "S")
    return folder


@pytest.fixture(scope="module")
def single_run(volumes, tmp_path_factory) -> Path:
    """One oblique volume, one slice per forward pass, with a (short) generated answer."""
    out = tmp_path_factory.mktemp("single")
    run_bundle(
        image=str(volumes / "ph1.nii.gz"), query=QUERY, output_dir=str(out), batch_size=1, max_new_tokens=FEW_TOKENS
    )
    return out


@pytest.fixture(scope="module")
def folder_run(volumes, tmp_path_factory) -> Path:
    """The whole folder, four slices per forward pass, no answer (``false`` as the command line gives it)."""
    out = tmp_path_factory.mktemp("folder")
    run_bundle(image=str(volumes), query=QUERY, output_dir=str(out), batch_size=4, generate_answer="false")
    return out


def test_outputs_keep_the_geometry_of_a_non_ras_input(volumes, single_run):
    source, mask = nib.load(volumes / "ph1.nii.gz"), nib.load(outputs_of(single_run, "ph1")["mask"])
    assert mask.shape == source.shape
    np.testing.assert_array_equal(mask.affine, source.affine)
    assert mask.get_data_dtype() == np.uint8 and set(np.unique(np.asanyarray(mask.dataobj))) <= {0, 1}
    with Image.open(outputs_of(single_run, "ph1")["overlay"]) as overlay:
        assert overlay.format == "PNG" and min(overlay.size) > 0


def test_result_json_has_the_documented_keys_and_types(single_run):
    result = json.loads(outputs_of(single_run, "ph1")["result"].read_text())
    assert set(result) == RESULT_KEYS
    assert result["query"] == QUERY and isinstance(result["answer"], str) and isinstance(result["answer_slice"], int)
    assert isinstance(result["answer_raw"], str) and "[SEG]" not in result["answer"]
    assert result["weights"] == {"llava_path": None, "medsam_path": None, "checkpoint": None}
    assert isinstance(result["volume_ml"], float) and result["slices"], "the random model marks something"
    for entry in result["slices"]:
        assert set(entry) == {"index", "box_voxel", "box_world", "score", "presence"}
        assert isinstance(entry["index"], int) and 0.0 <= entry["score"] <= 1.0
        assert entry["presence"] >= 0.5, "a slice keeps its mask from the presence threshold"
        assert np.asarray(entry["box_voxel"]).shape == (2, 3) and np.asarray(entry["box_world"]).shape == (2, 3)
    assert result["found"] is True
    assert len(result["presence"]) == SHAPE[2] and all(0.0 <= p["score"] <= 1.0 for p in result["presence"])
    assert set(result["box_3d"]) == {"voxel", "world"} and np.asarray(result["box_3d"]["voxel"]).shape == (2, 3)


def test_a_folder_gives_one_result_set_per_volume(folder_run):
    for name in ("ph0", "ph1"):
        files = outputs_of(folder_run, name)
        assert all(path.is_file() for path in files.values()), name
        result = json.loads(files["result"].read_text())
        assert result["answer"] is None and result["answer_slice"] is None
    assert not list(folder_run.glob(".*tmp*")), "no temporary files are left behind"


def test_batch_size_changes_nothing_in_the_mask(single_run, folder_run):
    np.testing.assert_array_equal(mask_array(single_run, "ph1"), mask_array(folder_run, "ph1"))


def test_existing_outputs_are_refused_unless_overwrite(volumes, folder_run):
    mask = outputs_of(folder_run, "ph0")["mask"]
    before = {path: path.read_bytes() for path in folder_run.iterdir()}
    with pytest.raises(Exception) as raised:
        run_bundle(image=str(volumes), query=QUERY, output_dir=str(folder_run))
    error = root_cause(raised.value)
    assert isinstance(error, DataError) and str(mask) in str(error)
    assert {path: path.read_bytes() for path in folder_run.iterdir()} == before


def test_overwrite_replaces_outputs(volumes, single_run):
    result = outputs_of(single_run, "ph1")["result"]
    run_bundle(
        image=str(volumes / "ph1.nii.gz"), query="Where is the liver?", output_dir=str(single_run),
        overwrite="true", generate_answer=False,
    )  # fmt: skip
    assert json.loads(result.read_text())["query"] == "Where is the liver?"


def test_inference_properties_are_complete_without_inputs():
    workflow = ConfigWorkflow(config_file=TINY, workflow_type="infer", logging_file=False)
    workflow.initialize()
    assert workflow.check_properties() in (None, [])
    with pytest.raises(Exception) as raised:
        workflow.run()
    assert "config 'image' is not set" in str(root_cause(raised.value))


class PatternMediSee(torch.nn.Module):
    """The tiny MediSee with its masks replaced by a known pattern: rows < H/2 and columns < W/3 of each slice."""

    def __init__(self) -> None:
        super().__init__()
        self.model, _ = build_tiny()

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:  # everything but forward is the wrapped model's (llava, medsam, config, ...)
            return getattr(self.model, name)

    @staticmethod
    def pattern(height: int, width: int) -> torch.Tensor:
        rows = torch.arange(height)[:, None] < height // 2
        columns = torch.arange(width)[None, :] < width // 3
        return (rows & columns).float() * 2.0 - 1.0

    def forward(self, **inputs):
        out = self.model(**inputs)
        out.mask_logits = [self.pattern(h, w) for h, w in inputs["original_sizes"].tolist()]
        return out


def expected_pattern_mask(path: Path) -> np.ndarray:
    """The pattern mask on the file's grid, found with nibabel alone (no MONAI): RAS slices, skipped blank slices."""
    image = nib.load(path)
    ornt = nib.io_orientation(image.affine)
    ras = nib.orientations.apply_orientation(np.asanyarray(image.dataobj), ornt)
    expected = np.zeros(ras.shape, dtype=np.uint8)
    expected[: ras.shape[0] // 2, : ras.shape[1] // 3, :] = 1
    blank = [k for k in range(ras.shape[2]) if np.ptp(ras[..., k]) == 0]
    expected[..., blank] = 0
    back = nib.orientations.ornt_transform(nib.orientations.axcodes2ornt("RAS"), ornt)
    return nib.orientations.apply_orientation(expected, back)


@pytest.mark.parametrize("index", [0, 1], ids=["RAI", "oblique"])
def test_masks_land_on_the_voxels_they_came_from(index, tmp_path):
    source = save_phantom(tmp_path / "blank.nii.gz", index, blank=BLANK_FILE_SLICES)
    out = tmp_path / "out"
    run_bundle(
        image=str(source), query=QUERY, output_dir=str(out), network=PatternMediSee(),
        skip_empty_slices=True, generate_answer=False,
    )  # fmt: skip
    expected = expected_pattern_mask(source)
    mask = nib.load(outputs_of(out, "blank")["mask"])
    np.testing.assert_array_equal(np.asanyarray(mask.dataobj), expected)
    result = json.loads(outputs_of(out, "blank")["result"].read_text())
    voxel_ml = abs(np.linalg.det(mask.affine[:3, :3])) / 1000.0
    assert result["volume_ml"] == pytest.approx(expected.sum() * voxel_ml, rel=1e-6)
    found = np.argwhere(expected)
    np.testing.assert_allclose(result["box_3d"]["voxel"], [found.min(axis=0) - 0.5, found.max(axis=0) + 0.5])
    for entry in result["slices"]:
        normal = np.flatnonzero(np.ptp(entry["box_voxel"], axis=0) == 0)  # the file axis the slice cuts across
        assert len(normal) == 1 and np.take(expected, int(entry["box_voxel"][0][normal[0]]), axis=normal[0]).any()
    assert len(result["slices"]) == SHAPE[2] - len(BLANK_FILE_SLICES)


def test_a_dicom_series_folder_is_one_volume_named_after_it(tmp_path):
    series = write_dicom_series(tmp_path / "series_a", label_volume(shape=DICOM_SHAPE))
    run_bundle(image=str(series), query=QUERY, output_dir=str(tmp_path / "out"), generate_answer=False)
    mask = nib.load(outputs_of(tmp_path / "out", "series_a")["mask"])
    assert mask.shape == DICOM_SHAPE
    # the series has identity directions in DICOM's LPS frame: RAS flips x and y
    np.testing.assert_allclose(mask.affine[:3, :3], LPS_TO_RAS @ np.diag(SPACING), atol=1e-5)
    np.testing.assert_allclose(mask.affine[:3, 3], LPS_TO_RAS @ np.asarray(ORIGIN), atol=1e-4)


def _cli(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "monai.bundle", "run", "--config_file", str(TINY), *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, encoding="utf-8", errors="replace", timeout=300)


def test_command_line_run_prints_a_summary(volumes, tmp_path):
    out = tmp_path / "out"
    image = str(volumes / "ph0.nii.gz")
    result = _cli("--image", image, "--query", QUERY, "--output_dir", str(out), "--max_new_tokens", str(FEW_TOKENS))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "MediSee inference: 1 volume(s)" in result.stdout and str(outputs_of(out, "ph0")["mask"]) in result.stdout
    assert all(path.is_file() for path in outputs_of(out, "ph0").values())


def test_command_line_names_a_missing_image_in_one_line(tmp_path):
    missing, out = tmp_path / "nowhere.nii.gz", tmp_path / "out"
    result = _cli("--image", str(missing), "--query", QUERY, "--output_dir", str(out))
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == f"error: image not found: {missing}"
    assert "Traceback" not in result.stderr and not out.exists()
