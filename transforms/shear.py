"""A sheared grid (a tilted-gantry DICOM series) as an unsheared one, for NIfTI readers that drop the shear.

nibabel reads a sheared sform, but ITK and 3D Slicer do not: they fall back to the qform, which
cannot hold a shear, and place the far slices millimetres off. A mask on a sheared grid is
therefore written on an *unsheared* grid: the same in-plane axes and pixel spacing, the slice axis
along the slice normal at the slices' true distance, widened so that every source pixel fits.
Each slice of a sheared stack is only shifted within its plane, so nearest-neighbour resampling
(MONAI's ``SpatialResample``) moves every voxel by a whole number of pixels: each voxel of the new
grid holds the value of the source pixel nearest to it (less than half a pixel away) and no source
voxel is lost or doubled.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import SpatialResample

SPATIAL = 3
SHEAR_COSINE_ATOL = 1e-6
"""A slice axis within this of the normal (cosine 1) is not sheared."""
FIT_EPSILON = 1e-6
"""Pixels: a shift this close to a whole number needs no extra column."""


def is_sheared(affine: np.ndarray | torch.Tensor) -> bool:
    """Whether the affine's slice axis (column 2) leaves the normal of its first two axes."""
    linear = np.asarray(affine, dtype=np.float64)[:SPATIAL, :SPATIAL]
    normal = np.cross(linear[:, 0], linear[:, 1])
    cosine = abs(normal @ linear[:, 2]) / (np.linalg.norm(normal) * np.linalg.norm(linear[:, 2]))
    return cosine < 1.0 - SHEAR_COSINE_ATOL


def unsheared_grid(affine: np.ndarray, shape: tuple[int, int, int]) -> tuple[np.ndarray, tuple[int, int, int]]:
    """The unsheared affine and shape that hold every voxel of a grid whose slices shift within their plane.

    Args:
        affine: voxel -> world of the sheared grid (first two axes orthogonal: a DICOM slice plane).
        shape: its spatial shape.

    Returns:
        the new affine (axes: the same two in-plane steps, the slice normal scaled to the slice
        distance) and the new shape (the same slices, widened by the total in-plane shift).
    """
    affine = np.asarray(affine, dtype=np.float64)
    u, v, step, origin = (affine[:SPATIAL, i] for i in range(SPATIAL + 1))
    normal = np.cross(u, v)
    normal /= np.linalg.norm(normal)
    last = shape[2] - 1
    shifts = [float(step @ axis / (axis @ axis)) * last for axis in (u, v)]  # pixels moved by the last slice
    new = np.eye(SPATIAL + 1)
    new[:SPATIAL, 0], new[:SPATIAL, 1] = u, v
    new[:SPATIAL, 2] = normal * float(step @ normal)
    new[:SPATIAL, SPATIAL] = origin + min(0.0, shifts[0]) * u + min(0.0, shifts[1]) * v
    widened = tuple(n + math.ceil(abs(s) - FIT_EPSILON) for n, s in zip(shape[:2], shifts))
    return new, (*widened, shape[2])


def unshear(volume: MetaTensor) -> MetaTensor:
    """``volume`` (C, X, Y, Z) on its unsheared grid (:func:`unsheared_grid`), nearest neighbour, zeros outside."""
    affine = volume.affine.detach().cpu().numpy()
    target, shape = unsheared_grid(affine, tuple(volume.shape[1:]))
    resample = SpatialResample(mode="nearest", padding_mode="zeros", dtype=torch.float64)
    source = MetaTensor(volume.as_tensor().to(torch.float64), affine=torch.as_tensor(affine))
    out = resample(source, dst_affine=torch.as_tensor(target), spatial_size=shape)
    return MetaTensor(out.as_tensor().round().to(volume.dtype), affine=torch.as_tensor(target))
