"""The solid and hollow abdominal organs: liver, gallbladder, stomach, spleen and kidneys.

Each builder draws its organ from the anatomy table, records where it went in
``drawing.placed`` (organs placed relative to it read that) and returns its layers, which are
confined to ``drawing.inside``.
"""

from __future__ import annotations

import numpy as np

from bundle.phantoms.anatomy import (
    GALLBLADDER,
    LIVER,
    SPINE,
    SPLEEN,
    STOMACH,
    STOMACH_CONTENT_FINDING,
    STOMACH_CONTENTS,
    OrganSpec,
    Side,
    StomachContent,
)  # fmt: skip
from bundle.phantoms.drawing import Drawing, Layer, Placed
from bundle.phantoms.shapes import Difference, Ellipsoid, HalfSpace, Intersection, Shape, Union

UP = (0.0, 0.0, 1.0)
ANTERIOR = (0.0, 1.0, 0.0)


def _body_centre(drawing: Drawing, spec: OrganSpec) -> np.ndarray:
    """Centre of an organ whose x, y offsets are body fractions and z is in mm."""
    fx, fy, z = (drawing.draw(bounds) for bounds in spec.offset)
    return np.array([fx * drawing.half_width, fy * drawing.half_depth, z])


def _confined(shape: Shape, drawing: Drawing) -> Shape:
    return Intersection((shape, drawing.inside))


def build_liver(drawing: Drawing) -> list[Layer]:
    """A large right lobe and a smaller left lobe crossing the midline anteriorly, cut flat below.

    The flat inferior surface (``floor_z``) is what the gallbladder hangs from.
    """
    detail = LIVER.detail
    centre = _body_centre(drawing, LIVER)
    semi = drawing.draw_semi_axes(LIVER)
    floor = centre[2] - drawing.draw(detail["floor_fraction"]) * semi[2]
    left_centre = np.array([
        centre[0] + drawing.draw(detail["left_lobe_dx_mm"]) * drawing.scale,
        drawing.draw(detail["left_lobe_y"]) * drawing.half_depth,
        centre[2] + drawing.draw(detail["left_lobe_dz_mm"]),
    ])  # fmt: skip
    left_semi = (drawing.draw(detail["left_lobe_semi_x_mm"]) * drawing.scale,
                 drawing.draw(detail["left_lobe_semi_y_mm"]) * drawing.scale,
                 drawing.draw(detail["left_lobe_semi_z_mm"]))  # fmt: skip
    placed = Placed(centre, semi, floor_z=floor)
    drawing.placed[LIVER.name] = placed
    lobes = Union((Ellipsoid(tuple(centre), tuple(semi)), Ellipsoid(tuple(left_centre), left_semi)))
    shape = _confined(Intersection((lobes, HalfSpace(UP, floor))), drawing)
    return [drawing.layer(LIVER.name, LIVER.label, LIVER.tissues[0], shape, placed)]


def build_gallbladder(drawing: Drawing) -> list[Layer]:
    """A bile-filled ellipsoid set into the liver's inferior-anterior-medial surface.

    Its lowest point stays above the liver floor, so the liver is beside it on every slice.
    """
    liver = drawing.placed[LIVER.name]
    fx, fy, margin = (drawing.draw(bounds) for bounds in GALLBLADDER.offset)
    semi = drawing.draw_semi_axes(GALLBLADDER)
    centre = np.array([liver.centre[0] + fx * liver.semi_axes[0], liver.centre[1] + fy * liver.semi_axes[1],
                       liver.floor_z + margin + semi[2]])  # fmt: skip
    placed = Placed(centre, semi, drawing.draw(GALLBLADDER.yaw_deg))
    drawing.placed[GALLBLADDER.name] = placed
    shape = _confined(Ellipsoid(tuple(centre), tuple(semi), placed.yaw_deg), drawing)
    return [drawing.layer(GALLBLADDER.name, GALLBLADDER.label, GALLBLADDER.tissues[0], shape, placed)]


