"""The page's slice views: axial, coronal and sagittal planes of the volume, windowed, with a turn's mask.

Views are drawn on the model's grid (RAS), each plane in its radiological orientation (the same
transposition as the overlay montage, :data:`bundle.inference.overlay.RADIOLOGICAL_VIEW`): axial with
anterior up and the patient's right on the left, coronal and sagittal with superior up. Each is
scaled to its physical aspect from the voxel spacing. The mask is blended in the overlay's colour;
the box is the box head's on an axial slice where the target was found, and the 3D box's outline
on the other planes.
"""

from __future__ import annotations

import enum
import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageDraw

from bundle.inference.overlay import BOX_COLOUR, BOX_WIDTH, RADIOLOGICAL_VIEW, TileRenderer, display_box
from common.errors import DataError

VIEW_SIZE = 512
"""Longest side of a rendered view, in pixels."""
OTHER_AXES = ((1, 2), (0, 2), (0, 1))
"""For each of the X, Y and Z axes, the two others (reduced over for that axis' profile)."""
MR_PERCENTILES = (1.0, 99.0)
"""The default window of a volume that is not CT: these percentiles of its intensities."""


class Plane(enum.Enum):
    """A view plane and the RAS axis it is fixed on."""

    SAGITTAL = 0
    CORONAL = 1
    AXIAL = 2

    @classmethod
    def named(cls, name: str) -> Plane:
        """The plane called ``name`` (``axial``, ``coronal``, ``sagittal``).

        Raises:
            DataError: another name.
        """
        try:
            return cls[name.upper()]
        except KeyError:
            raise DataError(f"unknown view {name!r}: one of {', '.join(p.name.lower() for p in cls)}") from None


@dataclass(frozen=True)
class Window:
    """An intensity window: ``level`` (centre) and ``width``, in the volume's units (HU for CT)."""

    level: float
    width: float

    def apply(self, values: np.ndarray) -> np.ndarray:
        """``values`` mapped to [0, 1]: the window's low end to 0, its high end to 1."""
        low = self.level - self.width / 2.0
        return np.clip((values - low) / max(self.width, 1e-6), 0.0, 1.0)


def default_window(source: torch.Tensor, preset: tuple[float, float] | None) -> Window:
    """The window a volume opens with: the model's CT preset (level, width), else the middle percentiles."""
    if preset is not None:
        return Window(*preset)
    low, high = np.percentile(source.float().numpy(), MR_PERCENTILES)
    return Window(level=float(low + high) / 2.0, width=max(float(high - low), 1e-3))


@dataclass(frozen=True)
class TurnOverlay:
    """What of one turn is drawn: its (X, Y, Z) mask, the box head's boxes by axial slice, and the 3D box.

    Attributes:
        mask: boolean mask on the model's grid.
        slice_boxes: axial slice index -> normalised xyxy box of the slices where the target was found.
        extent: (low, high) voxel indices of the mask along each axis, or None without a target.
    """

    mask: np.ndarray
    slice_boxes: dict[int, Sequence[float]]
    extent: tuple[tuple[int, int], ...] | None

    @classmethod
    def of(cls, mask: torch.Tensor, slice_boxes: dict[int, Sequence[float]]) -> TurnOverlay:
        """The overlay of a (1, X, Y, Z) mask."""
        spatial = torch.as_tensor(mask)[0].cpu().numpy() > 0
        extent = None
        if spatial.any():
            occupied = [np.flatnonzero(spatial.any(axis=others)) for others in OTHER_AXES]
            extent = tuple((int(held[0]), int(held[-1])) for held in occupied)
        return cls(spatial, slice_boxes, extent)

    def centre(self) -> list[int] | None:
        """The (x, y, z) slices the views go to for this turn: on each axis, the slice with most of the mask
        (None without a target)."""
        if self.extent is None:
            return None
        return [int(self.mask.sum(axis=others).argmax()) for others in OTHER_AXES]


class SliceViews:
    """Renders the planes of one volume.

    Args:
        source: the (1, X, Y, Z) volume as read, on the model's grid.
        spacing: (X, Y, Z) voxel spacing in mm.
        view_size: longest side of a rendered view, in pixels.
    """

    def __init__(self, source: torch.Tensor, spacing: Sequence[float], view_size: int = VIEW_SIZE) -> None:
        self.volume = torch.as_tensor(source)[0].float().cpu().numpy()
        self.spacing = tuple(float(s) for s in spacing)
        self.view_size = view_size

    @property
    def shape(self) -> tuple[int, int, int]:
        """(X, Y, Z) voxels."""
        return tuple(int(n) for n in self.volume.shape)

    def check_index(self, plane: Plane, index: int) -> None:
        """Raises DataError when ``index`` is not a slice of ``plane``."""
        count = self.shape[plane.value]
        if not 0 <= index < count:
            raise DataError(f"{plane.name.lower()} slice {index} is outside the volume (0 to {count - 1})")

    def render(self, plane: Plane, index: int, window: Window, overlay: TurnOverlay | None = None) -> Image.Image:
        """The view of slice ``index`` of ``plane``, windowed, with ``overlay``'s mask and box when given.

        Raises:
            DataError: ``index`` is outside the volume.
        """
        self.check_index(plane, index)
        image = torch.from_numpy(window.apply(np.take(self.volume, index, axis=plane.value)))
        mask = torch.zeros(image.shape, dtype=torch.bool)
        if overlay is not None:
            mask = torch.from_numpy(np.take(overlay.mask, index, axis=plane.value))
        view = TileRenderer.blend(image, mask).transpose(RADIOLOGICAL_VIEW)
        view = view.resize(self.display_size(plane), Image.Resampling.BILINEAR)
        box = None if overlay is None else self.box(plane, index, overlay)
        if box is not None:
            x0, y0, x1, y1 = display_box(box)
            width, height = view.size
            corners = [x0 * width, y0 * height, x1 * width - 1, y1 * height - 1]
            ImageDraw.Draw(view).rectangle(corners, outline=BOX_COLOUR, width=BOX_WIDTH)
        return view

    def display_size(self, plane: Plane) -> tuple[int, int]:
        """(width, height) in pixels of a view of ``plane`` (the radiological view swaps the slice's axes)."""
        rows, columns = (axis for axis in range(3) if axis != plane.value)
        shown_width = self.shape[rows] * self.spacing[rows]
        shown_height = self.shape[columns] * self.spacing[columns]
        scale = self.view_size / max(shown_width, shown_height)
        return max(1, round(shown_width * scale)), max(1, round(shown_height * scale))

    def box(self, plane: Plane, index: int, overlay: TurnOverlay) -> Sequence[float] | None:
        """The normalised xyxy box (in slice orientation) drawn on slice ``index`` of ``plane``, or None."""
        if plane is Plane.AXIAL:
            return overlay.slice_boxes.get(index)
        if overlay.extent is None or not overlay.extent[plane.value][0] <= index <= overlay.extent[plane.value][1]:
            return None
        rows, columns = (axis for axis in range(3) if axis != plane.value)
        (r0, r1), (c0, c1) = overlay.extent[rows], overlay.extent[columns]
        # x runs along the slice's columns (W), y along its rows (H), ends exclusive
        return (
            c0 / self.shape[columns],
            r0 / self.shape[rows],
            (c1 + 1) / self.shape[columns],
            (r1 + 1) / self.shape[rows],
        )


def png_bytes(image: Image.Image) -> bytes:
    """``image`` as PNG file bytes."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
