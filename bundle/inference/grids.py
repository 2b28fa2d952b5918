"""The input file's voxel grid, for mapping result boxes to world mm and measuring the target.

:class:`FileGrid` is a plain affine grid (NIfTI, and DICOM stacks on a regular grid, sheared ones
included). :class:`StackGrid` is the file grid of a DICOM stack whose slices no regular grid holds
(uneven spacing, a gap): such a volume carries a nominal affine (the median step; used to reorient and
display it) and the true position of each slice's first voxel (``slice_origins``, from
:mod:`transforms.dicom_reader`). Voxel -> world then goes through the slice's own origin: in-plane
steps from the affine, and along the slice axis the origins joined piecewise linearly, so slice
``k`` spans from halfway to its previous neighbour to halfway to its next (the end slices reach as
far out as their one neighbour step). Boxes, their world corners and the target's volume come from
the true positions.

World boxes are axis-aligned in RAS: the per-axis minimum and maximum over the eight corners of the
voxel box (exact for grids aligned with the world axes, the enclosing box for oblique ones), so
their corners run from min to max whatever the file's axis flips.
"""

from __future__ import annotations

import itertools

import torch
from monai.data import MetaTensor
from monai.utils import convert_to_tensor

from transforms.dicom_reader import SLICE_ORIGINS
from transforms.reassemble import MM3_PER_ML, voxel_to_world
from transforms.reassemble import volume_ml as affine_volume_ml

COORDINATE_DECIMALS = 3
"""Rounding of voxel and mm coordinates in the JSON (a micrometre; well below any voxel)."""
SLICE_AXIS = 2
"""DICOM volumes are (column, row, slice): slices along the file's third axis."""
SPATIAL = 3
CORNERS = torch.tensor(list(itertools.product((0, 1), repeat=SPATIAL)))
"""(8, 3) which of a box's two corners each axis takes, for its eight corners."""


def rounded(values: torch.Tensor, decimals: int = COORDINATE_DECIMALS) -> list:
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

    def to_world(self, voxels: torch.Tensor) -> torch.Tensor:
        """(..., 3) file voxel coordinates -> RAS mm."""
        return voxel_to_world(voxels, self.affine)

    def to_voxels(self, world: torch.Tensor) -> torch.Tensor:
        """(..., 3) RAS mm -> file voxel coordinates."""
        return voxel_to_world(world, self.inverse)  # the inverse affine maps world to voxels

    def from_loaded(self, voxels: torch.Tensor, loaded_affine: torch.Tensor) -> torch.Tensor:
        """World position of voxel coordinates of the loaded (reoriented) volume, whose affine is ``loaded_affine``."""
        return voxel_to_world(voxels, loaded_affine)

    def volume_ml(self, mask: torch.Tensor) -> float:
        """The mask's foreground volume in mL."""
        return affine_volume_ml(mask, self.affine)

    def box(self, world_corners: torch.Tensor) -> dict[str, list]:
        """A box given by two world corners as ``{"voxel": [[min], [max]], "world": [[min], [max]]}``.

        The voxel corners are ordered per axis (a flip between grids swaps them); the world box is
        the axis-aligned RAS box of the voxel box's eight corners, ordered min to max.
        """
        return self.boxes(world_corners[None])[0]

    def boxes(self, world_corners: torch.Tensor) -> list[dict[str, list]]:
        """:meth:`box` for (N, 2, 3) world corners at once (a volume's slices: one product, not N)."""
        voxels = self.to_voxels(world_corners)
        ordered = torch.stack([voxels.min(dim=1).values, voxels.max(dim=1).values], dim=1)
        eight = torch.gather(ordered, 1, CORNERS.expand(len(ordered), -1, -1))  # (N, 8, 3)
        world = self.to_world(eight)
        enclosing = torch.stack([world.min(dim=1).values, world.max(dim=1).values], dim=1)
        return [{"voxel": v, "world": w} for v, w in zip(rounded(ordered), rounded(enclosing))]


