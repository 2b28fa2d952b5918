"""Fortran <-> C voxel order: same values and shape, the layout NIfTI or torch wants, for every dtype."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import transforms.loading
from tests.transforms.volumes import AFFINES, label_volume, write_nifti
from transforms import load_volume
from transforms.memory_order import c_order, fortran_order


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


def test_the_nibabel_loader_reorders_the_voxels_itself(tmp_path, monkeypatch):
    calls = []

    def spy(array):
        calls.append(array.flags.f_contiguous)
        return c_order(array)

    monkeypatch.setattr(transforms.loading, "c_order", spy)
    path = write_nifti(tmp_path / "ct.nii.gz", label_volume(), AFFINES["RAS"])
    volume = load_volume(path, reader="nibabel")
    assert calls == [True]  # MONAI still hands the reader's array over in the file's order
    np.testing.assert_array_equal(volume[0].numpy(), label_volume())
