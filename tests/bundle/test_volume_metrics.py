"""Volume-level metrics against values worked out by hand on cubes and spheres."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bundle.handlers import volume_table
from bundle.metrics.volumes import OUTSIDE_GROUP, best_presence_threshold, group_summary, summarize, volume_record

SHAPE = (16, 16, 16)


def cube(start: int, size: int = 10, axis: int = 2) -> torch.Tensor:
    mask = torch.zeros(SHAPE, dtype=torch.bool)
    index = [slice(3, 13)] * 3
    index[axis] = slice(start, start + size)
    mask[tuple(index)] = True
    return mask


def sphere(radius: float) -> torch.Tensor:
    grid = torch.stack(torch.meshgrid(*[torch.arange(s, dtype=torch.float64) for s in SHAPE], indexing="ij"))
    centre = torch.tensor([7.5, 7.5, 7.5], dtype=torch.float64)[:, None, None, None]
    return ((grid - centre) ** 2).sum(dim=0).sqrt() <= radius


def record(pred, truth, spacing=(1.0, 1.0, 1.0), **kw):
    defaults = dict(volume="v", label="liver", kind="label", outside=False)
    return volume_record(**(defaults | kw), pred=pred, truth=truth, spacing=spacing, slice_axis=2)


def test_two_cubes_two_slices_apart():
    # truth on slices 2..11, prediction on 4..13: 8 of 10 slices overlap
    r = record(cube(4), cube(2), spacing=(1.0, 1.0, 2.0))
    assert r.dice == pytest.approx(2 * 800 / 2000)
    assert r.hd95 == pytest.approx(4.0), "faces 2 slices of 2 mm apart"
    assert r.volume_error_ml == 0.0
    summary = group_summary([r])
    assert summary["slice_f1"] == pytest.approx(2 * 8 / (10 + 10))
    assert summary["slice_precision"] == pytest.approx(0.8) and summary["slice_recall"] == pytest.approx(0.8)
    assert summary["target_free_slices_with_mask"] == pytest.approx(2 / 6, abs=1e-4)


def test_concentric_spheres():
    big, small = sphere(6.0), sphere(5.0)
    r = record(small, big, spacing=(1.0, 1.0, 1.0))
    p, g = int(small.sum()), int(big.sum())
    assert r.dice == pytest.approx(2 * p / (p + g))
    assert 0.9 <= r.hd95 <= 1.5 and 0.5 <= r.msd <= 1.5, "one voxel between the surfaces"
    assert r.volume_error_ml == pytest.approx((g - p) / 1000)


def test_a_missed_target_has_dice_zero_and_no_distance():
    r = record(torch.zeros(SHAPE, dtype=torch.bool), cube(2))
    assert r.dice == 0.0 and r.hd95 is None and not r.found
    assert group_summary([r])["missed"] == 1


def test_absent_targets_count_when_reported_and_auroc_reads_the_scores():
    truth = cube(2)
    scores = {z: (0.9 if 2 <= z < 12 else 0.1) for z in range(SHAPE[2])}
    present = volume_record("v", "liver", "label", False, truth, truth, (1.0,) * 3, 2, scores)
    absent = record(cube(2, size=1), torch.zeros(SHAPE, dtype=torch.bool), label="renal cyst")
    clean = record(torch.zeros(SHAPE, dtype=torch.bool), torch.zeros(SHAPE, dtype=torch.bool), label="heart",
                   outside=True)  # fmt: skip
    summary = summarize([present, absent, clean])
    assert summary["overall"]["absent_reported_found"] == pytest.approx(0.5)
    assert summary["labels"]["renal cyst"]["absent_reported_found"] == 1.0
    assert summary["labels"][OUTSIDE_GROUP]["absent_reported_found"] == 0.0
    assert summary["labels"]["liver"]["presence_auroc"] == 1.0 and summary["labels"]["liver"]["dice_3d"] == 1.0
    assert summary["labels"]["renal cyst"]["dice_3d"] is None
    assert np.isnan(absent.slice_presence).all()
    table = volume_table(summary)
    assert "| renal cyst | 1 |" in table and "| all | 3 |" in table


def test_the_best_threshold_separates_slices_with_and_without_the_target():
    truth = cube(2)
    scores = {z: (0.8 if 2 <= z < 12 else 0.3) for z in range(SHAPE[2])}
    scores[5] = 0.2  # one slice with the target scores below every other: the best cut leaves it out
    record = volume_record("v", "liver", "label", False, truth, truth, (1.0,) * 3, 2, scores)
    assert best_presence_threshold([record]) == 0.8
    assert summarize([record])["best_presence_threshold"] == 0.8


def test_follow_up_turns_get_rows_of_their_own():
    truth = cube(2)
    single = volume_record("v", "liver", "label", False, truth, truth, (1.0,) * 3, 2)
    assert "turns" not in summarize([single])
    missed = volume_record("v", "left kidney", "follow_up", False, torch.zeros_like(truth), truth, (1.0,) * 3, 2)
    missed.turn = 2
    summary = summarize([single, missed])
    assert summary["turns"]["1"]["dice_3d"] == 1.0 and summary["turns"]["2"]["dice_3d"] == 0.0
    assert summary["kinds"]["follow_up"]["missed"] == 1
