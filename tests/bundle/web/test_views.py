"""The page's slice views: radiological orientation, physical aspect, the window, the mask colour and the box."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bundle.inference.overlay import BOX_COLOUR, MASK_ALPHA, MASK_COLOUR
from bundle.web.views import Plane, SliceViews, TurnOverlay, Window, default_window
from common.errors import DataError

SHAPE = (20, 30, 10)
SPACING = (1.0, 1.0, 3.0)


def volume() -> torch.Tensor:
    values = torch.full((1, *SHAPE), -1000.0)
    values[0, 15:, :, :] = 1000.0  # the patient's right half (RAS x high) is bright
    return values


def red_pixels(image) -> np.ndarray:
    rgb = np.asarray(image).astype(int)
    return (rgb[..., 0] - rgb[..., 1] > MASK_ALPHA * (MASK_COLOUR[0] - MASK_COLOUR[1]) / 2) & (
        rgb[..., 1] == rgb[..., 2]
    )


def test_an_axial_view_shows_the_patients_right_on_the_left_at_its_physical_aspect():
    views = SliceViews(volume(), SPACING, view_size=60)
    image = np.asarray(views.render(Plane.AXIAL, 5, Window(0.0, 100.0)))
    assert image.shape[:2] == (60, 40)  # rows along A-P (30 mm), columns along R-L (20 mm)
    assert image[:, :5].mean() == 255 and image[:, -5:].mean() == 0  # right (bright) on the left
    coronal = views.render(Plane.CORONAL, 5, Window(0.0, 100.0))
    assert coronal.size == (20 * 60 // 30, 60)  # 20 mm wide, 30 mm (10 slices of 3 mm) high


def test_a_turns_mask_is_drawn_in_the_overlay_colour_with_its_box():
    mask = torch.zeros((1, *SHAPE), dtype=torch.uint8)
    mask[0, 2:6, 3:9, 4:7] = 1
    overlay = TurnOverlay.of(mask, {5: [0.1, 0.1, 0.3, 0.3]})
    views = SliceViews(volume(), SPACING, view_size=60)
    assert overlay.extent == ((2, 5), (3, 8), (4, 6)) and overlay.centre() == [2, 3, 4]
    shown = views.render(Plane.AXIAL, 5, Window(0.0, 100.0), overlay)
    assert red_pixels(shown).sum() > 0
    assert (np.asarray(shown) == BOX_COLOUR).all(axis=-1).sum() > 0
    assert red_pixels(views.render(Plane.AXIAL, 8, Window(0.0, 100.0), overlay)).sum() == 0  # no target there
    sagittal = views.render(Plane.SAGITTAL, 3, Window(0.0, 100.0), overlay)
    assert red_pixels(sagittal).sum() > 0 and (np.asarray(sagittal) == BOX_COLOUR).all(axis=-1).sum() > 0


def test_the_window_maps_its_range_to_grey_levels_and_defaults_to_the_preset_or_percentiles():
    assert Window(40.0, 400.0).apply(np.array([-160.0, 40.0, 240.0])).tolist() == [0.0, 0.5, 1.0]
    assert default_window(volume(), (40.0, 400.0)) == Window(40.0, 400.0)
    mr = default_window(torch.linspace(0, 100, 101)[None], None)
    assert mr.level == pytest.approx(50.0) and mr.width == pytest.approx(98.0)


def test_slices_and_planes_outside_the_volume_are_refused():
    views = SliceViews(volume(), SPACING)
    with pytest.raises(DataError, match="axial slice 10 is outside the volume"):
        views.render(Plane.AXIAL, 10, Window(0.0, 1.0))
    with pytest.raises(DataError, match="unknown view 'oblique'"):
        Plane.named("oblique")
