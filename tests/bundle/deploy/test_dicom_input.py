"""The deploy app on DICOM series as hospitals write them: each case handled right or refused in one line.

World positions of source pixels come from ITK reading each source file on its own (nothing to
sort or average), or, for the enhanced instance, from the positions it was written with.
"""

from __future__ import annotations

import json

import itk
import nibabel as nib
import numpy as np
import pytest

from tests.bundle.deploy.runs import DICOM_SHAPE, NEEDS_DEPLOY_EXTRA, RAS, TILT_DEGREES
from tests.helpers import dicom as D
from tests.helpers.volumes import itk_affine

pytest.importorskip("monai.deploy.core", reason=NEEDS_DEPLOY_EXTRA)
hd = pytest.importorskip("highdicom", reason=NEEDS_DEPLOY_EXTRA)
pydicom = pytest.importorskip("pydicom", reason=NEEDS_DEPLOY_EXTRA)

pytestmark = pytest.mark.filterwarnings("ignore:builtin type:DeprecationWarning")  # ITK's SWIG bindings

CORNERS = [(0, 0), (DICOM_SHAPE[0] - 1, 0), (0, DICOM_SHAPE[1] - 1), (DICOM_SHAPE[0] - 1, DICOM_SHAPE[1] - 1)]


def pixel_world(case, k: int, column: int, row: int) -> np.ndarray:
    """RAS mm of pixel (column, row) of slice ``k``: ITK on the slice's own file, or the written enhanced geometry."""
    if len(case.datasets) == 1:  # one enhanced instance: the geometry it was written with
        spacing_rows, spacing_columns = D.PIXEL_SPACING
        row_cosine, column_cosine = np.asarray(D.AXIAL[:3]), np.asarray(D.AXIAL[3:])
        lps = case.positions[k] + column * spacing_columns * row_cosine + row * spacing_rows * column_cosine
        return RAS * lps
    source = itk.imread(case.datasets[k].filename)
    return RAS * np.asarray(source.TransformIndexToPhysicalPoint([column, row, 0]))


def seg_frames(run) -> np.ndarray:
    """The SEG's frames by slice, (slices, rows, columns) booleans, read back with highdicom."""
    seg = hd.seg.Segmentation.from_dataset(pydicom.dcmread(run.output("seg.dcm")))
    datasets = run.case.datasets
    if len(datasets) == 1:
        stored = seg.get_pixels_by_source_frame(
            datasets[0].SOPInstanceUID, list(range(1, int(datasets[0].NumberOfFrames) + 1)), segment_numbers=[1]
        )[..., 0]
        order = [3, 0, 7, 1, 5, 2, 6, 4]  # the frame order tests.bundle.deploy.runs wrote
        return stored[[order.index(k) for k in range(len(order))]] > 0
    uids = [ds.SOPInstanceUID for ds in datasets]
    return seg.get_pixels_by_source_instance(uids, segment_numbers=[1])[..., 0] > 0


@pytest.mark.parametrize("case", ["regular", "localizers", "enhanced"])
def test_the_mask_voxels_sit_on_their_source_pixels(dicom_run, case):
    run = dicom_run(case)
    assert run.process.returncode == 0, run.process.stderr[-3000:]
    assert sorted(p.name for p in run.out.iterdir()) == ["ct_mask.nii.gz", "ct_result.json", "ct_seg.dcm"]
    mask = nib.load(run.output("mask.nii.gz"))
    assert mask.shape == DICOM_SHAPE
    for affine in (mask.affine, itk_affine(run.output("mask.nii.gz"))):  # as nibabel and as ITK read it
        for k in range(DICOM_SHAPE[2]):
            for column, row in CORNERS:
                world = (affine @ [column, row, k, 1.0])[:3]
                np.testing.assert_allclose(world, pixel_world(run.case, k, column, row), atol=1e-3)
    frames = seg_frames(run)
    assert frames.any(), "the random model marks something"
    np.testing.assert_array_equal(frames, np.asanyarray(mask.dataobj).transpose(2, 1, 0) > 0)


def test_localizers_are_left_out_with_a_warning(dicom_run):
    run = dicom_run("localizers")
    assert "3 of its 11 images have another orientation or size (localizers?) and are left out" in run.process.stderr


def true_thickness(positions: np.ndarray) -> np.ndarray:
    """Each slice's extent along z: from halfway to its previous neighbour to halfway to its next."""
    z = positions[:, 2]
    edges = np.concatenate([[z[0] - (z[1] - z[0]) / 2], (z[:-1] + z[1:]) / 2, [z[-1] + (z[-1] - z[-2]) / 2]])
    return np.diff(edges)