def _segment(value: torch.Tensor, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Segment of the slice polyline a continuous slice index falls in, and the fraction along it (linear past the ends)."""
    index = torch.clamp(torch.floor(value), 0, count - 2).to(torch.int64)
    return index, value - index


class StackGrid(FileGrid):
    """The file grid of an unevenly spaced stack: per-slice origins, in-plane steps from the nominal affine.

    Args:
        affine: the file's nominal voxel -> RAS affine (its in-plane columns are exact).
        origins: (slices, 3) RAS position of each slice's first voxel, sorted along the slice normal.
    """

    def __init__(self, affine: torch.Tensor, origins: torch.Tensor) -> None:
        super().__init__(affine)
        self.origins = torch.as_tensor(origins, dtype=torch.float64).cpu()
        self.in_plane = self.affine[:SPATIAL, :SLICE_AXIS]  # (3, 2): column and row steps
        normal = torch.linalg.cross(self.in_plane[:, 0], self.in_plane[:, 1])
        normal = normal / torch.linalg.norm(normal)
        self.depths = (self.origins - self.origins[0]) @ normal
        sign = 1.0 if self.depths[-1] >= 0 else -1.0  # depth grows with the slice index
        self.normal, self.depths = normal * sign, self.depths * sign

    def origin_at(self, k: torch.Tensor) -> torch.Tensor:
        """(..., 3) world origin of continuous slice index ``k`` (...)."""
        index, fraction = _segment(k, len(self.origins))
        start, end = self.origins[index], self.origins[index + 1]
        return start + fraction[..., None] * (end - start)

    def to_world(self, voxels: torch.Tensor) -> torch.Tensor:
        """(..., 3) file voxel coordinates -> RAS mm through each slice's own origin."""
        voxels = torch.as_tensor(voxels, dtype=torch.float64)
        return self.origin_at(voxels[..., SLICE_AXIS]) + voxels[..., :SLICE_AXIS] @ self.in_plane.T

    def to_voxels(self, world: torch.Tensor) -> torch.Tensor:
        """(..., 3) RAS mm -> file voxel coordinates (the inverse of :meth:`to_world`)."""
        world = torch.as_tensor(world, dtype=torch.float64)
        depth = (world - self.origins[0]) @ self.normal
        index = torch.clamp(torch.searchsorted(self.depths, depth) - 1, 0, len(self.depths) - 2)
        low, high = self.depths[index], self.depths[index + 1]
        k = index + (depth - low) / (high - low)
        in_plane = torch.linalg.lstsq(self.in_plane, (world - self.origin_at(k)).reshape(-1, SPATIAL).T).solution
        return torch.cat([in_plane.T.reshape(*world.shape[:-1], SLICE_AXIS), k[..., None]], dim=-1)

    def from_loaded(self, voxels: torch.Tensor, loaded_affine: torch.Tensor) -> torch.Tensor:
        """World position of voxels of the reoriented volume: mapped to the file's voxels first (a permutation)."""
        to_file = self.inverse @ torch.as_tensor(loaded_affine, dtype=torch.float64).cpu()
        return self.to_world(voxel_to_world(voxels, to_file))

    def slice_thickness(self) -> torch.Tensor:
        """(slices,) extent of each slice along the normal: between the midpoints to its neighbours."""
        edges = torch.arange(len(self.origins) + 1, dtype=torch.float64) - 0.5
        return torch.diff((self.origin_at(edges) - self.origins[0]) @ self.normal)

    def volume_ml(self, mask: torch.Tensor) -> float:
        """Foreground volume: per slice, its voxel count x pixel area x its own thickness."""
        plain = convert_to_tensor(mask, track_meta=False) > 0
        per_slice = torch.count_nonzero(plain.reshape(-1, *plain.shape[-SPATIAL:]), dim=(0, 1, 2)).to(torch.float64)
        area = torch.linalg.norm(torch.linalg.cross(self.in_plane[:, 0], self.in_plane[:, 1]))
        return float((per_slice * self.slice_thickness()).sum() * area) / MM3_PER_ML


def file_grid(mask: MetaTensor, image: MetaTensor | None = None) -> FileGrid:
    """The grid results are computed on: a :class:`StackGrid` when the loaded image carries slice origins."""
    origins = None if image is None or not isinstance(image, MetaTensor) else image.meta.get(SLICE_ORIGINS)
    if origins is None:
        return FileGrid(mask.affine)
    return StackGrid(mask.affine, torch.as_tensor(origins))
