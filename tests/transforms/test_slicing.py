"""Slicing: views of the volume in (H, W) = remaining-axis order, ranges, empty-slice skipping."""

from __future__ import annotations

import pytest
import torch
from monai.data import MetaTensor

from common.errors import ConfigError, DataError
from transforms import iter_slices, take_slice
from transforms.slicing import take_slices

SHAPE = (24, 20, 12)


@pytest.fixture
def volume() -> MetaTensor:
    affine = torch.diag(torch.tensor([0.8, 1.2, 2.5, 1.0], dtype=torch.float64))
    data = torch.arange(2 * 24 * 20 * 12, dtype=torch.float32).reshape(2, *SHAPE)
    return MetaTensor(data, affine=affine, meta={"filename_or_obj": "ct.nii.gz"})


@pytest.mark.parametrize(("axis", "plane"), [(0, (20, 12)), (1, (24, 12)), (2, (24, 20))])
def test_slices_are_the_volume_indexed_with_remaining_axes_in_order(volume, axis, plane):
    slices = list(iter_slices(volume, axis))

    assert [s["slice_index"] for s in slices] == list(range(SHAPE[axis]))
    for item in slices:
        assert item["image"].shape == (2, *plane)
        assert torch.equal(item["image"], volume.as_tensor().select(axis + 1, item["slice_index"]))
        assert item["slice_axis"] == axis and item["volume_shape"] == SHAPE
        assert item["in_plane_axes"] == tuple(a for a in range(3) if a != axis)
    assert slices[0]["filename_or_obj"] == "ct.nii.gz"
    assert torch.equal(slices[0]["affine"], volume.affine)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_several_slices_taken_at_once_are_the_single_slices_stacked(volume, axis):
    indices = [5, 0, SHAPE[axis] - 1]
    stacked = take_slices(volume, axis, indices)
    assert stacked.is_contiguous() and not isinstance(stacked, MetaTensor)
    assert torch.equal(stacked, torch.stack([take_slice(volume, axis, i) for i in indices]))


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_slices_are_views_sharing_the_volume_storage(volume, axis):
    item = next(iter_slices(volume, axis, start=3))

    assert item["image"].untyped_storage().data_ptr() == volume.untyped_storage().data_ptr()
    item["image"][1, 0, 0] = -1.0  # writes show through: nothing was copied
    index = [1, 0, 0, 0]
    index[axis + 1] = 3
    assert volume[tuple(index)].item() == -1.0


def test_start_and_stop_follow_python_slice_rules(volume):
    def indices(**kwargs):
        return [item["slice_index"] for item in iter_slices(volume, 2, **kwargs)]

    assert indices(start=2, stop=5) == [2, 3, 4]
    assert indices(start=-2) == [10, 11]
    assert indices(stop=100) == list(range(12))
    assert indices(start=7, stop=3) == []


def test_skip_empty_drops_constant_slices_only():
    data = torch.zeros(1, 4, 5, 6)
    data[:, :, :, 1] = 500.0  # constant but not zero: still background
    data[0, 2, 3, 4] = 1.0  # one differing voxel makes a slice non-empty
    data[0, :, :, 5] = torch.rand(4, 5)

    kept = [item["slice_index"] for item in iter_slices(MetaTensor(data), 2, skip_empty=True)]

    assert kept == [4, 5]


def test_plain_tensors_get_an_identity_affine():
    item = next(iter_slices(torch.zeros(1, 3, 4, 5), 0))
    assert torch.equal(item["affine"], torch.eye(4, dtype=torch.float64))


@pytest.mark.parametrize("axis", [3, -1, True, "z"])
def test_invalid_axis_is_a_config_error(volume, axis):
    with pytest.raises(ConfigError, match="'axis'"):
        iter_slices(volume, axis)


def test_a_volume_without_channel_is_a_data_error():
    with pytest.raises(DataError, match=r"\(C, X, Y, Z\)"):
        iter_slices(torch.zeros(3, 4, 5), 0)
