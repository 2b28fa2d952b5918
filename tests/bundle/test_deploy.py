"""The MONAI Deploy app (``python -m bundle.deploy``) on a phantom NIfTI file and a small DICOM series.

The app runs as users run it, in a subprocess (the SDK configures logging for its whole
process), with the tiny model: masks are arbitrary but must sit on the input's grid. The
DICOM series is written here with pydicom: CT, axial LPS, pixels that are not square and files
listed out of slice order, so a swapped spacing or an unsorted stack would show.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from bundle.deploy.settings import resolve_query
from bundle.phantoms import generate_phantom
from networks.errors import ConfigError, DataError
from tests.conftest import ROOT, TINY

NEEDS_DEPLOY_EXTRA = "needs the deploy extra: pip install -c constraints/cpu.txt -e '.[deploy]'"
pytest.importorskip("monai.deploy.core", reason=NEEDS_DEPLOY_EXTRA)
hd = pytest.importorskip("highdicom", reason=NEEDS_DEPLOY_EXTRA)
pydicom = pytest.importorskip("pydicom", reason=NEEDS_DEPLOY_EXTRA)

pytestmark = pytest.mark.filterwarnings("ignore:builtin type:DeprecationWarning")  # ITK's SWIG bindings

SEED = 5
SHAPE = (64, 64, 16)
QUERY = "Which organ here filters blood and makes urine?"
DICOM_SHAPE = (40, 32, 6)
"""Columns, rows, slices of the DICOM series."""
PIXEL_SPACING = (0.8, 1.1)
"""DICOM PixelSpacing: between rows, between columns (mm)."""
SLICE_STEP = 2.5
ORIGIN_LPS = (-20.0, 15.0, 40.0)
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])
SERIES_ATTRIBUTES = {
    "SOPClassUID": pydicom.uid.CTImageStorage,
    "Modality": "CT",
    "PatientName": "Phantom^5",
    "PatientID": "P5",
    "PatientSex": "O",
    "PatientBirthDate": "",
    "StudyDate": "20240101",
    "StudyTime": "120000",
    "StudyID": "1",
    "AccessionNumber": "",
    "ReferringPhysicianName": "",
    "SeriesNumber": 1,
    "Manufacturer": "tests",
    "ImageOrientationPatient": [1, 0, 0, 0, 1, 0],  # axial: rows run to the patient's left, columns posterior
    "PixelSpacing": list(PIXEL_SPACING),
    "SliceThickness": SLICE_STEP,
    "SamplesPerPixel": 1,
    "PhotometricInterpretation": "MONOCHROME2",
    "BitsAllocated": 16,
    "BitsStored": 16,
    "HighBit": 15,
    "PixelRepresentation": 1,  # signed: CT values in HU
    "RescaleIntercept": 0,
    "RescaleSlope": 1,
}
"""What every slice of the synthetic series shares besides its UIDs and size."""
DICOM_PREAMBLE = b"\0" * 128
HOLOSCAN_STACK_BYTES = 32 * 1024 * 1024
"""The stack holoscan asks for; below it, its warning precedes every run's output."""
RUN_TIMEOUT_S = 300


def _raise_stack_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_STACK)
    wanted = HOLOSCAN_STACK_BYTES if hard == resource.RLIM_INFINITY else min(HOLOSCAN_STACK_BYTES, hard)
    resource.setrlimit(resource.RLIMIT_STACK, (wanted, hard))


def run_app(*args: str, config: str | None = str(TINY)) -> subprocess.CompletedProcess:
    """``python -m bundle.deploy ARGS --config CONFIG`` from the bundle root (no ``--config`` for None)."""
    command = [sys.executable, "-m", "bundle.deploy", *args, *(["--config", config] if config else [])]
    return subprocess.run(
        command,
        cwd=ROOT,
        capture_output=True,
        encoding="utf-8",
        errors="replace",
        timeout=RUN_TIMEOUT_S,
        preexec_fn=_raise_stack_limit,
    )


def write_ct_series(folder: Path, volume: np.ndarray) -> list[pydicom.Dataset]:
    """Writes a (columns, rows, slices) int16 volume as an axial CT series; returns the datasets by slice."""
    folder.mkdir(parents=True)
    shared = {
        **SERIES_ATTRIBUTES,
        "StudyInstanceUID": pydicom.uid.generate_uid(),
        "SeriesInstanceUID": pydicom.uid.generate_uid(),
        "FrameOfReferenceUID": pydicom.uid.generate_uid(),
        "Columns": volume.shape[0],
        "Rows": volume.shape[1],
    }
    datasets = []
    for k in range(volume.shape[2]):
        meta = pydicom.dataset.FileMetaDataset()
        meta.MediaStorageSOPClassUID = pydicom.uid.CTImageStorage
        meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
        meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
        ds = pydicom.dataset.FileDataset("", {}, file_meta=meta, preamble=DICOM_PREAMBLE)
        ds.update(shared)
        ds.SOPInstanceUID, ds.InstanceNumber = meta.MediaStorageSOPInstanceUID, k + 1
        ds.ImagePositionPatient = [ORIGIN_LPS[0], ORIGIN_LPS[1], ORIGIN_LPS[2] + k * SLICE_STEP]
        ds.PixelData = np.ascontiguousarray(volume[..., k].T, dtype=np.int16).tobytes()  # rows x columns
        # names in reverse slice order: the SDK must sort by position, not by file
        ds.save_as(folder / f"im{volume.shape[2] - k:03d}.dcm", enforce_file_format=True)
        datasets.append(ds)
    return datasets


