"""Property-based geometry checks over random affines, orientations and shapes (hypothesis).

The example-based tests pin known cases; these search for the odd ones: one-voxel axes, flips
and permutations of every kind, oblique grids, anisotropic spacing, boxes touching the edges.
"""

from __future__ import annotations

import itertools
import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bundle.inference.geometry import FileGrid
from tests.helpers.volumes import to_file_grid, write_nifti
from transforms import (
    box_3d,
    box_to_voxel_corners,
    iter_slices,
    load_volume,
    mask_to_box,
    normalised_to_pixel,
    slices_to_volume,
    voxel_to_world,
)

pytestmark = pytest.mark.filterwarnings("ignore:builtin type .* has no __module__ attribute:DeprecationWarning")

EXAMPLES = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
AFFINE_ATOL = 1e-4  # NIfTI stores the sform in float32
AXCODES = ("RAS", "LPS", "LAS", "PLI", "SRA")
MAX_TILT = 0.4
"""Largest rotation (radians) of an oblique grid about each world axis."""


def rotation(angles: tuple[float, float, float]) -> np.ndarray:
    """Rotation about x, then y, then z by ``angles``."""
    out = np.eye(3)
    for axis, angle in enumerate(angles):
        c, s = math.cos(angle), math.sin(angle)
        turn = np.eye(3)
        i, j = [k for k in range(3) if k != axis]
        turn[i, i], turn[i, j], turn[j, i], turn[j, j] = c, -s, s, c
        out = turn @ out
    return out


@st.composite
def affines(draw) -> np.ndarray:
    """Voxel -> RAS affines: any axis permutation and flips, anisotropic spacing, oblique or not, any origin."""
    order = draw(st.permutations([0, 1, 2]))
    signs = draw(st.lists(st.sampled_from([-1.0, 1.0]), min_size=3, max_size=3))
    spacing = draw(st.lists(st.floats(0.3, 5.0), min_size=3, max_size=3))
    oblique = draw(st.booleans())
    angles = tuple(draw(st.floats(-MAX_TILT, MAX_TILT)) for _ in range(3)) if oblique else (0.0, 0.0, 0.0)
    permute = np.zeros((3, 3))
    for voxel_axis, world_axis in enumerate(order):
        permute[world_axis, voxel_axis] = signs[voxel_axis]
    affine = np.eye(4)
    affine[:3, :3] = rotation(angles) @ permute @ np.diag(spacing)
    affine[:3, 3] = draw(st.lists(st.floats(-200.0, 200.0), min_size=3, max_size=3))
    return affine


shapes = st.tuples(st.integers(1, 7), st.integers(1, 7), st.integers(1, 6))


@EXAMPLES
@given(
    affine=affines(), shape=shapes, axcodes=st.sampled_from(AXCODES), axis=st.integers(0, 2), seed=st.integers(0, 99)
)
def test_reorienting_slicing_and_going_back_restores_the_file(affine, shape, axcodes, axis, seed):
    array = np.random.default_rng(seed).integers(0, 5, size=shape).astype(np.int16)
    with tempfile.TemporaryDirectory() as folder:
        source = write_nifti(Path(folder) / "image.nii.gz", array, affine)
        volume = load_volume(source, axcodes=axcodes)
    slices = {item["slice_index"]: item["image"][0].to(torch.int16) for item in iter_slices(volume, axis)}
    back = to_file_grid(slices_to_volume(slices, volume, axis), volume)
    assert tuple(back.shape[1:]) == shape
    np.testing.assert_allclose(back.affine.numpy(), affine, atol=AFFINE_ATOL)
    np.testing.assert_array_equal(back[0].numpy(), array)


@EXAMPLES
@given(affine=affines(), points=st.lists(st.floats(-50.0, 50.0), min_size=6, max_size=6))
def test_voxel_to_world_and_back_is_the_identity(affine, points):
    voxels = torch.tensor(points, dtype=torch.float64).reshape(2, 3)
    world = voxel_to_world(voxels, torch.from_numpy(affine))
    torch.testing.assert_close(voxel_to_world(world, torch.linalg.inv(torch.from_numpy(affine))), voxels)


