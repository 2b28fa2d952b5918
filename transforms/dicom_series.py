"""The geometry of a DICOM series: which of its images make the volume, in what order, on what grid.

Read from the headers alone (pydicom datasets, pixels not needed), before any pixel is decoded, by
both DICOM paths: the inference workflow's ITK reader for a series folder
(:class:`transforms.dicom_reader.DicomSeriesReader`) and the deploy app's DICOM operator. The rules,
stated in the README's deploy section:

1. **Images.** Every instance is one image; an enhanced (multi-frame) instance is one image per frame,
   placed by its per-frame functional groups (Plane Position, Plane Orientation, Pixel Measures).
   Siemens mosaics (several images tiled in one frame) are refused, naming the file.
2. **Stacks.** Images with the same orientation, size and pixel spacing form a stack. The largest
   stack is the volume; the others (localizers, a scout, reformats) are left out with a warning.
   When no stack holds two images, the series is refused.
3. **Order.** Slices are sorted by position along the slice normal. Of two different instances at one
   position, the one with the higher AcquisitionNumber (a repeated acquisition) is kept and the other
   named in a warning, as the SDK's DICOM loader does; with equal or no numbers (several phases or
   echoes in one series) the series is refused. One instance stored twice is read once.
4. **Spacing.** The stack is *regular* when every slice lies within ``tolerance`` (a fraction of the
   slice step) of its place on the line from the first to the last slice: the grid then steps exactly
   as the positions do. If that step leaves the slice normal by more than ``tolerance`` of a pixel over
   the stack (gantry tilt), the grid is *sheared*. Otherwise the stack is *uneven*: each slice keeps
   its own position (:attr:`SliceStack.origins`), nothing is averaged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from common.errors import ConfigError, DataError
from transforms.dicom_images import DicomImage, series_images

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
"""DICOM patient coordinates (LPS) -> the RAS world of NIfTI and MONAI."""
SPATIAL_DIMS = 3
MIN_SLICES = 2
"""Slices needed to know the step between them."""
DEFAULT_TOLERANCE = 0.05
"""Default ``slice_spacing_tolerance``: a slice may lie 5 % of the slice step off the regular grid."""
ORIENTATION_ATOL = 1e-4
"""Direction cosines closer than this belong to one stack (DICOM writes them with ~6 decimals)."""
SPACING_ATOL_MM = 1e-3
DUPLICATE_MM = 0.01
"""Two slices closer than this along the normal are at the same position."""


@dataclass(frozen=True)
class SliceStack:
    """The images that make the volume, sorted along the slice normal, and the grid they lie on.

    Voxel axes are (column, row, slice), as ITK and MONAI give a DICOM series.

    Attributes:
        images: the slices in order.
        regular: the slices lie on one straight, evenly spaced line (within the tolerance).
        step: the step from slice to slice (LPS mm): exact for a regular stack, the median step
            along the normal for an uneven one.
        tilt_degrees: the angle between the step and the slice normal (0 for an unsheared grid).
        left_out: images of the series not in this stack (other orientations or sizes, repeats).
        notes: what was decided, one sentence each, for the user's warnings.
    """

    images: tuple[DicomImage, ...]
    regular: bool
    step: np.ndarray
    tilt_degrees: float
    left_out: int
    notes: tuple[str, ...]

    @property
    def shape(self) -> tuple[int, int, int]:
        """(columns, rows, slices)."""
        rows, columns = self.images[0].size
        return columns, rows, len(self.images)

    @property
    def sheared(self) -> bool:
        """The grid's slice axis is not along the slice normal (gantry tilt)."""
        return self.tilt_degrees > 0.0

    def affine(self) -> np.ndarray:
        """The voxel (column, row, slice) -> RAS mm affine; for an uneven stack a nominal one (median step)."""
        first = self.images[0]
        row_spacing, column_spacing = first.spacing
        lps = np.eye(SPATIAL_DIMS + 1)
        lps[:SPATIAL_DIMS, 0] = first.orientation[:SPATIAL_DIMS] * column_spacing
        lps[:SPATIAL_DIMS, 1] = first.orientation[SPATIAL_DIMS:] * row_spacing
        lps[:SPATIAL_DIMS, 2] = self.step
        lps[:SPATIAL_DIMS, SPATIAL_DIMS] = first.position
        return LPS_TO_RAS @ lps

    def origins(self) -> np.ndarray:
        """(slices, 3) RAS position of each slice's first pixel: the truth an uneven stack keeps."""
        positions = np.stack([image.position for image in self.images])
        return positions * np.diag(LPS_TO_RAS)[:SPATIAL_DIMS]

    def frames(self) -> list[int] | None:
        """The frame of each slice when the stack is one multi-frame instance, else None."""
        if self.images[0].frame is None:
            return None
        return [image.frame for image in self.images]


def _same_stack(a: DicomImage, b: DicomImage) -> bool:
    return (
        a.size == b.size
        and np.allclose(a.orientation, b.orientation, atol=ORIENTATION_ATOL)
        and np.allclose(a.spacing, b.spacing, atol=SPACING_ATOL_MM)
    )


def find_stacks(images: Sequence[DicomImage]) -> list[list[DicomImage]]:
    """Images grouped by orientation, size and pixel spacing, largest group first (ties: first met first)."""
    stacks: list[list[DicomImage]] = []
    for image in images:
        for stack in stacks:
            if _same_stack(stack[0], image):
                stack.append(image)
                break
        else:
            stacks.append([image])
    return sorted(stacks, key=len, reverse=True)


def _describe(image: DicomImage) -> str:
    rows, columns = image.size
    cosines = ", ".join(f"{v:g}" for v in np.round(image.orientation, 3))
    return f"{columns}x{rows} images oriented ({cosines})"


