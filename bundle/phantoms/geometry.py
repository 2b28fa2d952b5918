"""The voxel grid of one volume: shape, a non-RAS (sometimes oblique) affine, and voxel-centre positions.

The affine maps voxel indices to scanner RAS+ mm. Its axes are flipped per an orientation code
(LPS, LAS, ...), scaled by the spacing and, for oblique volumes, turned by a small yaw and
gantry tilt; voxel axis 2 stays the superior-inferior axis in magnitude. The anatomy is sampled
at each voxel's centre mapped through this affine, so voxels and world positions always agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import nibabel as nib
import numpy as np

from bundle.phantoms.anatomy import SCAN

# Unit RAS+ direction of each nibabel axis code.
CODE_DIRECTIONS = {"R": (1, 0, 0), "L": (-1, 0, 0), "A": (0, 1, 0), "P": (0, -1, 0), "S": (0, 0, 1), "I": (0, 0, -1)}


@dataclass(frozen=True)
class ScanGeometry:
    """Where a volume's voxels are.

    Attributes:
        shape: voxels along each axis (axis 2 is axial).
        affine: voxel index -> scanner RAS+ mm (float32-exact, as NIfTI stores it).
        patient_origin: the patient frame's origin in scanner coordinates (the patient only
            translates: the anatomy's axes are the scanner's).
        oblique: whether the grid is rotated off the scanner axes.
    """

    shape: tuple[int, int, int]
    affine: np.ndarray
    patient_origin: np.ndarray
    oblique: bool

    @property
    def orientation(self) -> tuple[str, str, str]:
        """nibabel axis codes of the voxel axes, e.g. ``('L', 'P', 'S')``."""
        return tuple(nib.aff2axcodes(self.affine))

    @property
    def spacing(self) -> np.ndarray:
        """Voxel size along each voxel axis (mm)."""
        return np.linalg.norm(self.affine[:3, :3], axis=0)

    def slice_points(self, k: int) -> np.ndarray:
        """Scanner positions of the voxel centres of axial slice ``k``, ``(X*Y, 3)`` in C order of ``[i, j]``."""
        return slice_world(self.affine, self.shape[:2], k).reshape(-1, 3)


def slice_world(affine: np.ndarray, shape_xy: tuple[int, int], k: int) -> np.ndarray:
    """Scanner RAS+ positions of the voxel centres of slice ``k`` of a grid, ``(X, Y, 3)``."""
    i, j = np.meshgrid(np.arange(shape_xy[0]), np.arange(shape_xy[1]), indexing="ij")
    ijk = np.stack([i, j, np.full_like(i, k)], axis=-1).astype(float)
    return ijk @ affine[:3, :3].T + affine[:3, 3]


def rotation(yaw_deg: float, tilt_deg: float) -> np.ndarray:
    """Rotation by ``tilt_deg`` about x (gantry tilt) then ``yaw_deg`` about z."""
    yaw, tilt = np.deg2rad(yaw_deg), np.deg2rad(tilt_deg)
    about_z = np.array([[np.cos(yaw), -np.sin(yaw), 0], [np.sin(yaw), np.cos(yaw), 0], [0, 0, 1]])
    about_x = np.array([[1, 0, 0], [0, np.cos(tilt), -np.sin(tilt)], [0, np.sin(tilt), np.cos(tilt)]])
    return about_z @ about_x


def draw_geometry(rng: np.random.Generator, shape: tuple[int, int, int], half_width: float) -> ScanGeometry:
    """Draws a grid that covers a body of ``half_width`` mm and the scanned z range.

    The in-plane field of view is a margin times the body width, with square pixels; the
    through-plane spacing follows from the drawn z coverage, so any ``shape`` sees the same anatomy.
    """
    codes = SCAN.orientations[int(rng.integers(len(SCAN.orientations)))]
    oblique = bool(rng.random() < SCAN.oblique_probability)
    yaw = rng.uniform(-SCAN.max_yaw_deg, SCAN.max_yaw_deg) if oblique else 0.0
    tilt = rng.uniform(-SCAN.max_tilt_deg, SCAN.max_tilt_deg) if oblique else 0.0
    in_plane = 2.0 * half_width * rng.uniform(*SCAN.fov_margin) / min(shape[:2])
    spacing = np.array([in_plane, in_plane, rng.uniform(*SCAN.fov_z_mm) / shape[2]])
    origin = np.array([*rng.uniform(*SCAN.patient_xy_mm, size=2), rng.uniform(*SCAN.couch_z_mm)])
    centre = origin + np.array([rng.uniform(*SCAN.centring_mm), rng.uniform(*SCAN.centring_mm),
                                rng.uniform(*SCAN.centre_z_mm)])  # fmt: skip
    directions = np.array([CODE_DIRECTIONS[code] for code in codes], dtype=float).T
    linear = rotation(yaw, tilt) @ directions @ np.diag(spacing)
    affine = np.eye(4)
    affine[:3, :3] = linear
    affine[:3, 3] = centre - linear @ ((np.asarray(shape) - 1) / 2.0)
    # NIfTI stores the affine as float32: use exactly what a reader will get back.
    return ScanGeometry(tuple(shape), affine.astype(np.float32).astype(np.float64), origin, oblique)