@pytest.fixture(scope="module")
def nifti_run(tmp_path_factory) -> tuple[Path, Path, subprocess.CompletedProcess]:
    """(input, output folder, process) of the app on a phantom (not RAS-aligned) NIfTI file."""
    folder = tmp_path_factory.mktemp("nifti")
    phantom = generate_phantom(SEED, 0, shape=SHAPE)
    source = folder / "ph0.nii.gz"
    nib.save(nib.Nifti1Image(phantom.image, phantom.affine), str(source))
    return source, folder / "out", run_app("-i", str(source), "-o", str(folder / "out"), "--query", QUERY)


@pytest.fixture(scope="module")
def dicom_run(tmp_path_factory) -> tuple[list[pydicom.Dataset], Path, subprocess.CompletedProcess]:
    """(source datasets by slice, output folder, process) of the app on a DICOM series folder ``ct``."""
    folder = tmp_path_factory.mktemp("dicom")
    volume = generate_phantom(SEED, 1, shape=DICOM_SHAPE).image
    datasets = write_ct_series(folder / "ct", volume)
    return datasets, folder / "out", run_app("-i", str(folder / "ct"), "-o", str(folder / "out"), "--query", QUERY)


def test_nifti_outputs_keep_the_input_geometry(nifti_run):
    source, out, process = nifti_run
    assert process.returncode == 0, process.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == ["ph0_mask.nii.gz", "ph0_result.json"]
    image, mask = nib.load(source), nib.load(out / "ph0_mask.nii.gz")
    assert mask.shape == image.shape and nib.aff2axcodes(image.affine) != ("R", "A", "S")
    np.testing.assert_array_equal(mask.affine, image.affine)
    assert mask.get_data_dtype() == np.uint8 and set(np.unique(np.asanyarray(mask.dataobj))) <= {0, 1}
    result = json.loads((out / "ph0_result.json").read_text())
    assert result["query"] == QUERY and result["image"] == str(source) and isinstance(result["answer"], str)
    assert "ph0: " in process.stdout, "the run ends with the bundle's summary"


def test_dicom_mask_has_the_series_geometry(dicom_run):
    _, out, process = dicom_run
    assert process.returncode == 0, process.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == ["ct_mask.nii.gz", "ct_result.json", "ct_seg.dcm"]
    mask = nib.load(out / "ct_mask.nii.gz")
    assert mask.shape == DICOM_SHAPE
    # voxel axes (column, row, slice): x steps by the column spacing, y by the row spacing
    lps_steps = np.diag([PIXEL_SPACING[1], PIXEL_SPACING[0], SLICE_STEP])
    np.testing.assert_allclose(mask.affine[:3, :3], LPS_TO_RAS @ lps_steps, atol=1e-5)
    np.testing.assert_allclose(mask.affine[:3, 3], LPS_TO_RAS @ np.asarray(ORIGIN_LPS), atol=1e-4)


def test_dicom_seg_references_the_source_series_and_matches_the_mask(dicom_run):
    datasets, out, _ = dicom_run
    seg = pydicom.dcmread(out / "ct_seg.dcm")
    assert seg.Modality == "SEG" and seg.StudyInstanceUID == datasets[0].StudyInstanceUID
    assert seg.SeriesInstanceUID != datasets[0].SeriesInstanceUID
    (referenced,) = seg.ReferencedSeriesSequence
    assert referenced.SeriesInstanceUID == datasets[0].SeriesInstanceUID
    source_uids = [ds.SOPInstanceUID for ds in datasets]
    assert {item.ReferencedSOPInstanceUID for item in referenced.ReferencedInstanceSequence} == set(source_uids)
    frames = hd.seg.Segmentation.from_dataset(seg).get_pixels_by_source_instance(source_uids, segment_numbers=[1])
    mask = np.asanyarray(nib.load(out / "ct_mask.nii.gz").dataobj)
    assert mask.any(), "the random model marks something"
    np.testing.assert_array_equal(frames[..., 0] > 0, mask.transpose(2, 1, 0) > 0)  # (slice, row, column)


