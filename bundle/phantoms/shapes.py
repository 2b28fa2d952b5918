"""Solid shapes in the patient frame (RAS+ mm) and their unions, intersections and differences.

Every shape answers ``contains(points)`` for an ``(N, 3)`` array of points, so an organ is
rendered by asking it about the centre of every voxel, whatever the voxel grid; ``z_range()``
bounds it in z, so that slices it cannot reach skip it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

UNBOUNDED = (-np.inf, np.inf)


class Shape(Protocol):
    """Anything that can say which points lie inside it."""

    def contains(self, points: np.ndarray) -> np.ndarray:
        """Boolean mask, one entry per row of the ``(N, 3)`` array ``points``."""

    def z_range(self) -> tuple[float, float]:
        """Lowest and highest z of the shape (may be infinite)."""


def _yaw_local(points: np.ndarray, centre: np.ndarray, yaw_deg: float) -> np.ndarray:
    """Points relative to ``centre`` in axes turned by ``yaw_deg`` about +z (from +x towards +y)."""
    rel = points - centre
    if not yaw_deg:
        return rel
    angle = np.deg2rad(yaw_deg)
    cos, sin = np.cos(angle), np.sin(angle)
    local = rel.copy()
    local[:, 0] = cos * rel[:, 0] + sin * rel[:, 1]
    local[:, 1] = -sin * rel[:, 0] + cos * rel[:, 1]
    return local


@dataclass(frozen=True)
class Ellipsoid:
    """An ellipsoid with semi-axes along its own axes, turned by ``yaw_deg`` about the z axis."""

    centre: tuple[float, float, float]
    semi_axes: tuple[float, float, float]
    yaw_deg: float = 0.0

    def contains(self, points: np.ndarray) -> np.ndarray:
        """Points whose normalised radius is at most one."""
        local = _yaw_local(points, np.asarray(self.centre), self.yaw_deg) / np.asarray(self.semi_axes)
        return np.einsum("ij,ij->i", local, local) <= 1.0

    def z_range(self) -> tuple[float, float]:
        """The poles (the yaw keeps the z axis)."""
        return self.centre[2] - self.semi_axes[2], self.centre[2] + self.semi_axes[2]


@dataclass(frozen=True)
class Cylinder:
    """An elliptic cylinder parallel to the z axis, unbounded in z (vessels, spine, body)."""

    centre: tuple[float, float]
    semi_axes: tuple[float, float]
    yaw_deg: float = 0.0

    def contains(self, points: np.ndarray) -> np.ndarray:
        """Points whose in-plane normalised radius is at most one."""
        centre = np.array([*self.centre, 0.0])
        local = _yaw_local(points, centre, self.yaw_deg)[:, :2] / np.asarray(self.semi_axes)
        return np.einsum("ij,ij->i", local, local) <= 1.0

    def z_range(self) -> tuple[float, float]:
        """Unbounded."""
        return UNBOUNDED


@dataclass(frozen=True)
class HalfSpace:
    """The points on the side of a plane that ``normal`` points to: ``dot(p, normal) >= offset``."""

    normal: tuple[float, float, float]
    offset: float

    def contains(self, points: np.ndarray) -> np.ndarray:
        """Points on or in front of the plane."""
        return points @ np.asarray(self.normal) >= self.offset

    def z_range(self) -> tuple[float, float]:
        """Bounded below or above only for a plane normal to z."""
        if self.normal[0] or self.normal[1] or not self.normal[2]:
            return UNBOUNDED
        bound = self.offset / self.normal[2]
        return (bound, np.inf) if self.normal[2] > 0 else (-np.inf, bound)


@dataclass(frozen=True)
class PeriodicSlabs:
    """Horizontal slabs ``thickness`` thick repeating every ``period`` mm along z (intervertebral discs)."""

    period: float
    thickness: float
    phase: float

    def contains(self, points: np.ndarray) -> np.ndarray:
        """Points whose z falls inside one of the slabs."""
        return np.mod(points[:, 2] - self.phase, self.period) < self.thickness

    def z_range(self) -> tuple[float, float]:
        """Unbounded."""
        return UNBOUNDED


@dataclass(frozen=True)
class Union:
    """Points inside any part."""

    parts: tuple[Shape, ...]

    def contains(self, points: np.ndarray) -> np.ndarray:
        """Logical or of the parts; later parts are only asked about points not yet inside."""
        inside = self.parts[0].contains(points)
        for part in self.parts[1:]:
            candidates = np.flatnonzero(~inside)
            inside[candidates] = part.contains(points[candidates])
        return inside

    def z_range(self) -> tuple[float, float]:
        """The hull of the parts' ranges."""
        ranges = [part.z_range() for part in self.parts]
        return min(lo for lo, _ in ranges), max(hi for _, hi in ranges)


@dataclass(frozen=True)
class Intersection:
    """Points inside every part."""

    parts: tuple[Shape, ...]

    def contains(self, points: np.ndarray) -> np.ndarray:
        """Logical and of the parts; later parts are only asked about points still inside (put the smallest first)."""
        inside = self.parts[0].contains(points)
        for part in self.parts[1:]:
            candidates = np.flatnonzero(inside)
            inside[candidates] = part.contains(points[candidates])
        return inside

    def z_range(self) -> tuple[float, float]:
        """The overlap of the parts' ranges (empty when low > high)."""
        ranges = [part.z_range() for part in self.parts]
        return max(lo for lo, _ in ranges), min(hi for _, hi in ranges)


@dataclass(frozen=True)
class Difference:
    """Points inside ``base`` and outside ``cut``."""

    base: Shape
    cut: Shape

    def contains(self, points: np.ndarray) -> np.ndarray:
        """``base`` minus ``cut`` (the cut is only asked about points inside the base)."""
        inside = self.base.contains(points)
        candidates = np.flatnonzero(inside)
        inside[candidates] = ~self.cut.contains(points[candidates])
        return inside

    def z_range(self) -> tuple[float, float]:
        """The base's range."""
        return self.base.z_range()