def _without_repeats(
    ordered: list[DicomImage], distances: np.ndarray, where: str
) -> tuple[list[DicomImage], list[str]]:
    """One image per position: an instance stored twice is read once, a repeated acquisition replaces the earlier.

    Returns:
        the kept images in order, and a note per image left out.

    Raises:
        DataError: two different images at one position without AcquisitionNumbers telling which is the later.
    """
    kept, notes = [ordered[0]], []
    for image, gap in zip(ordered[1:], np.diff(distances)):
        previous = kept[-1]
        if gap >= DUPLICATE_MM:
            kept.append(image)
        elif (image.sop_instance_uid, image.frame) == (previous.sop_instance_uid, previous.frame):
            notes.append(f"{image.name} holds the same image as {previous.name} and is read once")
        elif None not in (image.acquisition, previous.acquisition) and image.acquisition != previous.acquisition:
            later, earlier = (image, previous) if image.acquisition > previous.acquisition else (previous, image)
            kept[-1] = later
            notes.append(
                f"{earlier.name} and {later.name} are at the same position: {later.name} (acquisition "
                f"{later.acquisition}) is used and {earlier.name} (acquisition {earlier.acquisition}) left out"
            )
        else:
            position = ", ".join(f"{v:g}" for v in np.round(image.position, 2))
            raise DataError(
                f"{where}: {previous.name} and {image.name} are two images at the same position ({position} mm) and "
                "the same AcquisitionNumber: several phases or echoes in one series? Put each in its own series folder"
            )
    return kept, notes


def plan_stack(images: Sequence[DicomImage], where: str, tolerance: float = DEFAULT_TOLERANCE) -> SliceStack:
    """Chooses the volume among a series' images, orders it and decides its grid (the module's rules).

    Args:
        images: the series' images (:func:`series_images`).
        where: the series, for messages (e.g. ``"DICOM series 1.2.3 in /data/ct"``).
        tolerance: ``slice_spacing_tolerance``: how far a slice may lie from the regular grid, as a
            fraction of the slice step (and how far a dropped tilt may move the last slice, as a
            fraction of a pixel).

    Raises:
        ConfigError: ``tolerance`` is not a non-negative number.
        DataError: no stack of two or more parallel images, or two images at one position.
    """
    tolerance = check_tolerance(tolerance)
    if not images:
        raise DataError(f"{where} holds no images")
    stacks = find_stacks(images)
    chosen = stacks[0]
    if len(chosen) < MIN_SLICES:
        raise DataError(
            f"{where} has no stack of parallel slices to make a volume: {len(images)} image(s) in {len(stacks)} "
            "orientation(s) or size(s), at most one in each (localizers only?)"
        )
    notes = []
    if len(stacks) > 1 and len(stacks[1]) == len(chosen):
        raise DataError(
            f"{where} holds two stacks of {len(chosen)} slices ({_describe(chosen[0])} and {_describe(stacks[1][0])}); "
            "put each in its own series folder"
        )
    others = len(images) - len(chosen)
    if others:
        notes.append(
            f"{others} of its {len(images)} images have another orientation or size (localizers?) and are left out; "
            f"the volume is the {len(chosen)} {_describe(chosen[0])}"
        )
    normal = chosen[0].normal
    order = np.argsort([image.position @ normal for image in chosen], kind="stable")
    ordered = [chosen[i] for i in order]
    kept, repeats = _without_repeats(ordered, np.array([image.position @ normal for image in ordered]), where)
    if len(kept) < MIN_SLICES:
        raise DataError(f"{where}: all {len(ordered)} slices are at one position; a 3D volume is needed")
    notes.extend(repeats)
    positions = np.stack([image.position for image in kept])
    step = (positions[-1] - positions[0]) / (len(kept) - 1)
    along = float(step @ normal)
    line = positions[0] + np.arange(len(kept))[:, None] * step
    off_grid = np.linalg.norm(positions - line, axis=1)
    regular = float(off_grid.max()) <= tolerance * abs(along)
    tilt = 0.0
    if regular:
        across = step - along * normal
        drift = float(np.linalg.norm(across)) * (len(kept) - 1)
        if drift > tolerance * min(kept[0].spacing):
            tilt = math.degrees(math.atan2(float(np.linalg.norm(across)), abs(along)))
            notes.append(
                f"its slices step {abs(along):.3g} mm along the normal and {np.linalg.norm(across):.3g} mm across it "
                f"(a {tilt:.1f} degree gantry tilt): the grid is sheared"
            )
        else:
            step = along * normal  # within tolerance of the normal: an orthogonal grid
    else:
        gaps = np.diff(positions @ normal)
        worst = int(off_grid.argmax())
        step = float(np.median(gaps)) * normal
        notes.append(
            f"its slice spacing is uneven (steps {gaps.min():.3g} to {gaps.max():.3g} mm; {kept[worst].name} lies "
            f"{off_grid[worst]:.3g} mm from a regular grid): each slice keeps its own position"
        )
    return SliceStack(
        images=tuple(kept),
        regular=regular,
        step=step,
        tilt_degrees=tilt,
        left_out=others + len(repeats),
        notes=tuple(notes),
    )


def check_tolerance(value: Any) -> float:
    """Returns ``slice_spacing_tolerance`` as a float if it is a non-negative number.

    Raises:
        ConfigError: naming the setting.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ConfigError(f"setting 'slice_spacing_tolerance' must be a non-negative number, got {value!r}")
    return float(value)


def plan_series(
    datasets: Sequence[Any], names: Sequence[str], where: str, tolerance: float = DEFAULT_TOLERANCE
) -> SliceStack:
    """:func:`plan_stack` of the images of ``datasets`` (one series' instances, headers suffice)."""
    return plan_stack(series_images(datasets, names), where, tolerance)
