"""``DescribeTargetd``: where the predicted target is, in the input file's voxels and in world mm.

Voxel coordinates are continuous indices of the *input file's* grid (voxel centres at integers),
and boxes give their edges: a box covering voxels 3..7 spans 2.5..7.5. World coordinates are
RAS millimetres (the affine's frame; DICOM's LPS is converted: x and y negated). A box is given by
its two corners ``[[min], [max]]``: in voxels, and in world mm as the axis-aligned RAS box around
it (:mod:`bundle.inference.grids`; for an unevenly spaced DICOM stack, from each slice's own position).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import torch
from monai.data import MetaTensor
from monai.transforms import MapTransform

from bundle.inference import keys as K
from bundle.inference.grids import FileGrid, file_grid
from bundle.inference.inferer import SlicePrediction
from transforms.reassemble import PIXEL_CENTRE_OFFSET, box_3d, box_to_voxel_corners
from transforms.slicing import check_axis

SCORE_DECIMALS = 4
VOLUME_DECIMALS = 3


def _rounded_score(score: float | None) -> float | None:
    """A probability for the JSON (None stays null: a model without a rejection token has no presence score)."""
    return None if score is None else round(score, SCORE_DECIMALS)


class DescribeTargetd(MapTransform):
    """Adds ``result``: each target slice's box and score, the 3D box and the volume of the mask.

    Expects the mask under ``mask_key`` already on the file's grid (after ``Invertd``), the loaded
    volume under ``image_key`` (the grid the slices were taken from) and the slice predictions
    (those holding the target under ``slices_key``, every processed slice's under ``predictions_key``).
    ``found`` says whether any slice holds the target; ``presence`` lists every processed slice's
    presence score (null scores for a model without a rejection token).

    Args:
        slice_axis: the axis the slices were taken along (of the loaded volume).
        mask_key: the (1, X, Y, Z) mask on the file's grid.
        image_key: the loaded (C, X, Y, Z) volume.
        slices_key: the :class:`SlicePrediction` list.
        result_key: where the description goes.
    """

    def __init__(
        self,
        slice_axis: int = 2,
        mask_key: str = K.PRED,
        image_key: str = K.IMAGE,
        slices_key: str = K.SLICES,
        result_key: str = K.RESULT,
        predictions_key: str = K.PREDICTIONS,
    ) -> None:
        super().__init__([mask_key])
        self.slice_axis = check_axis(slice_axis)
        self.mask_key, self.image_key, self.slices_key, self.result_key = mask_key, image_key, slices_key, result_key
        self.predictions_key = predictions_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Returns ``data`` with ``result``: ``found``, ``slices``, ``box_3d``, ``volume_ml`` and ``presence``."""
        d = dict(data)
        mask: MetaTensor = d[self.mask_key]
        grid = file_grid(mask, d[self.image_key])  # per-slice positions for an unevenly spaced DICOM stack
        slices = self.describe_slices(d[self.slices_key], d[self.image_key], grid)
        d[self.result_key] = {
            "found": bool(slices),
            "slices": slices,
            "box_3d": self.describe_volume_box(mask, grid),
            "volume_ml": round(grid.volume_ml(mask), VOLUME_DECIMALS),
            "presence": [
                {"index": p.index, "score": _rounded_score(p.presence)} for p in d.get(self.predictions_key) or []
            ],
        }
        return d

    def describe_slices(
        self, predictions: list[SlicePrediction], volume: MetaTensor, grid: FileGrid
    ) -> list[dict[str, Any]]:
        """``index``, ``box_voxel``, ``box_world`` and ``score`` of each slice's prediction."""
        if not predictions:
            return []
        corners = torch.stack(
            [box_to_voxel_corners(p.box, p.index, self.slice_axis, volume.shape[1:]) for p in predictions]
        )
        boxes = grid.boxes(grid.from_loaded(corners, volume.affine))
        return [
            {
                "index": prediction.index,
                "box_voxel": box["voxel"],
                "box_world": box["world"],
                "score": round(prediction.score, SCORE_DECIMALS),
                "presence": _rounded_score(prediction.presence),
            }
            for prediction, box in zip(predictions, boxes)
        ]

    @staticmethod
    def describe_volume_box(mask: MetaTensor, grid: FileGrid) -> dict[str, list] | None:
        """The mask's bounding box (voxel edges and world corners), or None when the mask is empty."""
        first_last = box_3d(mask)
        if first_last is None:
            return None
        edges = first_last.to(torch.float64) + torch.tensor([[-PIXEL_CENTRE_OFFSET], [PIXEL_CENTRE_OFFSET]])
        return grid.box(grid.to_world(edges))
