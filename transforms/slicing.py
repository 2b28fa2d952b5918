"""3D -> 2D: slices of a (C, X, Y, Z) volume along one spatial axis, as views.

Convention: slicing along spatial axis ``a`` keeps the two other spatial axes in their volume
order; the first becomes the slice's H (rows), the second its W (columns). For a RAS volume
sliced along axis 2 (axial), row index grows towards the patient's right (R) and column index
towards anterior (A). This is pure indexing, not a display orientation (the usual radiological
view is this slice transposed and flipped). :func:`transforms.reassemble.slices_to_volume`
uses the same rule, so slice outputs always land on the voxels they came from.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from monai.data import MetaTensor
from monai.utils import convert_to_tensor

from common.errors import ConfigError, DataError
from transforms import keys as K

SPATIAL_AXES = (0, 1, 2)
"""Spatial axes of a (C, X, Y, Z) volume, numbered without the channel."""

CHANNEL_DIMS = 1
EMPTY_SLICE_TOLERANCE = 1e-6
"""A slice whose max - min is below this is constant (background) for ``skip_empty``."""


def check_axis(axis: int) -> int:
    """Returns ``axis`` if it is a spatial axis (0, 1 or 2).

    Raises:
        ConfigError: naming the ``axis`` setting.
    """
    if isinstance(axis, bool) or axis not in SPATIAL_AXES:
        raise ConfigError(
            f"setting 'axis' must be one of {SPATIAL_AXES} (spatial axes of a (C, X, Y, Z) volume), got {axis!r}"
        )
    return int(axis)


def in_plane_axes(axis: int) -> tuple[int, int]:
    """The spatial axes that become a slice's (H, W) when slicing along ``axis``."""
    check_axis(axis)
    first, second = (a for a in SPATIAL_AXES if a != axis)
    return first, second


def check_volume(volume: torch.Tensor) -> None:
    """Checks that ``volume`` is (C, X, Y, Z).

    Raises:
        DataError: with the shape found.
    """
    if volume.ndim != CHANNEL_DIMS + len(SPATIAL_AXES):
        raise DataError(f"a volume must be (C, X, Y, Z), got shape {tuple(volume.shape)}")


def take_slice(volume: torch.Tensor, axis: int, index: int) -> torch.Tensor:
    """The (C, H, W) slice ``index`` along spatial ``axis``: a plain-tensor view sharing storage."""
    # no MetaTensor per slice: MONAI would deep-copy the volume's metadata for every one
    return convert_to_tensor(volume, track_meta=False).select(CHANNEL_DIMS + axis, index)


def take_slices(volume: torch.Tensor, axis: int, indices: Sequence[int]) -> torch.Tensor:
    """The (N, C, H, W) slices ``indices`` along spatial ``axis``, as one contiguous copy.

    A slice across the last (contiguous) axis is a strided read touching a cache line per voxel;
    gathering all of them in one ``index_select`` reads the volume's memory once, not once per slice.
    """
    data = convert_to_tensor(volume, track_meta=False)
    dim = CHANNEL_DIMS + axis
    picked = data.index_select(dim, torch.as_tensor(list(indices), dtype=torch.long, device=data.device))
    return picked.movedim(dim, 0).contiguous()


def is_constant(image: torch.Tensor, tolerance: float = EMPTY_SLICE_TOLERANCE) -> bool:
    """True when ``image``'s intensity range (max - min) is below ``tolerance``."""
    low, high = torch.aminmax(image)
    return bool(high - low < tolerance)


def slice_indices(num_slices: int, start: int | None = None, stop: int | None = None) -> range:
    """Slice indices from ``start`` to ``stop`` (Python slice rules: None = end, negatives count back)."""
    return range(*slice(start, stop).indices(num_slices))


def iter_slices(
    volume: torch.Tensor,
    axis: int,
    start: int | None = None,
    stop: int | None = None,
    skip_empty: bool = False,
    tolerance: float = EMPTY_SLICE_TOLERANCE,
) -> Iterator[dict[str, Any]]:
    """Yields the slices of a (C, X, Y, Z) volume along ``axis`` as dictionaries.

    Each dictionary holds the (C, H, W) ``image`` view (see the module docstring for the axis
    order), ``slice_index``, ``slice_axis``, ``in_plane_axes``, the spatial ``volume_shape``,
    the volume's ``affine`` (one shared tensor) and ``filename_or_obj`` when known.

    Args:
        volume: the volume; a MetaTensor gives its affine and file name.
        axis: spatial axis to slice along (0, 1 or 2).
        start: first slice index (default 0).
        stop: end index, exclusive (default: all slices).
        skip_empty: skip constant (background) slices.
        tolerance: intensity range below which a slice counts as constant.

    Raises:
        ConfigError: ``axis`` is not 0, 1 or 2.
        DataError: ``volume`` is not (C, X, Y, Z).
    """
    check_axis(axis)
    check_volume(volume)  # checked here, not on the first next(): errors point at the call
    spatial_shape = tuple(volume.shape[CHANNEL_DIMS:])
    common = {
        K.SLICE_AXIS: axis,
        K.IN_PLANE_AXES: in_plane_axes(axis),
        K.VOLUME_SHAPE: spatial_shape,
        K.AFFINE: _affine_of(volume),
    }
    if isinstance(volume, MetaTensor) and K.FILENAME in volume.meta:
        common[K.FILENAME] = volume.meta[K.FILENAME]
    indices = slice_indices(spatial_shape[axis], start, stop)
    return _generate_slices(volume, axis, indices, common, tolerance if skip_empty else None)


def _generate_slices(
    volume: torch.Tensor, axis: int, indices: range, common: dict[str, Any], tolerance: float | None
) -> Iterator[dict[str, Any]]:
    """The slice dictionaries of :func:`iter_slices`; ``tolerance`` None keeps constant slices."""
    for index in indices:
        image = take_slice(volume, axis, index)
        if tolerance is not None and is_constant(image, tolerance):
            continue
        yield {K.IMAGE: image, K.SLICE_INDEX: index, **common}


def _affine_of(volume: torch.Tensor) -> torch.Tensor:
    """The volume's affine (identity for plain tensors, as MetaTensor assumes)."""
    if isinstance(volume, MetaTensor):
        return volume.affine
    return torch.eye(len(SPATIAL_AXES) + 1, dtype=torch.float64)
