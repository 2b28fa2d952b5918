"""The 3D clean-up of a volume's mask: one-slice gaps, small objects, a single structure's largest piece."""

from __future__ import annotations

import pytest
import torch
from monai.data import MetaTensor

from networks import ConfigError
from transforms.cleanup import TargetMaskCleanup, fill_slice_gaps_

SPACING = (2.0, 2.0, 5.0)  # mm: a voxel is 0.02 mL


def volume(*boxes, shape=(12, 12, 10), axis_order=(0, 1, 2)):
    mask = torch.zeros((1, *shape), dtype=torch.uint8)
    for box in boxes:
        mask[(0, *box)] = 1
    return MetaTensor(mask, affine=torch.diag(torch.tensor([*SPACING, 1.0], dtype=torch.float64)))


def test_a_one_slice_gap_is_filled_where_both_neighbours_hold_the_target():
    mask = volume((slice(2, 6), slice(2, 6), slice(1, 3)), (slice(3, 6), slice(2, 6), slice(4, 6)))
    filled = fill_slice_gaps_(mask.as_tensor().clone(), 2)
    gap = filled[0, :, :, 3]
    assert bool(gap[3:6, 2:6].all()) and int(gap.sum()) == 12, "the overlap of slices 2 and 4 only"
    assert torch.equal(filled[0, :, :, [0, 9]], mask.as_tensor()[0, :, :, [0, 9]]), "border slices never grow"


def test_a_two_slice_gap_stays_open_and_other_axes_are_not_closed():
    mask = volume((slice(2, 6), slice(2, 6), slice(1, 3)), (slice(2, 6), slice(2, 6), slice(5, 7)))
    assert torch.equal(fill_slice_gaps_(mask.as_tensor().clone(), 2), mask.as_tensor())
    holes = volume((slice(2, 3), slice(2, 6), slice(1, 5)), (slice(4, 5), slice(2, 6), slice(1, 5)))
    assert torch.equal(fill_slice_gaps_(holes.as_tensor().clone(), 2), holes.as_tensor()), "no closing across x"
    along_x = fill_slice_gaps_(holes.as_tensor().clone(), 0)
    assert int(along_x[0, 3].sum()) == 16


def test_small_objects_go_by_their_volume_in_millilitres():
    big, small = (slice(2, 6), slice(2, 6), slice(2, 5)), (slice(9, 11), slice(9, 10), slice(8, 9))  # 0.96, 0.04 mL
    cleaned = TargetMaskCleanup(fill_gaps=False, min_volume_ml=0.05, keep_largest=False)(volume(big, small))
    assert int(cleaned.sum()) == 48 and int(cleaned[0, 9, 9, 8]) == 0
    kept = TargetMaskCleanup(fill_gaps=False, min_volume_ml=0.01, keep_largest=False)(volume(big, small))
    assert int(kept.sum()) == 50


def test_a_single_structure_keeps_its_largest_piece_and_findings_keep_all():
    pieces = volume((slice(0, 4), slice(0, 4), slice(0, 4)), (slice(8, 10), slice(8, 10), slice(6, 9)))
    cleanup = TargetMaskCleanup(fill_gaps=False, min_volume_ml=0.0)
    assert int(cleanup(pieces, single_structure=True).sum()) == 64
    assert int(cleanup(pieces, single_structure=False).sum()) == 76


def test_cleanup_keeps_dtype_grid_and_empty_masks():
    empty = volume()
    assert TargetMaskCleanup()(empty) is empty
    mask = volume((slice(2, 6), slice(2, 6), slice(2, 6)))
    out = TargetMaskCleanup()(mask)
    assert out.dtype == mask.dtype and out.shape == mask.shape and torch.equal(out.affine, mask.affine)


def test_a_negative_minimum_volume_is_a_config_error():
    with pytest.raises(ConfigError, match="min_target_ml"):
        TargetMaskCleanup(min_volume_ml=-1)
