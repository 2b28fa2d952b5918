"""Fortran <-> C voxel order: same values and shape, the layout NIfTI or torch wants, for every dtype."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch

import transforms.loading
import transforms.memory_order
from tests.helpers.volumes import AFFINES, label_volume, write_nifti
from transforms import load_volume
from transforms.memory_order import c_order, fortran_order, read_c_order


@pytest.mark.parametrize("dtype", [np.int16, np.uint8, np.float32, np.float64, np.bool_, np.uint16, np.dtype(">i2")])
@pytest.mark.parametrize("shape", [(7, 5, 3), (6, 4), (5, 4, 3, 2)])
def test_a_fortran_array_becomes_c_contiguous_with_the_same_values(dtype, shape):
    values = np.random.default_rng(0).integers(0, 200, shape).astype(dtype)
    source = np.asfortranarray(values)
    result = c_order(source)
    assert result.flags.c_contiguous and result.shape == shape and result.dtype == source.dtype
    np.testing.assert_array_equal(result, values)


def test_c_arrays_pass_through_and_read_only_arrays_are_copied_without_writing():
    array = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    assert c_order(array) is array
    read_only = np.asfortranarray(array)
    read_only.flags.writeable = False
    np.testing.assert_array_equal(c_order(read_only), array)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int16, torch.float32])
def test_a_tensor_becomes_a_fortran_array_with_the_same_values(dtype):
    tensor = torch.randint(0, 100, (9, 6, 4), generator=torch.Generator().manual_seed(0)).to(dtype)
    result = fortran_order(tensor)
    assert result.flags.f_contiguous and result.shape == tuple(tensor.shape)
    np.testing.assert_array_equal(result, tensor.numpy())
    np.testing.assert_array_equal(fortran_order(tensor[:, 1:, ::2]), tensor[:, 1:, ::2].numpy())  # any strides in


def test_the_nibabel_loader_reads_the_voxels_into_c_order_itself(tmp_path, monkeypatch):
    calls = []

    def spy(proxy, dtype):
        calls.append((type(proxy).__name__, np.dtype(dtype)))
        return read_c_order(proxy, dtype)

    monkeypatch.setattr(transforms.loading, "read_c_order", spy)
    path = write_nifti(tmp_path / "ct.nii.gz", label_volume(), AFFINES["RAS"])
    volume = load_volume(path, reader="nibabel")
    assert calls == [("ArrayProxy", np.dtype(np.float32))]  # from the file, not from a whole-file array
    assert volume.is_contiguous()
    np.testing.assert_array_equal(volume[0].numpy(), label_volume())


def whole_file_read(path) -> np.ndarray:
    """What loading did before: nibabel's whole (scaled) array, C-ordered, then converted to float32."""
    return c_order(np.asanyarray(nib.load(str(path)).dataobj)).astype(np.float32)


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
@pytest.mark.parametrize("kind", ["int16", "scaled", "big_endian", "float32", "uint16", "singleton_4d"])
def test_reading_slab_by_slab_gives_the_whole_file_reads_values(tmp_path, monkeypatch, kind, suffix):
    monkeypatch.setattr(transforms.memory_order, "SLAB_BYTES", 3 * 17 * 11 * 2)  # several slabs, a short last one
    values = np.random.default_rng(0).integers(-1000, 1000, (17, 11, 10))
    array = {
        "int16": values.astype(np.int16),
        "scaled": values.astype(np.int16),
        "big_endian": values.astype(">i2"),
        "float32": values.astype(np.float32) / 7,
        "uint16": (values + 1000).astype(np.uint16),
        "singleton_4d": values.astype(np.int16)[..., None],
    }[kind]
    image = nib.Nifti1Image(array, np.eye(4))
    if kind == "scaled":
        image.header.set_slope_inter(0.37, -12.5)
    path = tmp_path / f"{kind}{suffix}"
    nib.save(image, str(path))
    read = read_c_order(nib.load(str(path), mmap=False, keep_file_open=True).dataobj, np.float32)
    assert read.flags.c_contiguous and read.dtype == np.float32
    np.testing.assert_array_equal(read, whole_file_read(path))
