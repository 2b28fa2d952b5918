"""Results of an unevenly spaced DICOM stack come from each slice's true position (bundle.inference.grids).

The expected values are computed here from the slice positions alone: each slice spans from
halfway to its previous neighbour to halfway to its next (the end slices as far out as their one
neighbour step), so a gap widens the slices beside it instead of shifting every slice after it.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from bundle.inference import DescribeTargetd
from bundle.inference import keys as K
from bundle.inference.grids import FileGrid, StackGrid, file_grid
from bundle.inference.inferer import SlicePrediction
from transforms.dicom_reader import SLICE_ORIGINS

SHAPE = (8, 6, 5)
SPACING = (0.7, 0.9)
DEPTHS = np.array([0.0, 2.5, 5.0, 12.5, 15.0])
"""Slice positions along the normal (mm): a gap of two missing slices after the third."""
ORIGIN = np.array([10.0, -20.0, 30.0])


def nominal_affine() -> np.ndarray:
    affine = np.diag([-SPACING[0], -SPACING[1], float(np.median(np.diff(DEPTHS))), 1.0])  # LPS-like flips
    affine[:3, 3] = ORIGIN
    return affine


def origins() -> np.ndarray:
    return ORIGIN + DEPTHS[:, None] * np.array([0.0, 0.0, 1.0])


def thickness() -> np.ndarray:
    """Each slice's extent along the normal, from the positions (the module docstring's rule)."""
    edges = np.concatenate([[DEPTHS[0] - (DEPTHS[1] - DEPTHS[0]) / 2], (DEPTHS[:-1] + DEPTHS[1:]) / 2])
    edges = np.append(edges, DEPTHS[-1] + (DEPTHS[-1] - DEPTHS[-2]) / 2)
    return np.diff(edges)


@pytest.fixture
def grid() -> StackGrid:
    return StackGrid(torch.from_numpy(nominal_affine()), torch.from_numpy(origins()))


def test_every_slice_centre_is_at_its_own_position_and_world_to_voxel_inverts_it(grid):
    for k, origin in enumerate(origins()):
        np.testing.assert_allclose(grid.to_world(torch.tensor([0.0, 0.0, float(k)])).numpy(), origin)
    voxels = torch.tensor([[1.5, -0.5, 2.7], [7.0, 5.0, -0.5], [3.0, 2.0, 4.5], [0.25, 4.0, 3.2]], dtype=torch.float64)
    torch.testing.assert_close(grid.to_voxels(grid.to_world(voxels)), voxels)


def test_the_volume_weighs_each_slice_by_its_own_thickness(grid):
    mask = torch.zeros(1, *SHAPE, dtype=torch.uint8)
    counts = [3, 0, 5, 7, 2]
    for k, count in enumerate(counts):
        mask[0, :count, 0, k] = 1
    expected = float(np.dot(counts, thickness()) * SPACING[0] * SPACING[1]) / 1000.0
    assert grid.volume_ml(mask) == pytest.approx(expected)
    assert FileGrid(torch.from_numpy(nominal_affine())).volume_ml(mask) != pytest.approx(expected)


def test_the_target_description_uses_the_true_positions(grid):
    affine = torch.from_numpy(nominal_affine())
    image = MetaTensor(torch.zeros(1, *SHAPE), affine=affine, meta={SLICE_ORIGINS: origins()})
    mask = MetaTensor(torch.zeros(1, *SHAPE, dtype=torch.uint8), affine=affine)
    mask[0, 2:4, 1:3, 2:4] = 1  # slices 2 and 3: the two beside the gap
    box = torch.tensor([0.0, 0.0, 1.0, 1.0])
    data = {K.PRED: mask, K.IMAGE: image, K.SLICES: [SlicePrediction(index=3, box=box, score=0.9, pixels=4)]}
    result = DescribeTargetd(slice_axis=2)(data)[K.RESULT]
    assert isinstance(file_grid(mask, image), StackGrid)
    # the 3D box runs from halfway below slice 2 to halfway above slice 3, in true positions
    z_min, z_max = result["box_3d"]["world"][0][2], result["box_3d"]["world"][1][2]
    assert (z_min, z_max) == pytest.approx((ORIGIN[2] + 3.75, ORIGIN[2] + 13.75))
    # the slice box lies on slice 3's own plane, 12.5 mm up (a regular grid would say 7.5)
    assert result["slices"][0]["box_world"][0][2] == pytest.approx(ORIGIN[2] + 12.5)
    expected = 4 * SPACING[0] * SPACING[1] * (thickness()[2] + thickness()[3]) / 1000.0
    assert result["volume_ml"] == pytest.approx(expected, abs=1e-3)
