"""A mask on a sheared (tilted-gantry) grid, written on an unsheared one that every NIfTI reader places alike."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from bundle.inference.writers import SaveMaskd
from tests.helpers import dicom as D
from tests.helpers.volumes import itk_affine
from transforms.dicom_series import plan_series
from transforms.shear import is_sheared, unshear

pytestmark = pytest.mark.filterwarnings("ignore:builtin type:DeprecationWarning")  # ITK's SWIG bindings

SHAPE = (12, 10, 9)
TILT = 15.0


@pytest.fixture(scope="module")
def tilted_affine(tmp_path_factory) -> np.ndarray:
    """The RAS affine of a 15-degree gantry-tilt series, as the series rules give it."""
    folder = tmp_path_factory.mktemp("tilt")
    array = np.zeros(SHAPE, np.int16)
    datasets = D.write_series(folder, array, D.tilted_positions(SHAPE[2], TILT), D.tilted_orientation(TILT))
    return plan_series(datasets, [ds.filename for ds in datasets], "tilt").affine()


def test_each_voxel_of_the_unsheared_grid_holds_the_source_pixel_nearest_it(tilted_affine):
    mask = torch.from_numpy(np.random.default_rng(0).integers(0, 2, size=(1, *SHAPE)).astype(np.uint8))
    out = unshear(MetaTensor(mask, affine=torch.from_numpy(tilted_affine)))
    target = out.affine.numpy()
    assert is_sheared(tilted_affine) and not is_sheared(target)
    assert out.shape[3] == SHAPE[2] and out.shape[2] > SHAPE[1]  # widened along the tilt
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in out.shape[1:]], indexing="ij"), -1).reshape(-1, 3)
    source = (np.linalg.inv(tilted_affine) @ target @ np.c_[grid, np.ones(len(grid))].T).T[:, :3]
    nearest = np.rint(source).astype(int)
    inside = np.all((nearest >= 0) & (nearest < SHAPE), axis=1)
    expected = np.zeros(len(grid), np.uint8)
    expected[inside] = mask[0].numpy()[tuple(nearest[inside].T)]
    np.testing.assert_array_equal(out[0].numpy().reshape(-1), expected)
    # nearest is near: less than half a pixel in-plane, exactly on the slice
    offsets = (tilted_affine[:3, :3] @ (nearest - source).T).T
    assert np.abs(source[:, 2] - nearest[:, 2]).max() < 1e-9
    assert np.linalg.norm(offsets, axis=1).max() <= 0.5 * np.linalg.norm(tilted_affine[:3, :2], axis=0).max() + 1e-9
    assert int(out.sum()) == int(mask.sum()), "each slice moves by whole pixels: no voxel lost or doubled"


def test_itk_reads_the_unsheared_mask_as_nibabel_does_and_would_misplace_a_sheared_one(tilted_affine, tmp_path):
    mask = MetaTensor(torch.ones(1, *SHAPE, dtype=torch.uint8), affine=torch.from_numpy(tilted_affine))
    far_corner = np.array([SHAPE[0] - 1, SHAPE[1] - 1, SHAPE[2] - 1, 1.0])
    sheared, unsheared = tmp_path / "sheared.nii.gz", tmp_path / "unsheared.nii.gz"
    nib.save(SaveMaskd.nifti(mask), sheared)
    nib.save(SaveMaskd.nifti(unshear(mask)), unsheared)
    # why: ITK drops the shear of the sform and places the far corner well over a millimetre off
    assert np.linalg.norm((itk_affine(sheared) - nib.load(sheared).affine) @ far_corner) > 1.0
    np.testing.assert_allclose(itk_affine(unsheared), nib.load(unsheared).affine, atol=1e-4)
