"""One patient: draws the body, organs and lesions from the anatomy table and orders their layers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from bundle.phantoms.anatomy import (
    AORTA,
    BODY,
    GALLBLADDER,
    IVC,
    LEFT_KIDNEY,
    LIVER,
    LIVER_LESION,
    RENAL_CYST,
    RIGHT_KIDNEY,
    SPINE,
    SPLEEN,
    STOMACH,
)  # fmt: skip
from bundle.phantoms.axial import build_spine, build_vessels
from bundle.phantoms.body import BODY_NAME, build_body
from bundle.phantoms.drawing import Drawing, Layer, Placed
from bundle.phantoms.lesions import build_liver_lesion, build_renal_cyst
from bundle.phantoms.organs import build_gallbladder, build_kidney, build_liver, build_spleen, build_stomach

BODY_GROUP = BODY_NAME
PARASPINAL_GROUP = "paraspinal muscles"
# Later layers overwrite earlier ones: vessels and bone over soft organs, lesions last (over their host).
PAINT_ORDER = (
    BODY_GROUP, PARASPINAL_GROUP, LIVER.name, GALLBLADDER.name, STOMACH.name, SPLEEN.name, RIGHT_KIDNEY.name,
    LEFT_KIDNEY.name, IVC.name, AORTA.name, SPINE.name, LIVER_LESION.name, RENAL_CYST.name,
)  # fmt: skip
OPTIONAL: Mapping[str, tuple[float, Callable[[Drawing], list[Layer]]]] = {
    GALLBLADDER.name: (GALLBLADDER.probability, build_gallbladder),
    LIVER_LESION.name: (LIVER_LESION.probability, build_liver_lesion),
    RENAL_CYST.name: (RENAL_CYST.probability, build_renal_cyst),
}


@dataclass(frozen=True)
class Patient:
    """A drawn patient in its own frame (RAS+ mm, origin at the body centre).

    Attributes:
        layers: painted in order; later layers overwrite earlier ones.
        placed: where each drawn organ went (and the body), by name.
        findings: volume-specific facts, e.g. ``{"stomach content": "gas"}``.
    """

    layers: tuple[Layer, ...]
    placed: Mapping[str, Placed]
    findings: Mapping[str, str]

    @property
    def half_width(self) -> float:
        """The body's half-width (mm): what the field of view must cover."""
        return float(self.placed[BODY_NAME].semi_axes[0])


def draw_patient(rng: np.random.Generator) -> Patient:
    """Draws one patient; the same generator state always gives the same patient.

    Organs are drawn in dependency order (spine before the kidneys and vessels, liver before the
    gallbladder and its lesion, kidneys before a cyst) and painted in ``PAINT_ORDER``.
    """
    drawing = Drawing(rng, float(rng.uniform(*BODY.half_width_mm)), float(rng.uniform(*BODY.half_depth_mm)))
    groups: dict[str, list[Layer]] = {BODY_GROUP: build_body(drawing)}
    groups[PARASPINAL_GROUP], groups[SPINE.name] = build_spine(drawing)
    groups.update(build_vessels(drawing))
    groups[LIVER.name] = build_liver(drawing)
    groups[STOMACH.name] = build_stomach(drawing)
    groups[SPLEEN.name] = build_spleen(drawing)
    for kidney in (RIGHT_KIDNEY, LEFT_KIDNEY):
        groups[kidney.name] = build_kidney(drawing, kidney)
    for name, (probability, build) in OPTIONAL.items():
        if rng.random() < probability:
            groups[name] = build(drawing)
    layers = tuple(layer for name in PAINT_ORDER for layer in groups.get(name, ()))
    return Patient(layers, dict(drawing.placed), dict(drawing.findings))
