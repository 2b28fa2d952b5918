"""Volume -> RAS -> slices -> volume -> file grid gives back the file exactly, for every axis and orientation."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch

from tests.helpers.volumes import AFFINES, SHAPE, label_volume, to_file_grid, write_dicom_series, write_nifti
from transforms import iter_slices, load_volume, slices_to_volume

# ITK's SWIG bindings trip Python's own deprecation check on import; nothing we can act on
pytestmark = pytest.mark.filterwarnings("ignore:builtin type .* has no __module__ attribute:DeprecationWarning")

AFFINE_ATOL = 1e-5  # NIfTI stores the sform in float32


def _round_trip(volume, axis: int):
    """Slices ``volume`` along ``axis``, reassembles the slices and maps them to the file's grid."""
    slices = {item["slice_index"]: item["image"][0].to(torch.int16) for item in iter_slices(volume, axis)}
    return to_file_grid(slices_to_volume(slices, volume, axis), volume)


def _saved_and_reloaded(tmp_path, result) -> nib.Nifti1Image:
    path = tmp_path / "result.nii.gz"
    return nib.load(str(write_nifti(path, result[0].numpy(), result.affine.numpy())))


@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("orientation", sorted(AFFINES))
def test_nifti_round_trip_restores_shape_affine_and_voxels(tmp_path, orientation, axis):
    array = label_volume()
    source = write_nifti(tmp_path / "image.nii.gz", array, AFFINES[orientation])
    file_affine = nib.load(str(source)).affine
    volume = load_volume(source, axcodes="RAS")
    assert nib.aff2axcodes(volume.affine.numpy()) == ("R", "A", "S")

    saved = _saved_and_reloaded(tmp_path, _round_trip(volume, axis))

    assert saved.shape == SHAPE
    np.testing.assert_allclose(saved.affine, file_affine, atol=AFFINE_ATOL)
    np.testing.assert_array_equal(np.asarray(saved.dataobj), array)


@pytest.mark.parametrize("orientation", ["LPS", "oblique"])
def test_itk_reader_round_trip_restores_the_file(tmp_path, orientation):
    array = label_volume(seed=1)
    source = write_nifti(tmp_path / "image.nii.gz", array, AFFINES[orientation])
    volume = load_volume(source, reader="itk", axcodes="RAS")

    for axis in range(3):
        result = _round_trip(volume, axis)
        assert tuple(result.shape[1:]) == SHAPE
        np.testing.assert_allclose(result.affine.numpy(), nib.load(str(source)).affine, atol=AFFINE_ATOL)
        np.testing.assert_array_equal(result[0].numpy(), array)


def test_dicom_series_round_trip_restores_the_series_grid(tmp_path):
    array = label_volume(seed=2)
    folder = write_dicom_series(tmp_path / "series", array)
    as_stored = load_volume(folder, reader="itk", axcodes=None)
    volume = load_volume(folder, reader="itk", axcodes="RAS")
    # DICOM is LPS with identity directions: RAS flips the first two axes and negates the origin
    expected = np.diag([-0.8, -1.2, 2.5, 1.0])
    expected[:3, 3] = (-10.0, 20.0, 30.0)
    np.testing.assert_allclose(as_stored.affine.numpy(), expected, atol=AFFINE_ATOL)
    assert nib.aff2axcodes(volume.affine.numpy()) == ("R", "A", "S")

    for axis in range(3):
        result = _round_trip(volume, axis)
        np.testing.assert_allclose(result.affine.numpy(), expected, atol=AFFINE_ATOL)
        np.testing.assert_array_equal(result[0].numpy(), array)


def test_volumes_loaded_without_reorientation_stay_on_the_file_grid(tmp_path):
    array = label_volume()
    source = write_nifti(tmp_path / "image.nii.gz", array, AFFINES["LPS"])
    volume = load_volume(source, axcodes=None)
    assert not volume.applied_operations

    result = _round_trip(volume, axis=1)

    np.testing.assert_allclose(result.affine.numpy(), nib.load(str(source)).affine, atol=AFFINE_ATOL)
    np.testing.assert_array_equal(result[0].numpy(), array)
