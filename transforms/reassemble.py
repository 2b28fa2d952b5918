"""Slices -> volume, back to the file's own grid, and the geometry of the answers.

Per-slice masks are written into a volume on the *loaded* grid (the reference's shape, affine,
metadata and transform trace), so the loader's inverse applies to it unchanged; then
:func:`to_original_space` undoes the loading (orientation) with MONAI's ``Invertd``, giving the
original file's shape and affine exactly.

Voxel coordinates follow MONAI/nibabel: voxel ``i`` has its centre at ``i`` and spans
``i - 0.5 .. i + 0.5``; affines map voxel coordinates to world RAS millimetres (ITK-read volumes
are converted to RAS by MONAI too).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence

import torch
from monai.data import MetaTensor
from monai.transforms import Invertd
from monai.transforms.utils import apply_affine_to_points, generate_spatial_bounding_box
from monai.utils import TraceKeys, convert_to_tensor

from networks.errors import DataError
from transforms.boxes import normalised_to_pixel
from transforms.loading import LoadVolumed
from transforms.slicing import CHANNEL_DIMS, SPATIAL_AXES, check_axis, check_volume, in_plane_axes, take_slice

MM3_PER_ML = 1000.0
PIXEL_CENTRE_OFFSET = 0.5
"""Distance from a pixel edge to its centre, in pixels."""
LOADER_OPERATIONS = ("Orientation",)
"""Transforms whose trace :func:`to_original_space` undoes (those :class:`LoadVolumed` records)."""

_REFERENCE = "reference"
_OUTPUT = "output"

SliceMasks = Mapping[int, torch.Tensor] | Iterable[tuple[int, torch.Tensor]]


def slices_to_volume(slice_masks: SliceMasks, reference: MetaTensor, axis: int) -> MetaTensor:
    """Writes per-slice (H, W) or (K, H, W) masks into a volume on ``reference``'s grid.

    Args:
        slice_masks: slice index -> mask (a dict, or (index, mask) pairs), slices taken along
            ``axis`` with :mod:`transforms.slicing`'s axis order. Slices not given are zero.
        reference: the loaded (C, X, Y, Z) image the slices came from.
        axis: the spatial axis the slices were taken along.

    Returns:
        (K, X, Y, Z) MetaTensor (K = 1 for (H, W) masks) of the masks' dtype, with copies of the
        reference's affine, metadata and applied operations.

    Raises:
        ConfigError: ``axis`` is not 0, 1 or 2.
        DataError: a slice index is out of range or a mask has the wrong shape.
    """
    check_axis(axis)
    check_volume(reference)
    masks = {int(index): _with_channels(torch.as_tensor(mask)) for index, mask in dict(slice_masks).items()}
    spatial = tuple(reference.shape[CHANNEL_DIMS:])
    height, width = (spatial[a] for a in in_plane_axes(axis))
    first = next(iter(masks.values()), None)
    channels, dtype = (1, torch.uint8) if first is None else (first.shape[0], first.dtype)
    volume = torch.zeros((channels, *spatial), dtype=dtype, device=reference.device)
    for index, mask in masks.items():
        if not 0 <= index < spatial[axis]:
            raise DataError(f"slice index {index} is outside 0..{spatial[axis] - 1} along axis {axis}")
        if tuple(mask.shape) != (channels, height, width):
            expected = (channels, height, width)
            raise DataError(f"mask of slice {index} has shape {tuple(mask.shape)}, expected {expected}")
        take_slice(volume, axis, index).copy_(mask)
    return MetaTensor(
        volume, meta=copy.deepcopy(reference.meta), applied_operations=copy.deepcopy(reference.applied_operations)
    )


def _with_channels(mask: torch.Tensor) -> torch.Tensor:
    """(H, W) -> (1, H, W); (K, H, W) unchanged."""
    return mask[None] if mask.ndim == len(SPATIAL_AXES) - 1 else mask


def to_original_space(volume: torch.Tensor, reference: MetaTensor) -> MetaTensor:
    """Undoes the loading transforms recorded on ``reference``: back to the file's grid.

    Args:
        volume: (K, X, Y, Z) data on the loaded grid, e.g. from :func:`slices_to_volume`.
        reference: the image as loaded by :class:`transforms.loading.LoadVolumed`.

    Returns:
        (K, X', Y', Z') MetaTensor with the original file's shape and affine.

    Raises:
        DataError: ``volume``'s spatial shape differs from ``reference``'s, or ``reference``
            carries transforms other than the loader's (invert those with ``Invertd`` and the
            transform that applied them).
    """
    check_volume(volume)
    if volume.shape[CHANNEL_DIMS:] != reference.shape[CHANNEL_DIMS:]:
        shapes = tuple(volume.shape[CHANNEL_DIMS:]), tuple(reference.shape[CHANNEL_DIMS:])
        raise DataError(f"volume shape {shapes[0]} differs from the reference's {shapes[1]}")
    names = [op.get(TraceKeys.CLASS_NAME) for op in reference.applied_operations]
    foreign = [name for name in names if name not in LOADER_OPERATIONS]
    if foreign:
        raise DataError(
            f"reference carries transforms other than the loader's: {foreign}; invert them with Invertd first"
        )
    if not reference.applied_operations:  # loaded without reorientation: already the file's grid
        plain = volume.as_tensor() if isinstance(volume, MetaTensor) else torch.as_tensor(volume)
        return MetaTensor(plain, meta=copy.deepcopy(reference.meta))
    # the loader resets trace ids, so a fresh loader inverts volumes loaded by any other one
    inverter = Invertd(keys=_OUTPUT, transform=LoadVolumed(_REFERENCE), orig_keys=_REFERENCE, nearest_interp=True)
    return inverter({_REFERENCE: reference, _OUTPUT: volume})[_OUTPUT]


def box_to_voxel_corners(
    box_norm_xyxy: torch.Tensor, slice_index: int, axis: int, volume_shape: Sequence[int]
) -> torch.Tensor:
    """Corners of a slice's normalised box in continuous voxel coordinates of the volume.

    The box's pixel edges map to voxel edges: a box exactly covering columns c0..c1 spans
    ``c0 - 0.5 .. c1 + 0.5`` along the W axis. The coordinate along ``axis`` is the slice index.

    Args:
        box_norm_xyxy: (4,) normalised xyxy box (x along the slice's W, y along its H).
        slice_index: index of the slice along ``axis``.
        axis: spatial axis the slice was taken along.
        volume_shape: spatial shape (X, Y, Z) of the volume.

    Returns:
        (2, 3) float64: the minimum and maximum corner, in volume axis order.

    Raises:
        ConfigError: ``axis`` is not 0, 1 or 2.
        DataError: ``volume_shape`` is not a spatial (X, Y, Z) shape.
    """
    check_axis(axis)
    if len(volume_shape) != len(SPATIAL_AXES):
        raise DataError(f"volume_shape must be the spatial shape (X, Y, Z), got {tuple(volume_shape)}")
    h_axis, w_axis = in_plane_axes(axis)
    box = torch.as_tensor(box_norm_xyxy, dtype=torch.float64)
    x0, y0, x1, y1 = normalised_to_pixel(box, volume_shape[h_axis], volume_shape[w_axis]) - PIXEL_CENTRE_OFFSET
    corners = torch.empty(2, len(SPATIAL_AXES), dtype=torch.float64)
    corners[:, axis] = float(slice_index)
    corners[:, w_axis] = torch.stack([x0, x1])
    corners[:, h_axis] = torch.stack([y0, y1])
    return corners


def voxel_to_world(points: torch.Tensor, affine: torch.Tensor) -> torch.Tensor:
    """Maps (..., 3) voxel coordinates to world coordinates (RAS mm) with a (4, 4) affine."""
    points = torch.as_tensor(points, dtype=torch.float64)
    flat = points.reshape(1, -1, len(SPATIAL_AXES))
    world = apply_affine_to_points(flat, torch.as_tensor(affine, dtype=torch.float64))
    return world.reshape(points.shape)


def box_3d(mask_volume: torch.Tensor) -> torch.Tensor | None:
    """Voxel-index bounding box of a (C, X, Y, Z) or (X, Y, Z) mask (foreground = values > 0).

    Returns:
        (2, 3) int64 of the first and last foreground voxel index per axis (inclusive; the box's
        edges are these -/+ 0.5 in :func:`box_to_voxel_corners`' coordinates), or None when empty.
    """
    mask = convert_to_tensor(mask_volume, track_meta=False)  # no MetaTensor metadata work per op
    mask = mask if mask.ndim == len(SPATIAL_AXES) + CHANNEL_DIMS else mask[None]
    start, end = generate_spatial_bounding_box(mask)
    if all(s == e for s, e in zip(start, end)):
        return None
    # generate_spatial_bounding_box returns exclusive ends
    return torch.tensor([start, [e - 1 for e in end]], dtype=torch.int64)


def volume_ml(mask: torch.Tensor, affine: torch.Tensor) -> float:
    """Volume of a mask's foreground (voxels > 0, all channels) in millilitres, from the affine's voxel size."""
    affine = torch.as_tensor(affine, dtype=torch.float64)
    voxel_mm3 = torch.linalg.det(affine[: len(SPATIAL_AXES), : len(SPATIAL_AXES)]).abs().item()
    # count_nonzero on a plain tensor: a bool sum on a MetaTensor took ~0.5 s for 512x512x200
    return torch.count_nonzero(convert_to_tensor(mask, track_meta=False) > 0).item() * voxel_mm3 / MM3_PER_ML
