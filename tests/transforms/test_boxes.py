"""Boxes: pixel-edge normalised xyxy from masks (x along W), empty masks flagged, mode conversions."""

from __future__ import annotations

import pytest
import torch

from common.errors import DataError
from transforms import (
    mask_to_box,
    masks_to_boxes,
    normalised_to_pixel,
    pixel_to_normalised,
)

HEIGHT, WIDTH = 5, 8


def test_single_pixel_box_spans_that_pixel():
    mask = torch.zeros(HEIGHT, WIDTH)
    mask[2, 3] = 1  # row 2 (y), column 3 (x)

    box, empty = mask_to_box(mask)

    assert not empty
    torch.testing.assert_close(box, torch.tensor([3 / WIDTH, 2 / HEIGHT, 4 / WIDTH, 3 / HEIGHT]))


def test_full_mask_is_the_unit_box():
    box, empty = mask_to_box(torch.ones(HEIGHT, WIDTH, dtype=torch.bool))
    assert not empty
    torch.testing.assert_close(box, torch.tensor([0.0, 0.0, 1.0, 1.0]))


def test_empty_mask_is_flagged_with_a_zero_box():
    box, empty = mask_to_box(torch.zeros(HEIGHT, WIDTH, dtype=torch.uint8))
    assert empty
    assert torch.equal(box, torch.zeros(4))


def test_batch_matches_single_masks_and_flags_only_empty_ones():
    masks = torch.zeros(3, HEIGHT, WIDTH)
    masks[0, 1:4, 0:2] = 1
    masks[2, 4, 7] = 1

    boxes, empty = masks_to_boxes(masks)

    assert empty.tolist() == [False, True, False]
    torch.testing.assert_close(boxes[0], torch.tensor([0.0, 1 / HEIGHT, 2 / WIDTH, 4 / HEIGHT]))
    torch.testing.assert_close(boxes[2], torch.tensor([7 / WIDTH, 4 / HEIGHT, 1.0, 1.0]))
    for row in range(3):
        assert torch.equal(boxes[row], mask_to_box(masks[row])[0])


def test_an_empty_batch_gives_no_boxes():
    boxes, empty = masks_to_boxes(torch.zeros(0, HEIGHT, WIDTH))
    assert boxes.shape == (0, 4) and empty.shape == (0,)


def test_wrong_mask_shapes_are_data_errors():
    with pytest.raises(DataError, match=r"\(H, W\)"):
        mask_to_box(torch.zeros(1, HEIGHT, WIDTH))
    with pytest.raises(DataError, match=r"\(N, H, W\)"):
        masks_to_boxes(torch.zeros(HEIGHT, WIDTH))


def test_normalised_and_pixel_boxes_convert_both_ways():
    box = torch.tensor([[0.25, 0.2, 0.5, 0.6]])
    pixel = normalised_to_pixel(box, HEIGHT, WIDTH)
    torch.testing.assert_close(pixel, torch.tensor([[2.0, 1.0, 4.0, 3.0]]))
    torch.testing.assert_close(pixel_to_normalised(pixel, HEIGHT, WIDTH), box)


@pytest.mark.parametrize("seed", range(20))
def test_box_matches_the_extreme_foreground_pixels_of_random_masks(seed):
    generator = torch.Generator().manual_seed(seed)
    height, width = torch.randint(1, 10, (2,), generator=generator).tolist()
    mask = torch.rand(height, width, generator=generator) > 0.7

    box, empty = mask_to_box(mask)

    assert empty == (not mask.any())
    if not empty:
        rows, cols = mask.nonzero().unbind(dim=1)
        expected = [cols.min() / width, rows.min() / height, (cols.max() + 1) / width, (rows.max() + 1) / height]
        torch.testing.assert_close(box, torch.tensor(expected, dtype=torch.float32))
