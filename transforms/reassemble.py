"""Slices -> volume, back to the file's own grid, and the geometry of the answers.

Per-slice masks are written into a volume on the *loaded* grid (the reference's shape, affine,
metadata and transform trace), so the loader's inverse applies to it unchanged: MONAI's ``Invertd``
with the loading transforms (the inference config's ``postprocessing``) then gives the original
file's shape and affine exactly.

Voxel coordinates follow MONAI/nibabel: voxel ``i`` has its centre at ``i`` and spans
``i - 0.5 .. i + 0.5``; affines map voxel coordinates to world RAS millimetres (ITK-read volumes
are converted to RAS by MONAI too).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Mapping, Sequence

import torch
from monai.data import MetaTensor
from monai.transforms.utils import apply_affine_to_points
from monai.utils import convert_to_tensor

from common.errors import DataError
from transforms.boxes import normalised_to_pixel
from transforms.slicing import CHANNEL_DIMS, SPATIAL_AXES, check_axis, check_volume, in_plane_axes, take_slice

MM3_PER_ML = 1000.0
PIXEL_CENTRE_OFFSET = 0.5
"""Distance from a pixel edge to its centre, in pixels."""
SLAB_VOXELS = 1 << 24
"""Voxels of a mask looked at at a time when describing it (:func:`foreground_slabs`)."""

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
    masks = {int(index): _with_channels(torch.as_tensor(mask)) for index, mask in dict(slice_masks).items()}
    first = next(iter(masks.values()), None)
    channels, dtype = (1, torch.uint8) if first is None else (first.shape[0], first.dtype)
    volume = empty_mask_volume(reference, channels, dtype)
    for index, mask in masks.items():
        put_slice(volume, axis, index, mask)
    return volume


def empty_mask_volume(reference: MetaTensor, channels: int = 1, dtype: torch.dtype = torch.uint8) -> MetaTensor:
    """A zero (K, X, Y, Z) volume on ``reference``'s grid (and device), with copies of its affine, metadata and trace.

    Slices written into it with :func:`put_slice` land on the voxels they were taken from, so the
    loader's inverse applies to it unchanged.

    Raises:
        DataError: ``reference`` is not (C, X, Y, Z).
    """
    check_volume(reference)
    volume = torch.zeros((channels, *reference.shape[CHANNEL_DIMS:]), dtype=dtype, device=reference.device)
    return MetaTensor(
        volume, meta=copy.deepcopy(reference.meta), applied_operations=copy.deepcopy(reference.applied_operations)
    )


def put_slice(volume: torch.Tensor, axis: int, index: int, mask: torch.Tensor) -> None:
    """Writes one (H, W) or (K, H, W) mask into slice ``index`` along ``axis`` of a (K, X, Y, Z) volume.

    Raises:
        DataError: ``index`` is out of range or the mask's shape is not the slice's.
    """
    spatial = tuple(volume.shape[CHANNEL_DIMS:])
    mask = _with_channels(torch.as_tensor(mask))
    expected = (volume.shape[0], *(spatial[a] for a in in_plane_axes(axis)))
    if not 0 <= index < spatial[axis]:
        raise DataError(f"slice index {index} is outside 0..{spatial[axis] - 1} along axis {axis}")
    if tuple(mask.shape) != expected:
        raise DataError(f"mask of slice {index} has shape {tuple(mask.shape)}, expected {expected}")
    take_slice(volume, axis, index).copy_(mask)


def _with_channels(mask: torch.Tensor) -> torch.Tensor:
    """(H, W) -> (1, H, W); (K, H, W) unchanged."""
    return mask[None] if mask.ndim == len(SPATIAL_AXES) - 1 else mask


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


def mask_slabs(mask: torch.Tensor) -> Iterator[tuple[int, torch.Tensor]]:
    """``(first index, (C, X, Y, k) view)`` of a (C, X, Y, Z) or (X, Y, Z) mask, slab by slab along Z.

    A slab holds about :data:`SLAB_VOXELS` voxels, so what is computed from it (``slab > 0``) never
    makes a volume-sized boolean mask (a 512x512x1000 one is 250 MiB; MONAI's
    ``generate_spatial_bounding_box`` makes one first).
    """
    plain = convert_to_tensor(mask, track_meta=False)  # no MetaTensor metadata work per op
    plain = plain if plain.ndim == len(SPATIAL_AXES) + CHANNEL_DIMS else plain[None]
    plane = max(plain.shape[0] * plain.shape[1] * plain.shape[2], 1)
    step = max(SLAB_VOXELS // plane, 1)
    for start in range(0, plain.shape[-1], step):
        yield start, plain[..., start : start + step]


def box_3d(mask_volume: torch.Tensor) -> torch.Tensor | None:
    """Voxel-index bounding box of a (C, X, Y, Z) or (X, Y, Z) mask (foreground = values > 0).

    Returns:
        (2, 3) int64 of the first and last foreground voxel index per axis (inclusive; the box's
        edges are these -/+ 0.5 in :func:`box_to_voxel_corners`' coordinates), or None when empty.
    """
    shape = mask_volume.shape[-len(SPATIAL_AXES) :]
    along = [torch.zeros(n, dtype=torch.bool, device=mask_volume.device) for n in shape]
    for start, values in mask_slabs(mask_volume):
        slab = (values > 0).any(dim=0)  # foreground in any channel
        in_plane = slab.any(dim=2)
        along[0] |= in_plane.any(dim=1)
        along[1] |= in_plane.any(dim=0)
        along[2][start : start + slab.shape[2]] = slab.any(dim=1).any(dim=0)
    if not bool(along[0].any()):
        return None
    present = [torch.nonzero(a).flatten() for a in along]
    return torch.stack([torch.stack([p[0] for p in present]), torch.stack([p[-1] for p in present])]).cpu()


def volume_ml(mask: torch.Tensor, affine: torch.Tensor) -> float:
    """Volume of a mask's foreground (voxels > 0, all channels) in millilitres, from the affine's voxel size."""
    affine = torch.as_tensor(affine, dtype=torch.float64)
    voxel_mm3 = torch.linalg.det(affine[: len(SPATIAL_AXES), : len(SPATIAL_AXES)]).abs().item()
    voxels = sum(int(torch.count_nonzero(slab > 0)) for _, slab in mask_slabs(mask))
    return voxels * voxel_mm3 / MM3_PER_ML
