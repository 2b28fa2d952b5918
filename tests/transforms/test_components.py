"""Connected components found slab by slab are the whole mask's, and the clean-up keeps MONAI's voxels."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import KeepLargestConnectedComponent, RemoveSmallObjects
from scipy import ndimage

from transforms.cleanup import TargetMaskCleanup
from transforms.components import keep_components, label_components

SHAPE = (14, 11, 9)
TWO_PLANES = SHAPE[1] * SHAPE[2] * 2


def random_mask(seed: int, density: float = 0.3) -> np.ndarray:
    return (np.random.default_rng(seed).random(SHAPE) < density).astype(np.uint8)


def whole_mask_reference(mask: np.ndarray, connectivity: int, at_most: int, only_largest: bool) -> np.ndarray:
    labels, _ = ndimage.label(mask, structure=ndimage.generate_binary_structure(3, connectivity))
    sizes = np.bincount(labels.ravel())
    keep = sizes > at_most
    if only_largest:
        best = int(np.argmax(np.where(keep, sizes, -1)[1:])) + 1  # the first of the largest, in memory order
        keep = (np.arange(sizes.size) == best) & keep
    keep[0] = False
    return keep[labels].astype(mask.dtype)


@pytest.mark.parametrize("connectivity", [1, 2, 3])
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("slab_voxels", [1, TWO_PLANES, 1 << 20])
def test_components_found_slab_by_slab_keep_the_whole_masks_voxels(connectivity, seed, slab_voxels):
    mask = random_mask(seed)
    sizes = np.bincount(ndimage.label(mask, ndimage.generate_binary_structure(3, connectivity))[0].ravel())[1:]
    for at_most in sorted({0, 1, 2, int(np.median(sizes)), int(sizes.max())}):
        for only_largest in (False, True):
            out = mask.copy()
            keep_components(out, label_components(out, connectivity, slab_voxels), at_most, only_largest)
            expected = whole_mask_reference(mask, connectivity, at_most, only_largest)
            assert np.array_equal(out, expected), (at_most, only_largest)


def test_equally_large_components_keep_the_first_in_memory_order():
    mask = np.zeros(SHAPE, dtype=np.uint8)
    mask[1:3, 1:3, 1:3] = 1
    mask[9:11, 5:7, 5:7] = 1  # as large, in a later slab
    out = mask.copy()
    keep_components(out, label_components(out, 3, TWO_PLANES), only_largest=True)
    assert int(out.sum()) == 8 and int(out[1:3, 1:3, 1:3].sum()) == 8


def monai_cleanup(mask: MetaTensor, min_ml: float, connectivity: int) -> torch.Tensor:
    removed = RemoveSmallObjects(min_size=min_ml * 1000, connectivity=connectivity, by_measure=True)(mask)
    return torch.as_tensor(KeepLargestConnectedComponent(applied_labels=[1], connectivity=connectivity)(removed))


@pytest.mark.parametrize("connectivity", [1, 3])
@pytest.mark.parametrize("seed", [3, 4, 5, 6])
def test_the_cleanup_keeps_the_voxels_monais_transforms_keep(connectivity, seed):
    mask = MetaTensor(torch.from_numpy(random_mask(seed, 0.25))[None], affine=torch.diag(torch.tensor([2.0, 2, 5, 1])))
    sizes = np.bincount(ndimage.label(mask[0].numpy(), ndimage.generate_binary_structure(3, connectivity))[0].ravel())
    assert np.sort(sizes[1:])[-1] > np.sort(sizes[1:])[-2], "a unique largest component: MONAI breaks ties at random"
    for min_ml in (0.0, 0.05, 0.1):
        ours = TargetMaskCleanup(fill_gaps=False, min_volume_ml=min_ml, connectivity=connectivity)(mask)
        assert torch.equal(ours.as_tensor(), monai_cleanup(mask, min_ml, connectivity).to(ours.dtype))
        findings = TargetMaskCleanup(fill_gaps=False, min_volume_ml=min_ml, connectivity=connectivity)(mask, False)
        expected = RemoveSmallObjects(min_size=min_ml * 1000, connectivity=connectivity, by_measure=True)(mask)
        assert torch.equal(findings.as_tensor(), torch.as_tensor(expected).to(findings.dtype))


def test_the_cleanup_writes_into_the_given_mask_only_when_asked():
    mask = MetaTensor(torch.from_numpy(random_mask(7))[None], affine=torch.eye(4))
    before = mask.clone()
    copy = TargetMaskCleanup()(mask)
    assert copy is not mask and torch.equal(mask, before)
    same = TargetMaskCleanup(in_place=True)(mask)
    assert same is mask and torch.equal(same, copy) and not torch.equal(mask, before)
