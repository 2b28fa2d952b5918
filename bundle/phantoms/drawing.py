"""Shared state while one patient is drawn: the random stream, the body size and what is placed so far."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bundle.phantoms.anatomy import REFERENCE_HALF_WIDTH_MM, TISSUES, OrganSpec, Range
from bundle.phantoms.shapes import Shape
from bundle.phantoms.texture import Intensity, draw_intensity


@dataclass(frozen=True)
class Layer:
    """One painted region: a shape filled with one tissue, labelled or not.

    Attributes:
        structure: the organ's label name, or the tissue name for unlabelled body layers.
        label: the label-map value (0 = unlabelled, stays background).
        shape: where it is, in the patient frame.
        intensity: its noise-free HU.
        hosts: if set, the layer paints only voxels already labelled with one of these (lesions).
    """

    structure: str
    label: int
    shape: Shape
    intensity: Intensity
    hosts: tuple[int, ...] = ()


@dataclass(frozen=True)
class Placed:
    """Where a drawn organ ended up (patient frame): the anchor for organs placed relative to it.

    Attributes:
        centre: centre (mm).
        semi_axes: semi-axes (mm; 0 in z for structures unbounded in z).
        yaw_deg: rotation about z.
        floor_z: z of a flat inferior surface, for organs cut flat there (the liver).
    """

    centre: np.ndarray
    semi_axes: np.ndarray
    yaw_deg: float = 0.0
    floor_z: float | None = None


@dataclass
class Drawing:
    """The state of one patient being drawn.

    Attributes:
        rng: the volume's anatomy stream (draw order is part of the determinism contract).
        half_width: body half-width (mm, x).
        half_depth: body half-depth (mm, y).
        inside: the region organs are confined to (within the subcutaneous fat).
        under_skin: the region the spine's arch and back muscles are confined to (within the skin).
        placed: drawn organs by label name, plus the body.
        findings: volume-specific facts for the entry prompt pools.
    """

    rng: np.random.Generator
    half_width: float
    half_depth: float
    inside: Shape | None = None
    under_skin: Shape | None = None
    placed: dict[str, Placed] = field(default_factory=dict)
    findings: dict[str, str] = field(default_factory=dict)

    @property
    def scale(self) -> float:
        """In-plane size factor of this body relative to the reference body."""
        return self.half_width / REFERENCE_HALF_WIDTH_MM

    def draw(self, bounds: Range) -> float:
        """One uniform draw from ``bounds``."""
        return float(self.rng.uniform(*bounds))

    def draw_semi_axes(self, spec: OrganSpec) -> np.ndarray:
        """The organ's semi-axes: x and y scaled with the body, z as drawn."""
        x, y, z = (self.draw(bounds) for bounds in spec.semi_axes_mm)
        return np.array([x * self.scale, y * self.scale, z])

    def layer(
        self, structure: str, label: int, tissue: str, shape: Shape, placed: Placed, hosts: tuple[int, ...] = ()
    ) -> Layer:
        """A layer of ``tissue`` filling ``shape``, shaded about the organ ``placed``."""
        reach = float(np.max(placed.semi_axes))
        return Layer(structure, label, shape, draw_intensity(self.rng, TISSUES[tissue], placed.centre, reach), hosts)
