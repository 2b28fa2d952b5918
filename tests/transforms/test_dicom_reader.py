"""The ITK reader of DICOM series folders follows the series rules: right slices, right order, right place.

Each voxel's world position is checked against ITK reading the source file of its slice on its
own (one file, one slice: nothing to sort, average or drop).
"""

from __future__ import annotations

import logging

import itk
import numpy as np
import pytest

from common.errors import DataError
from tests.helpers import dicom as D
from transforms import load_volume
from transforms.dicom_reader import SLICE_ORIGINS, TILT_DEGREES

pytestmark = pytest.mark.filterwarnings("ignore:builtin type:DeprecationWarning")  # ITK's SWIG bindings

SHAPE = (12, 10, 6)
RAS = np.array([-1.0, -1.0, 1.0])


def volume(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(-300, 300, size=SHAPE).astype(np.int16)


def itk_pixel_world(path, column: int, row: int) -> np.ndarray:
    """RAS mm of pixel (column, row) of one DICOM file, as ITK places it."""
    image = itk.imread(str(path))
    return RAS * np.asarray(image.TransformIndexToPhysicalPoint([column, row, 0]))


def assert_voxels_on_their_source_pixels(loaded, files_by_slice) -> None:
    """Corner voxels of every slice lie where ITK puts those pixels of the slice's own file."""
    affine = loaded.affine.numpy()
    columns, rows = loaded.shape[1:3]
    for k, path in enumerate(files_by_slice):
        for column, row in [(0, 0), (columns - 1, 0), (0, rows - 1), (columns - 1, rows - 1)]:
            world = affine @ [column, row, k, 1.0]
            np.testing.assert_allclose(world[:3], itk_pixel_world(path, column, row), atol=1e-3)


def test_a_series_is_read_in_slice_order_in_hu_on_its_own_grid(tmp_path):
    array = volume()
    datasets = D.write_series(tmp_path / "ct", array, D.regular_positions(SHAPE[2]))  # files in reverse order
    loaded = load_volume(tmp_path / "ct", reader="itk", axcodes=None)
    np.testing.assert_array_equal(loaded[0].numpy(), array)  # sorted, and rescaled to HU
    assert SLICE_ORIGINS not in loaded.meta and loaded.meta[TILT_DEGREES] == 0.0
    assert_voxels_on_their_source_pixels(loaded, [ds.filename for ds in datasets])


def test_localizers_in_the_folder_do_not_enter_the_volume(tmp_path, caplog):
    shared = D.study()
    array = volume()
    datasets = D.write_series(tmp_path / "ct", array, D.regular_positions(SHAPE[2]), shared=shared)
    D.write_localizers(tmp_path / "ct", shared)
    with caplog.at_level(logging.WARNING):
        loaded = load_volume(tmp_path / "ct", reader="itk", axcodes=None)
    np.testing.assert_array_equal(loaded[0].numpy(), array)
    assert "left out" in caplog.text
    assert_voxels_on_their_source_pixels(loaded, [ds.filename for ds in datasets])


def test_a_tilted_series_gets_its_sheared_grid_and_each_slice_its_own_place(tmp_path):
    array = volume()
    datasets = D.write_series(tmp_path / "ct", array, D.tilted_positions(SHAPE[2], 15.0), D.tilted_orientation(15.0))
    loaded = load_volume(tmp_path / "ct", reader="itk", axcodes=None)
    np.testing.assert_array_equal(loaded[0].numpy(), array)
    assert loaded.meta[TILT_DEGREES] == pytest.approx(15.0)
    assert_voxels_on_their_source_pixels(loaded, [ds.filename for ds in datasets])


def test_an_uneven_series_carries_every_slice_position(tmp_path, caplog):
    array = volume()
    positions = np.delete(D.regular_positions(SHAPE[2] + 1), 2, axis=0)  # one slice missing
    D.write_series(tmp_path / "ct", array, positions)
    with caplog.at_level(logging.WARNING):
        loaded = load_volume(tmp_path / "ct", reader="itk", axcodes=None)
    np.testing.assert_array_equal(loaded[0].numpy(), array)
    np.testing.assert_allclose(loaded.meta[SLICE_ORIGINS], positions * RAS)
    assert "uneven" in caplog.text and "Non uniform sampling" not in caplog.text


def test_an_enhanced_ct_is_read_as_its_frames_in_slice_order(tmp_path):
    array = volume()
    order = [3, 0, 5, 1, 4, 2]
    D.write_enhanced_ct(tmp_path / "enh" / "ct.dcm", array, D.regular_positions(SHAPE[2]), frame_order=order)
    loaded = load_volume(tmp_path / "enh", reader="itk", axcodes=None)
    np.testing.assert_array_equal(loaded[0].numpy(), array)
    expected = np.diag([*(RAS * [D.PIXEL_SPACING[1], D.PIXEL_SPACING[0], D.SLICE_STEP]), 1.0])
    expected[:3, 3] = RAS * np.asarray(D.ORIGIN)
    np.testing.assert_allclose(loaded.affine.numpy(), expected, atol=1e-6)


def test_the_largest_of_several_series_is_read_with_a_warning(tmp_path, caplog):
    array = volume()
    D.write_series(tmp_path / "study", array, D.regular_positions(SHAPE[2]))
    small = D.study()
    for k in range(2):
        D.ct_slice(small, array[..., k], D.regular_positions(2)[k], number=k + 1).save_as(
            tmp_path / "study" / f"other{k}.dcm", enforce_file_format=True
        )
    with caplog.at_level(logging.WARNING):
        loaded = load_volume(tmp_path / "study", reader="itk", axcodes=None)
    assert tuple(loaded.shape[1:]) == SHAPE and "holds 2 DICOM series" in caplog.text


def test_a_refused_series_is_one_line_naming_it(tmp_path):
    D.write_mosaic(tmp_path / "fmri" / "m.dcm")
    with pytest.raises(DataError) as raised:
        load_volume(tmp_path / "fmri", reader="itk")
    message = str(raised.value)
    assert message.startswith(f"DICOM file {tmp_path / 'fmri' / 'm.dcm'} is a Siemens mosaic") and "\n" not in message
