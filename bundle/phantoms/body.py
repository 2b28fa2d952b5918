"""The body outline: skin, subcutaneous fat, muscle wall and the abdominal cavity (all unlabelled)."""

from __future__ import annotations

import numpy as np

from bundle.phantoms.anatomy import BODY
from bundle.phantoms.drawing import Drawing, Layer, Placed
from bundle.phantoms.shapes import Cylinder

BODY_NAME = "body"
BODY_LAYERS = ("skin", "subcutaneous fat", "muscle", "visceral fat and bowel")


def build_body(drawing: Drawing) -> list[Layer]:
    """Nested elliptic cylinders, outermost first, so each one is painted over by the next.

    Sets ``drawing.inside`` to the muscle wall's outer boundary: organs may press into the wall
    but never reach the fat or the skin. The spine's arch and the back muscles may reach into the
    fat (``drawing.under_skin``), as they do in thin patients.
    """
    thicknesses = [0.0, drawing.draw(BODY.skin_mm), drawing.draw(BODY.fat_mm), drawing.draw(BODY.muscle_mm)]
    placed = Placed(np.zeros(3), np.array([drawing.half_width, drawing.half_depth, 0.0]))
    drawing.placed[BODY_NAME] = placed
    layers = []
    depth = 0.0
    for tissue, thickness in zip(BODY_LAYERS, thicknesses):
        depth += thickness
        shape = Cylinder((0.0, 0.0), (drawing.half_width - depth, drawing.half_depth - depth))
        layers.append(drawing.layer(tissue, 0, tissue, shape, placed))
        if tissue == "subcutaneous fat":
            drawing.under_skin = shape
        if tissue == "muscle":
            drawing.inside = shape
    return layers
