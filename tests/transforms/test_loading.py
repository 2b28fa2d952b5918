"""Loading: channel-first RAS MetaTensors from either reader, and one readable error per bad input."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch

from common.errors import ConfigError, DataError
from tests.helpers.volumes import AFFINES, SHAPE, label_volume, write_nifti
from transforms import LoadVolumed, load_volume, nifti_header_shape

pytestmark = pytest.mark.filterwarnings("ignore:builtin type .* has no __module__ attribute:DeprecationWarning")


@pytest.fixture
def lps_file(tmp_path):
    return write_nifti(tmp_path / "ct.nii.gz", label_volume(), AFFINES["LPS"])


def test_volume_is_channel_first_and_reoriented_to_ras(lps_file):
    volume = load_volume(lps_file)

    assert volume.shape == (1, *SHAPE)
    assert volume.dtype == torch.float32
    assert nib.aff2axcodes(volume.affine.numpy()) == ("R", "A", "S")
    # LPS -> RAS flips the first two axes
    np.testing.assert_array_equal(volume[0].numpy(), label_volume()[::-1, ::-1, :])


def test_axcodes_none_keeps_the_file_orientation(lps_file):
    volume = load_volume(lps_file, axcodes=None)

    np.testing.assert_allclose(volume.affine.numpy(), nib.load(str(lps_file)).affine)
    np.testing.assert_array_equal(volume[0].numpy(), label_volume())


def test_other_target_orientations_are_honoured(lps_file):
    volume = load_volume(lps_file, axcodes="PLI")

    assert nib.aff2axcodes(volume.affine.numpy()) == ("P", "L", "I")


@pytest.mark.parametrize("orientation", ["LPS", "oblique"])
def test_itk_and_nibabel_give_the_same_ras_volume(tmp_path, orientation):
    path = write_nifti(tmp_path / "mr.nii.gz", label_volume(), AFFINES[orientation])

    by_nibabel, by_itk = load_volume(path, reader="nibabel"), load_volume(path, reader="itk")

    np.testing.assert_allclose(by_itk.affine.numpy(), by_nibabel.affine.numpy(), atol=1e-5)
    assert torch.equal(by_itk.as_tensor(), by_nibabel.as_tensor())


def test_dictionary_transform_loads_several_keys_and_passes_other_entries(tmp_path):
    image = write_nifti(tmp_path / "image.nii.gz", label_volume(seed=0), AFFINES["LAS"])
    label = write_nifti(tmp_path / "label.nii.gz", label_volume(seed=1), AFFINES["LAS"])

    data = LoadVolumed(["image", "label"])({"image": image, "label": label, "question": "where is the liver?"})

    assert data["question"] == "where is the liver?"
    assert data["image"].shape == data["label"].shape == (1, *SHAPE)
    assert torch.equal(data["image"].affine, data["label"].affine)


def test_missing_file_names_the_path(tmp_path):
    missing = tmp_path / "nowhere" / "ct.nii.gz"
    with pytest.raises(DataError, match=f"image not found: {missing}"):
        load_volume(missing)


@pytest.mark.parametrize("reader", ["nibabel", "itk"])
def test_text_file_named_nifti_is_a_data_error_naming_it(tmp_path, reader):
    fake = tmp_path / "notes.nii.gz"
    fake.write_text("this is not an image\n")
    with pytest.raises(DataError, match=f"cannot read image {fake} with the {reader} reader"):
        load_volume(fake, reader=reader)


def test_directory_with_the_nibabel_reader_points_to_itk(tmp_path):
    with pytest.raises(DataError, match="reader='itk'"):
        load_volume(tmp_path)


def test_directory_without_dicom_files_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match=f"cannot read image {tmp_path}"):
        load_volume(tmp_path, reader="itk")


def test_non_nifti_file_with_the_nibabel_reader_is_refused(tmp_path):
    other = tmp_path / "scan.mha"
    other.write_bytes(b"\0")
    with pytest.raises(DataError, match="is not a NIfTI file"):
        load_volume(other)


@pytest.mark.parametrize("read", [load_volume, nifti_header_shape], ids=["load", "header"])
def test_a_2d_image_is_refused_with_its_shape(tmp_path, read):
    flat = write_nifti(tmp_path / "xray.nii.gz", np.zeros((8, 6), dtype=np.int16), np.eye(4))
    with pytest.raises(DataError, match=r"xray.nii.gz is a 2D image \(it has shape \(8, 6\)\); a 3D volume"):
        read(flat)


@pytest.mark.parametrize(("mode", "words"), [("RGB", "a 2D RGB image"), ("L", "a 2D image")])
def test_a_picture_is_refused_as_the_picture_it_is(tmp_path, mode, words):
    from PIL import Image

    picture = tmp_path / "photo.png"
    Image.new(mode, (42, 39)).save(picture)
    with pytest.raises(DataError) as raised:
        load_volume(picture, reader="itk")
    message = str(raised.value)
    assert message.startswith(f"image {picture} is {words} (it has shape "), message
    assert "(42, 39" in message and message.endswith(
        "a 3D volume (X, Y, Z) is needed: a NIfTI file, or a folder holding one DICOM series"
    )


@pytest.mark.parametrize("read", [load_volume, nifti_header_shape], ids=["load", "header"])
def test_an_empty_file_is_named_as_empty(tmp_path, read):
    empty = tmp_path / "ct.nii.gz"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match=f"image {empty} is an empty file"):
        read(empty)


@pytest.mark.parametrize("keep", [0.3, 0.9], ids=["header-cut", "data-cut"])
def test_a_truncated_gzip_file_is_named_as_truncated(tmp_path, keep):
    whole = write_nifti(tmp_path / "whole.nii.gz", label_volume(), AFFINES["LPS"])
    cut = tmp_path / "cut.nii.gz"
    data = whole.read_bytes()
    cut.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(DataError, match=f"cannot read image {cut} .*truncated"):
        load_volume(cut)


@pytest.mark.parametrize("read", [load_volume, nifti_header_shape], ids=["load", "header"])
def test_a_4d_file_holding_several_volumes_is_refused(tmp_path, read):
    series = write_nifti(tmp_path / "fmri.nii.gz", np.zeros((8, 6, 5, 3), dtype=np.int16), np.eye(4))
    with pytest.raises(DataError, match=r"fmri.nii.gz is 4D with 3 volumes of shape \(8, 6, 5\)"):
        read(series)


def test_a_4d_file_with_one_volume_loads_as_that_volume(tmp_path):
    array = label_volume()
    single = write_nifti(tmp_path / "ct.nii.gz", array[..., None], AFFINES["RAS"])
    assert nifti_header_shape(single) == SHAPE
    np.testing.assert_array_equal(load_volume(single)[0].numpy(), array)


def test_a_one_slice_volume_is_valid(tmp_path):
    one = write_nifti(tmp_path / "one.nii.gz", label_volume()[..., :1], AFFINES["LPS"])
    assert nifti_header_shape(one) == (*SHAPE[:2], 1)
    assert load_volume(one).shape == (1, *SHAPE[:2], 1)


@pytest.mark.parametrize(
    ("kwargs", "setting"),
    [({"reader": "pydicom"}, "reader"), ({"axcodes": "RRA"}, "axcodes"), ({"axcodes": "XYZ"}, "axcodes")],
)
def test_invalid_settings_are_config_errors_naming_them(kwargs, setting):
    with pytest.raises(ConfigError, match=f"'{setting}'"):
        LoadVolumed("image", **kwargs)
