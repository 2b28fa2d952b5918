"""2D boxes: from masks, and between normalised and pixel xyxy forms.

Convention (the one MediSee's box head and the MLMR-SD ``bbox`` field use): x runs along W
(columns), y along H (rows), and coordinates are pixel *edges*, normalised by the slice size. A
mask covering columns c0..c1 and rows r0..r1 has the box
``(c0 / W, r0 / H, (c1 + 1) / W, (r1 + 1) / H)``, so a full mask is (0, 0, 1, 1).
"""

from __future__ import annotations

import torch
from monai.transforms import BoundingRect

from common.errors import DataError

BOX_SIZE = 4


def masks_to_boxes(masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised xyxy boxes of (N, H, W) masks (foreground = values > 0).

    Args:
        masks: N masks of one size.

    Returns:
        ``boxes`` (N, 4) float32 and ``empty`` (N,) bool; an empty mask gets an all-zero box and
        ``empty = True`` (not an exception: empty targets are normal in slice data).

    Raises:
        DataError: ``masks`` is not (N, H, W).
    """
    if masks.ndim != 3:
        raise DataError(f"masks must be (N, H, W), got shape {tuple(masks.shape)}")
    height, width = masks.shape[-2:]
    boxes = torch.zeros(masks.shape[0], BOX_SIZE, dtype=torch.float32, device=masks.device)
    if masks.shape[0] == 0:
        return boxes, torch.zeros(0, dtype=torch.bool, device=masks.device)
    # BoundingRect treats the N masks as channels: rows (r0, r1_end, c0, c1_end), ends exclusive
    edges = torch.as_tensor(BoundingRect()(masks), device=masks.device)
    row_start, row_end, col_start, col_end = edges.unbind(dim=1)
    empty = row_end == row_start
    pixel = torch.stack([col_start, row_start, col_end, row_end], dim=1).to(torch.float32)
    boxes[~empty] = pixel_to_normalised(pixel[~empty], height, width)
    return boxes, empty


def mask_to_box(mask: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """Normalised xyxy box (4,) of one (H, W) mask and whether the mask is empty (box all zeros).

    Raises:
        DataError: ``mask`` is not (H, W).
    """
    if mask.ndim != 2:
        raise DataError(f"a mask must be (H, W), got shape {tuple(mask.shape)}")
    boxes, empty = masks_to_boxes(mask[None])
    return boxes[0], bool(empty[0])


def _size_scale(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(W, H, W, H) as a tensor matching ``boxes``."""
    return torch.tensor([width, height, width, height], dtype=boxes.dtype, device=boxes.device)


def normalised_to_pixel(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(..., 4) normalised xyxy boxes -> pixel-edge xyxy boxes of an (H, W) slice."""
    return boxes * _size_scale(boxes, height, width)


def pixel_to_normalised(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(..., 4) pixel-edge xyxy boxes of an (H, W) slice -> normalised xyxy boxes."""
    return boxes / _size_scale(boxes, height, width)
