"""Lesions that only some volumes have: a hypodense liver lesion and a renal cyst.

A lesion paints only over its host organ's voxels, so it is inside the host by construction and
overwrites the host's label there.
"""

from __future__ import annotations

import numpy as np

from bundle.phantoms.anatomy import (
    LEFT_KIDNEY,
    LIVER,
    LIVER_LESION,
    RENAL_CYST,
    RENAL_CYST_SIDE_FINDING,
    RIGHT_KIDNEY,
    OrganSpec,
    Side,
)  # fmt: skip
from bundle.phantoms.drawing import Drawing, Layer, Placed
from bundle.phantoms.shapes import Ellipsoid


def _round_semi_axes(drawing: Drawing, spec: OrganSpec) -> np.ndarray:
    """A radius from the table, each axis perturbed by the lesion's roundness range."""
    radius = drawing.draw(spec.semi_axes_mm[0])
    return np.array([radius * drawing.draw(spec.detail["roundness"]) for _ in range(3)])


def build_liver_lesion(drawing: Drawing) -> list[Layer]:
    """A round hypodense lesion in the lateral right lobe, above the liver floor."""
    liver = drawing.placed[LIVER.name]
    fx, fy, fz = (drawing.draw(bounds) for bounds in LIVER_LESION.offset)
    semi = _round_semi_axes(drawing, LIVER_LESION)
    lowest = liver.floor_z + drawing.draw(LIVER_LESION.detail["floor_margin_mm"]) + semi[2]
    z = lowest + fz * max(liver.centre[2] - lowest, 0.0)
    centre = np.array([liver.centre[0] + fx * liver.semi_axes[0], liver.centre[1] + fy * liver.semi_axes[1], z])
    placed = Placed(centre, semi)
    drawing.placed[LIVER_LESION.name] = placed
    shape = Ellipsoid(tuple(centre), tuple(semi))
    tissue = LIVER_LESION.tissues[0]
    return [drawing.layer(LIVER_LESION.name, LIVER_LESION.label, tissue, shape, placed, hosts=(LIVER.label,))]


def build_renal_cyst(drawing: Drawing) -> list[Layer]:
    """A round water-density cyst in the lateral part of one kidney (side recorded in the findings)."""
    side = (Side.RIGHT, Side.LEFT)[int(drawing.rng.integers(2))]  # either kidney, equally often
    host = RIGHT_KIDNEY if side is Side.RIGHT else LEFT_KIDNEY
    kidney = drawing.placed[host.name]
    lateral = 1.0 if side is Side.RIGHT else -1.0
    fx, fy, fz = (drawing.draw(bounds) for bounds in RENAL_CYST.offset)
    fractions = np.array([lateral * fx, fy, fz])
    centre = kidney.centre + fractions * kidney.semi_axes
    semi = _round_semi_axes(drawing, RENAL_CYST)
    placed = Placed(centre, semi)
    drawing.placed[RENAL_CYST.name] = placed
    drawing.findings[RENAL_CYST_SIDE_FINDING] = side.value
    shape = Ellipsoid(tuple(centre), tuple(semi))
    return [drawing.layer(RENAL_CYST.name, RENAL_CYST.label, RENAL_CYST.tissues[0], shape, placed, hosts=(host.label,))]
