"""``DescribeTargetd``: where the predicted target is, in the input file's voxels and in world mm.

Voxel coordinates are continuous indices of the *input file's* grid (voxel centres at integers),
and boxes give their edges: a box covering voxels 3..7 spans 2.5..7.5. World coordinates are
RAS millimetres (the affine's frame; ITK-read DICOM is converted to RAS). A box is given by two
opposite corners, ``[[min], [max]]`` in voxels and the same two corners in world mm (for an
oblique grid these are not axis-aligned in world space).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import torch
from monai.data import MetaTensor
from monai.transforms import MapTransform

from bundle.inference import keys as K
from bundle.inference.inferer import SlicePrediction
from transforms.reassemble import PIXEL_CENTRE_OFFSET, box_3d, box_to_voxel_corners, volume_ml, voxel_to_world
from transforms.slicing import check_axis

COORDINATE_DECIMALS = 3
"""Rounding of voxel and mm coordinates in the JSON (a micrometre; well below any voxel)."""
SCORE_DECIMALS = 4
VOLUME_DECIMALS = 3


def _rounded_score(score: float | None) -> float | None:
    """A probability for the JSON (None stays null: a model without a rejection token has no presence score)."""
    return None if score is None else round(score, SCORE_DECIMALS)


def _rounded(values: torch.Tensor, decimals: int = COORDINATE_DECIMALS) -> list:
    """A tensor as nested lists of rounded floats (JSON-ready)."""
    return torch.round(values.to(torch.float64), decimals=decimals).tolist()


class FileGrid:
    """The input file's voxel grid: maps world points to its voxel coordinates and back.

    Args:
        affine: the file's voxel -> world (RAS mm) affine.
    """

    def __init__(self, affine: torch.Tensor) -> None:
        self.affine = torch.as_tensor(affine, dtype=torch.float64).cpu()
        self.inverse = torch.linalg.inv(self.affine)

    def box(self, world_corners: torch.Tensor) -> dict[str, list]:
        """A box given by two world corners as ``{"voxel": [[min], [max]], "world": [[...], [...]]}``.

        The voxel corners are ordered per axis (a flip between grids swaps them), and the world
        corners are those of the ordered voxel corners.
        """
        return self.boxes(world_corners[None])[0]

    def boxes(self, world_corners: torch.Tensor) -> list[dict[str, list]]:
        """:meth:`box` for (N, 2, 3) world corners at once (a volume's slices: one affine product, not N)."""
        voxels = voxel_to_world(world_corners, self.inverse)  # the inverse affine maps world to voxels
        ordered = torch.stack([voxels.min(dim=1).values, voxels.max(dim=1).values], dim=1)
        world = voxel_to_world(ordered, self.affine)
        return [{"voxel": v, "world": w} for v, w in zip(_rounded(ordered), _rounded(world))]


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
        grid = FileGrid(mask.affine)
        slices = self.describe_slices(d[self.slices_key], d[self.image_key], grid)
        d[self.result_key] = {
            "found": bool(slices),
            "slices": slices,
            "box_3d": self.describe_volume_box(mask, grid),
            "volume_ml": round(volume_ml(mask, grid.affine), VOLUME_DECIMALS),
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
        boxes = grid.boxes(voxel_to_world(corners, volume.affine))
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
        return grid.box(voxel_to_world(edges, grid.affine))