@pytest.mark.slow
def test_without_config_the_app_runs_the_demo_model(tmp_path):
    source, out = ROOT / "demo" / "imagesTr" / "phantom_000.nii.gz", tmp_path / "out"
    process = run_app("-i", str(source), "-o", str(out), "--query", "Where is the liver?", config=None)
    assert process.returncode == 0, process.stderr[-3000:]
    result = json.loads((out / "phantom_000_result.json").read_text())
    assert result["weights"]["checkpoint"] == str(ROOT / "models" / "demo")
    assert result["query"] == "Where is the liver?", "the demo's own question (configs/demo.json) is not inherited"
    assert result["box_3d"] is not None, "the trained demo model finds the liver"


def test_a_missing_input_is_one_error_line_and_writes_nothing(tmp_path):
    missing, out = tmp_path / "nowhere.nii.gz", tmp_path / "out"
    process = run_app("-i", str(missing), "-o", str(out), "--query", QUERY)
    assert process.returncode == 1
    assert process.stderr.strip() == f"error: image not found: {missing}"
    assert not out.exists()


def test_the_question_comes_from_the_flag_then_the_environment_then_app_yaml(tmp_path):
    app_yaml = tmp_path / "app.yaml"
    app_yaml.write_text("medisee:\n  query: Where is the spleen?\n")
    environ = {"MEDISEE_QUERY": "Where is the aorta?"}
    assert resolve_query("Where is the liver?", environ, app_yaml) == "Where is the liver?"
    assert resolve_query(None, environ, app_yaml) == "Where is the aorta?"
    assert resolve_query(None, {}, app_yaml) == "Where is the spleen?"
    with pytest.raises(ConfigError, match="empty .*MEDISEE_QUERY"):
        resolve_query(None, {"MEDISEE_QUERY": " "}, app_yaml)
    app_yaml.write_text("medisee:\n  query: null\n")
    with pytest.raises(ConfigError, match="no question"):
        resolve_query(None, {}, app_yaml)


def test_questions_starting_with_config_syntax_come_through_as_given(tmp_path):
    app_yaml = tmp_path / "app.yaml"
    app_yaml.write_text("medisee:\n  query: '@image'\n")
    assert resolve_query(None, {}, app_yaml) == "@image"
    assert resolve_query(None, {"MEDISEE_QUERY": "%configs/inference.json#image"}, app_yaml).startswith("%configs")


@pytest.mark.slow
def test_an_injected_question_is_asked_literally_and_runs_nothing(nifti_run, tmp_path):
    source, _, _ = nifti_run
    written, out = tmp_path / "written", tmp_path / "out"
    injection = f"$__import__('pathlib').Path({str(written)!r}).write_text('x') or 'Where is the liver?'"
    process = run_app("-i", str(source), "-o", str(out), "--query", injection)
    assert process.returncode == 0, process.stderr[-3000:]
    assert json.loads((out / "ph0_result.json").read_text())["query"] == injection
    assert not written.exists()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "is an empty file"),
        (b"plain text\n", "not a valid gzip file"),
        ((8, 6), "has shape (8, 6)"),
        ((8, 6, 4, 2), "is 4D with 2 volumes"),
    ],
    ids=["empty", "text", "2d", "4d"],
)
def test_bad_nifti_inputs_are_refused_before_the_model_is_built(tmp_path, content, expected):
    from bundle.deploy.cli import app_settings, build_parser

    image = tmp_path / "ct.nii.gz"
    if isinstance(content, bytes):
        image.write_bytes(content)
    else:
        nib.save(nib.Nifti1Image(np.zeros(content, np.int16), np.eye(4)), str(image))
    args = build_parser().parse_args(["-i", str(image), "-o", str(tmp_path / "out"), "--query", QUERY])
    with pytest.raises(DataError) as raised:
        app_settings(args)
    assert str(image) in str(raised.value) and expected in str(raised.value)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
@pytest.mark.parametrize("case", ["truncated", "question_too_long"])
def test_problems_found_inside_the_app_graph_end_in_one_error_line_and_no_outputs(nifti_run, tmp_path, case):
    source, _, _ = nifti_run
    query = QUERY
    if case == "truncated":  # the header reads, the voxel data does not: found by the loader operator
        data = source.read_bytes()
        source = tmp_path / "cut.nii.gz"
        source.write_bytes(data[: len(data) // 2])
        expected = "truncated"
    else:  # longer than the tiny model's positions: found when the prompt is built
        query = "Which organ is this? " * 500
        expected = "too long"
    out = tmp_path / "out"
    process = run_app("-i", str(source), "-o", str(out), "--query", query)
    assert process.returncode == 1
    assert "Traceback" not in process.stderr
    last = process.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and expected in last, process.stderr[-2000:]
    assert not out.exists() or not any(out.iterdir())
