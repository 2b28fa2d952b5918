"""Structures that run through every slice: the spine (with its muscles and canal), the aorta and the IVC.

They span the whole scan in z, which is what makes them safe references for location questions:
whenever another organ is on a slice, these are on it too.
"""

from __future__ import annotations

import numpy as np

from bundle.phantoms.anatomy import AORTA, BODY, IVC, SPINE, OrganSpec
from bundle.phantoms.drawing import Drawing, Layer, Placed
from bundle.phantoms.shapes import Cylinder, Intersection, PeriodicSlabs, Shape, Union


def build_spine(drawing: Drawing) -> tuple[list[Layer], list[Layer]]:
    """The vertebral column, posterior midline: vertebral body, discs, posterior arch and canal.

    Returns:
        (paraspinal muscle layers, spine layers): the muscles are painted before the organs, the
        spine after them (bone is never overlapped).
    """
    placed = _place_vertebral_body(drawing)
    arch, canal = _posterior_arch(drawing, placed)
    centre, semi = tuple(placed.centre[:2]), placed.semi_axes[:2]
    vertebral_body = Cylinder(centre, tuple(semi))
    cancellous = Cylinder(centre, tuple(semi - drawing.draw(SPINE.detail["cortex_mm"])))
    discs = Intersection((vertebral_body, _disc_levels(drawing)))
    name, label = SPINE.name, SPINE.label
    spine_layers = [
        drawing.layer(name, label, "cortical bone", Union((vertebral_body, arch)), placed),
        drawing.layer(name, label, "cancellous bone", cancellous, placed),
        drawing.layer(name, label, "intervertebral disc", discs, placed),
        drawing.layer("cerebrospinal fluid", 0, "cerebrospinal fluid", canal, placed),
    ]
    return _paraspinal_muscles(drawing, centre[0], canal.centre[1]), spine_layers


def _place_vertebral_body(drawing: Drawing) -> Placed:
    """Draws the vertebral body's centre and semi-axes and records them as the spine's place."""
    fx, fy, _ = (drawing.draw(bounds) for bounds in SPINE.offset)
    placed = Placed(np.array([fx * drawing.half_width, fy * drawing.half_depth, 0.0]), drawing.draw_semi_axes(SPINE))
    drawing.placed[SPINE.name] = placed
    return placed


def _posterior_arch(drawing: Drawing, vertebra: Placed) -> tuple[Shape, Cylinder]:
    """The bony ring round the spinal canal plus the spinous process, kept under the skin; and the canal."""
    detail = SPINE.detail
    canal_r, lamina = drawing.draw(detail["canal_radius_mm"]), drawing.draw(detail["lamina_mm"])
    length, half_width = drawing.draw(detail["spinous_length_mm"]), drawing.draw(detail["spinous_half_width_mm"])
    x = vertebra.centre[0]
    canal_y = vertebra.centre[1] - vertebra.semi_axes[1] - canal_r
    spinous_y = canal_y - canal_r - lamina - length / 2.0
    ring = Cylinder((x, canal_y), (canal_r + lamina,) * 2)
    spinous = Cylinder((x, spinous_y), (half_width, length / 2.0))
    return Intersection((Union((ring, spinous)), drawing.under_skin)), Cylinder((x, canal_y), (canal_r,) * 2)


def _disc_levels(drawing: Drawing) -> PeriodicSlabs:
    """The z levels of the intervertebral discs, at a random phase of their period."""
    period = drawing.draw(SPINE.detail["disc_period_mm"])
    return PeriodicSlabs(period, drawing.draw(SPINE.detail["disc_thickness_mm"]), drawing.draw((0.0, period)))


def _paraspinal_muscles(drawing: Drawing, x: float, canal_y: float) -> list[Layer]:
    """The two erector spinae masses either side of the spinous process (unlabelled muscle)."""
    layers = []
    for sign in (1.0, -1.0):
        dx = drawing.draw(BODY.paraspinal_dx_mm)
        semi = np.array([drawing.draw(r) for r in BODY.paraspinal_semi_mm])
        centre = np.array([x + sign * dx, canal_y, 0.0])
        shape = Intersection((Cylinder(tuple(centre[:2]), tuple(semi)), drawing.under_skin))
        layers.append(drawing.layer("muscle", 0, "muscle", shape, Placed(centre, np.append(semi, 0.0))))
    return layers


def build_vessel(drawing: Drawing, spec: OrganSpec) -> list[Layer]:
    """The aorta or the IVC: an elliptic cylinder just in front of the vertebral body.

    ``spec.offset``: x from the vertebral-body centre, y the gap between the vertebral body's
    anterior surface and the vessel (mm; vessel calibres do not scale with girth).
    """
    spine = drawing.placed[SPINE.name]
    semi_x = drawing.draw(spec.semi_axes_mm[0])
    semi_y = semi_x if spec is AORTA else drawing.draw(spec.semi_axes_mm[1])
    dx, gap = drawing.draw(spec.offset[0]), drawing.draw(spec.offset[1])
    centre = np.array([spine.centre[0] + dx, spine.centre[1] + spine.semi_axes[1] + gap + semi_y, 0.0])
    placed = Placed(centre, np.array([semi_x, semi_y, 0.0]))
    drawing.placed[spec.name] = placed
    shape = Intersection((Cylinder(tuple(centre[:2]), (semi_x, semi_y)), drawing.inside))
    return [drawing.layer(spec.name, spec.label, spec.tissues[0], shape, placed)]


def build_vessels(drawing: Drawing) -> dict[str, list[Layer]]:
    """Aorta (left of midline) and IVC (right), by label name."""
    return {spec.name: build_vessel(drawing, spec) for spec in (AORTA, IVC)}
