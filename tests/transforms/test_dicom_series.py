"""The DICOM series rules (transforms.dicom_series) on series written as hospitals write them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from common.errors import ConfigError, DataError
from tests.helpers import dicom as D
from transforms.dicom_series import LPS_TO_RAS, plan_series

SHAPE = (12, 10, 6)
"""Columns, rows, slices."""
RAS = np.diag(LPS_TO_RAS)[:3]


def volume(seed: int = 0, shape: tuple[int, int, int] = SHAPE) -> np.ndarray:
    return np.random.default_rng(seed).integers(-300, 300, size=shape).astype(np.int16)


def plan(folder, tolerance=0.05):
    datasets = D.read_back(folder)
    return plan_series(datasets, [ds.filename for ds in datasets], f"series in {folder}", tolerance), datasets


def positions_of(stack, datasets) -> np.ndarray:
    return np.array([[float(v) for v in datasets[image.source].ImagePositionPatient] for image in stack.images])


def test_a_regular_series_is_sorted_along_the_normal_and_gets_the_exact_affine(tmp_path):
    positions = D.regular_positions(SHAPE[2])
    D.write_series(tmp_path / "ct", volume(), positions)
    stack, datasets = plan(tmp_path / "ct")
    assert stack.regular and not stack.sheared and not stack.notes and stack.shape == SHAPE
    np.testing.assert_allclose(positions_of(stack, datasets), positions)
    expected = np.eye(4)
    expected[:3, :3] = np.diag(RAS) @ np.diag([D.PIXEL_SPACING[1], D.PIXEL_SPACING[0], D.SLICE_STEP])
    expected[:3, 3] = RAS * np.asarray(D.ORIGIN)
    np.testing.assert_allclose(stack.affine(), expected, atol=1e-9)


@pytest.mark.parametrize("case", ["uneven", "missing_slice"])
def test_uneven_spacing_keeps_each_slice_position_and_says_so(tmp_path, case):
    if case == "uneven":
        offsets = np.array([0.0, 2.5, 5.0, 10.0, 12.5, 20.0])
        positions = np.asarray(D.ORIGIN) + offsets[:, None] * np.array([0.0, 0.0, 1.0])
    else:
        positions = np.delete(D.regular_positions(SHAPE[2] + 1), 3, axis=0)
    D.write_series(tmp_path / "ct", volume(), positions)
    stack, _ = plan(tmp_path / "ct")
    assert not stack.regular and any("uneven" in note for note in stack.notes)
    np.testing.assert_allclose(stack.origins(), positions * RAS)
    # the nominal affine steps by the median gap along the normal: never the average of the gaps
    assert stack.affine()[2, 2] == pytest.approx(float(np.median(np.diff(positions[:, 2]))))


def test_jitter_within_the_tolerance_is_a_regular_grid_and_beyond_it_is_not(tmp_path):
    positions = D.regular_positions(SHAPE[2])
    positions[2, 2] += 0.03 * D.SLICE_STEP
    D.write_series(tmp_path / "ct", volume(), positions)
    assert plan(tmp_path / "ct")[0].regular
    assert not plan(tmp_path / "ct", tolerance=0.01)[0].regular


def test_a_gantry_tilt_gives_a_sheared_grid_that_steps_as_the_table_moves(tmp_path):
    degrees = 15.0
    positions = D.tilted_positions(SHAPE[2], degrees)
    D.write_series(tmp_path / "ct", volume(), positions, D.tilted_orientation(degrees))
    stack, _ = plan(tmp_path / "ct")
    assert stack.regular and stack.sheared and stack.tilt_degrees == pytest.approx(degrees)
    assert any("15.0 degree gantry tilt" in note for note in stack.notes)
    affine = stack.affine()
    # every voxel (i, j, k) is where the file puts pixel (i, j) of slice k
    for k in range(SHAPE[2]):
        np.testing.assert_allclose(affine @ [0, 0, k, 1], [*(positions[k] * RAS), 1.0], atol=1e-9)
    np.testing.assert_allclose(affine[:3, 2], RAS * np.array([0.0, 0.0, D.SLICE_STEP]), atol=1e-9)


def test_localizers_in_the_series_are_left_out_and_the_axial_stack_is_the_volume(tmp_path):
    shared = D.study()
    axial = D.write_series(tmp_path / "ct", volume(), D.regular_positions(SHAPE[2]), shared=shared)
    D.write_localizers(tmp_path / "ct", shared)
    stack, datasets = plan(tmp_path / "ct")
    assert stack.shape == SHAPE and stack.left_out == 3 and stack.regular
    assert {datasets[image.source].SOPInstanceUID for image in stack.images} == {ds.SOPInstanceUID for ds in axial}
    assert any("3 of its 9 images have another orientation" in note for note in stack.notes)


def test_a_series_of_localizers_only_is_refused_in_one_line(tmp_path):
    D.write_localizers(tmp_path / "scout", D.study())
    with pytest.raises(DataError, match="no stack of parallel slices") as raised:
        plan(tmp_path / "scout")
    assert "\n" not in str(raised.value) and str(tmp_path / "scout") in str(raised.value)


def test_two_images_at_one_position_are_refused_naming_both_files(tmp_path):
    shared = D.study()
    D.write_series(tmp_path / "ct", volume(), D.regular_positions(SHAPE[2]), shared=shared)
    extra = D.ct_slice(shared, volume(1)[..., 0], D.regular_positions(SHAPE[2])[3], number=50)
    extra.save_as(tmp_path / "ct" / "phase2.dcm", enforce_file_format=True)
    with pytest.raises(DataError, match="same position") as raised:
        plan(tmp_path / "ct")
    assert "phase2.dcm" in str(raised.value) and "im003.dcm" in str(raised.value)


def test_a_repeated_acquisition_replaces_the_earlier_one_at_its_position(tmp_path):
    shared = D.study()
    D.write_series(tmp_path / "ct", volume(), D.regular_positions(SHAPE[2]), shared=shared)
    repeat = D.ct_slice(shared, volume(1)[..., 0], D.regular_positions(SHAPE[2])[3], number=50)
    repeat.AcquisitionNumber = 2
    repeat.save_as(tmp_path / "ct" / "rescan.dcm", enforce_file_format=True)
    stack, datasets = plan(tmp_path / "ct")
    assert stack.shape == SHAPE and stack.left_out == 1
    assert datasets[stack.images[3].source].SOPInstanceUID == repeat.SOPInstanceUID
    assert any("rescan.dcm (acquisition 2) is used" in note for note in stack.notes)


def test_one_instance_stored_twice_is_read_once(tmp_path):
    datasets = D.write_series(tmp_path / "ct", volume(), D.regular_positions(SHAPE[2]))
    datasets[2].save_as(tmp_path / "ct" / "copy.dcm", enforce_file_format=True)
    stack, _ = plan(tmp_path / "ct")
    assert stack.shape == SHAPE and stack.left_out == 1


def test_an_enhanced_ct_is_placed_frame_by_frame_from_its_functional_groups(tmp_path):
    positions = D.regular_positions(SHAPE[2])
    order = [3, 0, 5, 1, 4, 2]
    D.write_enhanced_ct(tmp_path / "enh" / "ct.dcm", volume(), positions, frame_order=order)
    stack, _ = plan(tmp_path / "enh")
    assert stack.shape == SHAPE and stack.regular
    # slice k of the volume is the frame that holds slice k
    assert stack.frames() == [order.index(k) for k in range(SHAPE[2])]
    np.testing.assert_allclose(stack.affine()[:3, 3], RAS * np.asarray(D.ORIGIN))
    assert stack.affine()[2, 2] == pytest.approx(D.SLICE_STEP)


def test_a_mosaic_is_refused_naming_the_file_and_the_format(tmp_path):
    D.write_mosaic(tmp_path / "fmri" / "mosaic.dcm")
    with pytest.raises(DataError, match="Siemens mosaic") as raised:
        plan(tmp_path / "fmri")
    assert "mosaic.dcm" in str(raised.value) and "4 images" in str(raised.value)


def test_missing_geometry_is_named(tmp_path):
    datasets = D.write_series(tmp_path / "ct", volume(), D.regular_positions(SHAPE[2]))
    del datasets[1].ImagePositionPatient
    datasets[1].save_as(tmp_path / "ct" / "im005.dcm", enforce_file_format=True)
    with pytest.raises(DataError, match="im005.dcm has no usable ImagePositionPatient"):
        plan(tmp_path / "ct")


@pytest.mark.parametrize("value", [-0.1, math.nan, "0.05", True])
def test_the_tolerance_must_be_a_non_negative_number(tmp_path, value):
    D.write_series(tmp_path / "ct", volume(), D.regular_positions(SHAPE[2]))
    with pytest.raises(ConfigError, match="slice_spacing_tolerance"):
        plan(tmp_path / "ct", tolerance=value)