@EXAMPLES
@given(affine=affines(), corners=st.lists(st.floats(-20.0, 20.0), min_size=6, max_size=6))
def test_a_world_box_lands_on_its_ordered_voxel_corners(affine, corners):
    voxels = torch.tensor(corners, dtype=torch.float64).reshape(2, 3)
    box = FileGrid(torch.from_numpy(affine)).box(voxel_to_world(voxels, torch.from_numpy(affine)))
    ordered = torch.stack([voxels.min(dim=0).values, voxels.max(dim=0).values])
    np.testing.assert_allclose(box["voxel"], ordered.numpy(), atol=1e-3)
    # the world box is axis-aligned in RAS, min to max, around the voxel box's eight corners
    eight = torch.tensor(
        [[ordered[c, axis] for axis, c in enumerate(pick)] for pick in itertools.product((0, 1), repeat=3)]
    )
    world = voxel_to_world(eight, torch.from_numpy(affine)).numpy()
    np.testing.assert_allclose(box["world"], [world.min(axis=0), world.max(axis=0)], atol=1e-3)
    assert (np.diff(box["world"], axis=0) >= 0).all()


@EXAMPLES
@given(affine=affines(), corners=st.lists(st.floats(-20.0, 20.0), min_size=18, max_size=18))
def test_boxes_of_many_slices_at_once_are_each_slices_own_box(affine, corners):
    grid = FileGrid(torch.from_numpy(affine))
    world = voxel_to_world(torch.tensor(corners, dtype=torch.float64).reshape(3, 2, 3), torch.from_numpy(affine))
    assert grid.boxes(world) == [grid.box(one) for one in world]


@st.composite
def boxes_in_slices(draw) -> tuple[int, int, tuple[int, int, int, int]]:
    """(H, W, (r0, c0, r1, c1)): a slice size and a box of whole pixels inside it, ends exclusive."""
    height, width = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    r0, c0 = draw(st.integers(0, height - 1)), draw(st.integers(0, width - 1))
    r1, c1 = draw(st.integers(r0 + 1, height)), draw(st.integers(c0 + 1, width))
    return height, width, (r0, c0, r1, c1)


@EXAMPLES
@given(case=boxes_in_slices())
def test_a_rectangular_mask_gives_back_its_box(case):
    height, width, (r0, c0, r1, c1) = case
    mask = torch.zeros(height, width, dtype=torch.uint8)
    mask[r0:r1, c0:c1] = 1
    box, empty = mask_to_box(mask)
    assert not empty
    torch.testing.assert_close(
        normalised_to_pixel(box, height, width), torch.tensor([c0, r0, c1, r1], dtype=torch.float32)
    )


@EXAMPLES
@given(case=boxes_in_slices(), depth=st.integers(1, 5), axis=st.integers(0, 2), data=st.data())
def test_a_slice_box_and_the_3d_box_of_its_mask_agree_in_voxels(case, depth, axis, data):
    height, width, (r0, c0, r1, c1) = case
    index = data.draw(st.integers(0, depth - 1))
    shape = [0, 0, 0]
    rows, columns = [a for a in range(3) if a != axis]
    shape[axis], shape[rows], shape[columns] = depth, height, width
    volume = torch.zeros(shape, dtype=torch.uint8)
    region = [slice(None)] * 3
    region[axis], region[rows], region[columns] = index, slice(r0, r1), slice(c0, c1)
    volume[tuple(region)] = 1
    box, _ = mask_to_box(volume.select(axis, index))
    corners = box_to_voxel_corners(box, index, axis, shape)
    found = box_3d(volume).to(torch.float64)
    edges = found + torch.tensor([[-0.5], [0.5]], dtype=torch.float64)
    edges[:, axis] = float(index)  # a slice box is flat along the slicing axis
    torch.testing.assert_close(corners, edges)
