"""Slices -> volume on the reference grid, and voxel / world geometry of boxes and masks."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms.utils import generate_spatial_bounding_box

import transforms.reassemble
from common.errors import DataError
from tests.helpers.volumes import oblique_affine
from transforms import (
    box_3d,
    box_to_voxel_corners,
    mask_to_box,
    slices_to_volume,
    volume_ml,
    voxel_to_world,
)

SHAPE = (24, 20, 12)
AFFINE = torch.tensor(
    [[0.8, 0.0, 0.0, 10.0], [0.0, 1.2, 0.0, -20.0], [0.0, 0.0, 2.5, 30.0], [0.0, 0.0, 0.0, 1.0]], dtype=torch.float64
)


@pytest.fixture
def reference() -> MetaTensor:
    return MetaTensor(torch.rand(1, *SHAPE), affine=AFFINE.clone(), meta={"filename_or_obj": "ct.nii.gz"})


def test_slices_land_on_their_index_and_missing_slices_are_zero(reference):
    first, second = torch.ones(24, 20, dtype=torch.uint8), torch.eye(24, 20, dtype=torch.uint8)

    volume = slices_to_volume({2: first, 9: second}, reference, axis=2)

    assert volume.shape == (1, *SHAPE) and volume.dtype == torch.uint8
    assert torch.equal(volume[0, :, :, 2], first) and torch.equal(volume[0, :, :, 9], second)
    assert volume.sum() == first.sum() + second.sum()


def test_volume_carries_copies_of_the_reference_geometry_and_metadata(reference):
    volume = slices_to_volume([(0, torch.ones(20, 12))], reference, axis=0)

    assert torch.equal(volume.affine, reference.affine)
    assert volume.meta["filename_or_obj"] == "ct.nii.gz"
    volume.meta["filename_or_obj"] = "changed"
    assert reference.meta["filename_or_obj"] == "ct.nii.gz"


def test_multi_channel_slices_make_a_multi_channel_volume(reference):
    volume = slices_to_volume({5: torch.ones(3, 24, 12)}, reference, axis=1)
    assert volume.shape == (3, *SHAPE) and volume[:, :, 5, :].all()


def test_no_slices_give_an_empty_mask_volume(reference):
    volume = slices_to_volume({}, reference, axis=2)
    assert volume.shape == (1, *SHAPE) and not volume.any()


@pytest.mark.parametrize(
    ("masks", "message"),
    [
        ({12: torch.ones(24, 20)}, "slice index 12"),
        ({3: torch.ones(20, 24)}, r"mask of slice 3 has shape \(1, 20, 24\)"),
    ],
)
def test_bad_slices_are_data_errors(reference, masks, message):
    with pytest.raises(DataError, match=message):
        slices_to_volume(masks, reference, axis=2)


@pytest.mark.parametrize(
    ("axis", "expected"),
    [
        # axis 2: H = axis 0 (24 rows), W = axis 1 (20 columns)
        (2, [[11.5, 4.5, 7.0], [23.5, 14.5, 7.0]]),
        # axis 0: H = axis 1 (20 rows), W = axis 2 (12 columns)
        (0, [[7.0, 9.5, 2.5], [7.0, 19.5, 8.5]]),
        # axis 1: H = axis 0 (24 rows), W = axis 2 (12 columns)
        (1, [[11.5, 7.0, 2.5], [23.5, 7.0, 8.5]]),
    ],
)
def test_box_corners_in_voxel_coordinates_by_hand(axis, expected):
    box = torch.tensor([0.25, 0.5, 0.75, 1.0])  # x along W, y along H
    corners = box_to_voxel_corners(box, slice_index=7, axis=axis, volume_shape=SHAPE)
    torch.testing.assert_close(corners, torch.tensor(expected, dtype=torch.float64))


def test_world_coordinates_by_hand():
    corners = torch.tensor([[11.5, 4.5, 7.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    expected = torch.tensor(
        [[10 + 11.5 * 0.8, -20 + 4.5 * 1.2, 30 + 7 * 2.5], [10.0, -20.0, 30.0]], dtype=torch.float64
    )
    torch.testing.assert_close(voxel_to_world(corners, AFFINE), expected)


def test_world_coordinates_match_nibabel_on_an_oblique_affine():
    affine = oblique_affine()
    points = torch.rand(2, 5, 3, dtype=torch.float64) * 20
    expected = nib.affines.apply_affine(affine, points.numpy())
    np.testing.assert_allclose(voxel_to_world(points, torch.as_tensor(affine)).numpy(), expected)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_slice_box_corners_and_3d_box_agree_on_a_single_slice_mask(reference, axis):
    height, width = (SHAPE[a] for a in range(3) if a != axis)
    mask = torch.zeros(height, width, dtype=torch.uint8)
    mask[3:7, 2:5] = 1
    volume = slices_to_volume({4: mask}, reference, axis)

    corners = box_to_voxel_corners(mask_to_box(mask)[0], 4, axis, SHAPE)
    voxel_box = box_3d(volume)

    # voxel edges are half a voxel outside the first and last voxel centres
    offset = torch.tensor([[0.5], [-0.5]], dtype=torch.float64)
    offset = offset.expand(2, 3).clone()
    offset[:, axis] = 0.0
    torch.testing.assert_close(corners + offset, voxel_box.to(torch.float64))


def test_box_3d_gives_inclusive_voxel_indices_or_none():
    mask = torch.zeros(*SHAPE)
    assert box_3d(mask) is None
    mask[2, 5:9, 11] = 1
    mask[6, 7, 3] = 1
    assert box_3d(mask).tolist() == [[2, 5, 3], [6, 8, 11]]


def test_volume_in_millilitres_uses_the_voxel_size():
    mask = torch.zeros(1, 10, 10, 20)
    mask[0, :, :, :10] = 1  # 1000 voxels
    affine = torch.diag(torch.tensor([0.5, 2.0, 3.0, 1.0], dtype=torch.float64))  # 3 mm^3 per voxel

    assert volume_ml(mask, affine) == pytest.approx(3.0)
    assert volume_ml(mask, torch.as_tensor(oblique_affine())) == pytest.approx(1000 * 0.8 * 1.2 * 2.5 / 1000)


@pytest.mark.parametrize("seed", range(6))
def test_box_and_volume_taken_slab_by_slab_are_those_of_the_whole_mask(monkeypatch, seed):
    monkeypatch.setattr(transforms.reassemble, "SLAB_VOXELS", 40)  # many slabs
    generator = torch.Generator().manual_seed(seed)
    mask = (torch.rand(2, 9, 7, 13, generator=generator) < 0.01 * (seed + 1)).to(torch.uint8)
    start, end = generate_spatial_bounding_box(mask)
    expected = None if start == end else [list(start), [e - 1 for e in end]]
    assert (None if box_3d(mask) is None else box_3d(mask).tolist()) == expected
    voxels = int(torch.count_nonzero(mask > 0))  # every channel's voxels count
    assert volume_ml(mask, torch.eye(4, dtype=torch.float64)) == pytest.approx(voxels / 1000)
