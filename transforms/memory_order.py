"""Voxel memory order: NIfTI files hold volumes in Fortran order, torch and MONAI work in C order.

Going from one to the other is a transposing copy, and for a large volume it is the costliest
step of loading or saving after (de)compression: numpy copies a 512x512x200 int16 volume in
~0.75 s on one core, striding against the cache. Copied one plane (one index of the second
axis) at a time, each plane's source and destination stay in cache, and torch's copy kernel
does each plane faster still: ~0.16 s for the same volume (same values, same shape, only the
memory layout changes).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from monai.config import DtypeLike

TORCH_COPYABLE = frozenset(
    np.dtype(t) for t in (np.bool_, np.uint8, np.int8, np.int16, np.int32, np.int64, np.float16, np.float32, np.float64)
)
"""numpy dtypes torch holds natively; other dtypes (uint16, big-endian ...) are copied by numpy."""
PLANE_AXIS = 1
"""Volumes are copied one index of this axis at a time: an (X, Z) plane, ~200 KB for 512x200 int16."""
SLAB_AXIS = 2
"""Files are read a slab of this axis (the third, slowest of the volume's in a NIfTI file) at a time."""
SLAB_BYTES = 1 << 25
"""File data read at a time by :func:`read_c_order` (32 MiB: 64 planes of 512x512 int16)."""


def copy_by_planes(
    destination: torch.Tensor, source: torch.Tensor, transform: Callable[[torch.Tensor], torch.Tensor] | None = None
) -> torch.Tensor:
    """Copies ``source`` into ``destination`` (same shape, any strides) plane by plane; returns ``destination``.

    ``transform`` (e.g. ``lambda plane: plane > 0``) is applied to each source plane on the way, so
    its temporaries are plane-sized, never volume-sized.
    """
    transform = transform or (lambda plane: plane)
    if source.ndim <= PLANE_AXIS + 1:
        return destination.copy_(transform(source))
    for index in range(source.shape[PLANE_AXIS]):
        destination.select(PLANE_AXIS, index).copy_(transform(source.select(PLANE_AXIS, index)))
    return destination


def c_order(array: np.ndarray) -> np.ndarray:
    """``array`` as a C-contiguous array: itself if it already is one, else a plane-by-plane copy."""
    if array.flags.c_contiguous:
        return array
    if not array.flags.f_contiguous or array.dtype not in TORCH_COPYABLE or not array.flags.writeable:
        return np.ascontiguousarray(array)
    source = torch.from_numpy(array)
    return copy_by_planes(torch.empty(array.shape, dtype=source.dtype), source).numpy()


def fortran_order(
    tensor: torch.Tensor,
    dtype: torch.dtype | None = None,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> np.ndarray:
    """A tensor as a Fortran-contiguous numpy array on the CPU (same shape), copied plane by plane.

    Args:
        tensor: the data.
        dtype: the array's dtype (default the tensor's); planes are converted as they are copied.
        transform: applied to each plane on the way (:func:`copy_by_planes`).
    """
    tensor = tensor.detach().cpu()
    reversed_dims = tuple(reversed(range(tensor.ndim)))
    storage = torch.empty(tuple(tensor.shape[d] for d in reversed_dims), dtype=dtype or tensor.dtype)
    copy_by_planes(storage.permute(reversed_dims), tensor, transform)
    return storage.numpy().T


def read_c_order(proxy: Any, dtype: DtypeLike) -> np.ndarray:
    """The voxels of a nibabel array proxy (``image.dataobj``) as a C-contiguous array of ``dtype``.

    Read a slab of about :data:`SLAB_BYTES` of file data at a time along the third axis (the
    slowest in a NIfTI file, so each read is one contiguous stretch of it, and a gzip stream is
    read once, front to back), each slab scaled by nibabel as a whole-array read would be, then
    converted and transposed plane by plane into place. Only the result and one slab are in memory.
    """
    target = np.dtype(dtype)
    shape = tuple(proxy.shape)
    if len(shape) <= SLAB_AXIS or target not in TORCH_COPYABLE:
        return c_order(np.asarray(proxy, dtype=target))
    out = torch.from_numpy(np.empty(shape, dtype=target))
    plane_bytes = max(int(np.prod(shape[:SLAB_AXIS] + shape[SLAB_AXIS + 1 :])) * proxy.dtype.itemsize, 1)
    step = max(SLAB_BYTES // plane_bytes, 1)
    for start in range(0, shape[SLAB_AXIS], step):
        where = (slice(None),) * SLAB_AXIS + (slice(start, start + step),)
        slab = np.asarray(proxy[where])
        if slab.dtype not in TORCH_COPYABLE:
            slab = slab.astype(target)  # uint16, big-endian ...: numpy converts
        # torch converts each plane as it transposes it; a read-only buffer is copied first (torch wants writable)
        copy_by_planes(out[where], torch.from_numpy(np.require(slab, requirements="W")))
    return out.numpy()