def build_stomach(drawing: Drawing) -> list[Layer]:
    """A thick-walled ellipsoid of fluid, gas, or both with an air-fluid level (gas anterior).

    The wall lines the sides only (no caps at the poles), so every axial section of the stomach
    shows its content; the content drawn is recorded in the findings.
    """
    wall_tissue, fluid_tissue, gas_tissue = STOMACH.tissues
    centre = _body_centre(drawing, STOMACH)
    semi = drawing.draw_semi_axes(STOMACH)
    placed = Placed(centre, semi, drawing.draw(STOMACH.yaw_deg))
    drawing.placed[STOMACH.name] = placed
    wall = drawing.draw(STOMACH.detail["wall_mm"])
    names, weights = list(STOMACH_CONTENTS), np.array(list(STOMACH_CONTENTS.values()))
    content = names[int(drawing.rng.choice(len(names), p=weights / weights.sum()))]
    drawing.findings[STOMACH_CONTENT_FINDING] = content.value
    outer = _confined(Ellipsoid(tuple(centre), tuple(semi), placed.yaw_deg), drawing)
    lumen = _confined(Ellipsoid(tuple(centre), (semi[0] - wall, semi[1] - wall, semi[2]), placed.yaw_deg), drawing)
    label = STOMACH.label
    layers = [drawing.layer(STOMACH.name, label, wall_tissue, outer, placed)]
    if content is StomachContent.FLUID:
        layers.append(drawing.layer(STOMACH.name, label, fluid_tissue, lumen, placed))
    elif content is StomachContent.GAS:
        layers.append(drawing.layer(STOMACH.name, label, gas_tissue, lumen, placed))
    else:
        level = centre[1] + drawing.draw(STOMACH.detail["fluid_level"]) * semi[1]
        gas = Intersection((lumen, HalfSpace(ANTERIOR, level)))
        layers += [drawing.layer(STOMACH.name, label, fluid_tissue, lumen, placed),
                   drawing.layer(STOMACH.name, label, gas_tissue, gas, placed)]  # fmt: skip
    return layers


def build_spleen(drawing: Drawing) -> list[Layer]:
    """A crescent in the left posterolateral abdomen: an ellipsoid with a concave medial (hilar) surface."""
    centre = _body_centre(drawing, SPLEEN)
    semi = drawing.draw_semi_axes(SPLEEN)
    yaw = drawing.draw(SPLEEN.yaw_deg)
    placed = Placed(centre, semi, yaw)
    drawing.placed[SPLEEN.name] = placed
    angle = np.deg2rad(yaw)
    medial = np.array([np.cos(angle), np.sin(angle), 0.0])  # the turned +x axis points medially on the left
    cut_centre = centre + medial * semi[0] * drawing.draw(SPLEEN.detail["hilum_offset"])
    cut_semi = semi * drawing.draw(SPLEEN.detail["hilum_size"])
    shape = Difference(Ellipsoid(tuple(centre), tuple(semi), yaw), Ellipsoid(tuple(cut_centre), tuple(cut_semi), yaw))
    return [drawing.layer(SPLEEN.name, SPLEEN.label, SPLEEN.tissues[0], _confined(shape, drawing), placed)]


def build_kidney(drawing: Drawing, spec: OrganSpec) -> list[Layer]:
    """A bean: an ellipsoid beside the spine, bright cortex around medulla, notched at the hilum.

    ``spec.offset`` x is the gap between the vertebral body and the kidney; the hilum faces
    medially, turned anteriorly by ``spec.yaw_deg``.
    """
    spine = drawing.placed[SPINE.name]
    sign = 1.0 if spec.side is Side.RIGHT else -1.0  # RAS: the patient's right is +x
    gap, dy, z = (drawing.draw(bounds) for bounds in spec.offset)
    semi = drawing.draw_semi_axes(spec)
    turn = drawing.draw(spec.yaw_deg)
    centre = np.array([spine.centre[0] + sign * (spine.semi_axes[0] + gap + semi[0]), spine.centre[1] + dy, z])
    yaw = -sign * turn  # turns the kidney's own x axis onto the hilum direction
    placed = Placed(centre, semi, yaw)
    drawing.placed[spec.name] = placed
    angle = np.deg2rad(turn)
    hilum = np.array([-sign * np.cos(angle), np.sin(angle), 0.0])
    cortex = drawing.draw(spec.detail["cortex_mm"])
    notch_centre = centre + hilum * semi[0] * drawing.draw(spec.detail["hilum_depth"])
    notch = Ellipsoid(tuple(notch_centre), tuple(semi * drawing.draw(spec.detail["hilum_size"])), yaw)
    outer = Difference(Ellipsoid(tuple(centre), tuple(semi), yaw), notch)
    inner = Difference(Ellipsoid(tuple(centre), tuple(semi - cortex), yaw), notch)
    cortex_tissue, medulla_tissue = spec.tissues
    return [
        drawing.layer(spec.name, spec.label, cortex_tissue, _confined(outer, drawing), placed),
        drawing.layer(spec.name, spec.label, medulla_tissue, _confined(inner, drawing), placed),
    ]