@pytest.mark.parametrize("case", ["uneven", "missing_slice"])
def test_uneven_slices_are_measured_at_their_true_positions_and_get_no_nifti(dicom_run, case):
    run = dicom_run(case)
    assert run.process.returncode == 0, run.process.stderr[-3000:]
    assert sorted(p.name for p in run.out.iterdir()) == ["ct_result.json", "ct_seg.dcm"]
    assert "slice spacing is uneven" in run.process.stderr and "no NIfTI mask written" in run.process.stderr
    result = json.loads(run.output("result.json").read_text())
    frames = seg_frames(run)
    pixel_area = D.PIXEL_SPACING[0] * D.PIXEL_SPACING[1]
    expected_ml = float(frames.sum(axis=(1, 2)) @ true_thickness(run.case.positions)) * pixel_area / 1000.0
    assert result["volume_ml"] == pytest.approx(expected_ml, abs=1e-3)
    averaged_ml = frames.sum() * pixel_area * np.ptp(run.case.positions[:, 2]) / (DICOM_SHAPE[2] - 1) / 1000.0
    assert result["volume_ml"] != pytest.approx(averaged_ml, abs=1e-3), "an averaged spacing would give this"
    target_slices = set(np.flatnonzero(frames.any(axis=(1, 2))))
    assert {entry["index"] for entry in result["slices"]} == target_slices
    for entry in result["slices"]:  # each box on its slice's own plane
        z = RAS[2] * run.case.positions[entry["index"], 2]
        assert [corner[2] for corner in entry["box_world"]] == pytest.approx([z, z])
    z_min, z_max = result["box_3d"]["world"][0][2], result["box_3d"]["world"][1][2]
    first, last = min(target_slices), max(target_slices)
    edges = np.cumsum(np.concatenate([[0.0], true_thickness(run.case.positions)]))
    edges += run.case.positions[0, 2] - true_thickness(run.case.positions)[0] / 2
    assert (z_min, z_max) == pytest.approx((edges[first], edges[last + 1]))


def test_a_tilted_series_mask_is_unsheared_and_each_source_pixel_finds_its_value(dicom_run):
    run = dicom_run("tilt")
    assert run.process.returncode == 0, run.process.stderr[-3000:]
    assert f"tilted {TILT_DEGREES:.1f} degrees" in run.process.stderr
    path = run.output("mask.nii.gz")
    mask = nib.load(path)
    np.testing.assert_allclose(itk_affine(path), mask.affine, atol=1e-4)  # ITK places it as nibabel does
    voxels = np.asanyarray(mask.dataobj)
    frames = seg_frames(run)
    inverse = np.linalg.inv(mask.affine)
    columns, rows = np.meshgrid(np.arange(DICOM_SHAPE[0]), np.arange(DICOM_SHAPE[1]), indexing="xy")
    for k in range(DICOM_SHAPE[2]):
        # the slice's own geometry from ITK on its file: origin and the world steps of a column and a row
        origin, column_step, row_step = (
            pixel_world(run.case, k, 0, 0),
            pixel_world(run.case, k, 1, 0) - pixel_world(run.case, k, 0, 0),
            pixel_world(run.case, k, 0, 1) - pixel_world(run.case, k, 0, 0),
        )
        world = origin + columns[..., None] * column_step + rows[..., None] * row_step  # (rows, columns, 3)
        voxel = world @ inverse[:3, :3].T + inverse[:3, 3]
        nearest = np.rint(voxel).astype(int)
        assert np.abs(voxel - nearest).max() <= 0.5 + 1e-6 and (nearest[..., 2] == k).all()
        np.testing.assert_array_equal(voxels[nearest[..., 0], nearest[..., 1], k] > 0, frames[k])


@pytest.mark.parametrize(
    ("case", "expected"),
    [("repeat", "are two images at the same position"), ("mosaic", "is a Siemens mosaic")],
)
def test_series_that_cannot_be_a_volume_are_refused_in_one_line_before_the_model_is_built(dicom_run, case, expected):
    run = dicom_run(case)
    assert run.process.returncode == 1
    lines = run.process.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], run.process.stderr[-2000:]
    assert "networks.build" not in run.process.stderr, "refused before the model is built"
    assert not run.out.exists() or not any(run.out.iterdir())
