"""Voxel memory order: NIfTI files hold volumes in Fortran order, torch and MONAI work in C order.

Going from one to the other is a transposing copy, and for a large volume it is the costliest
step of loading or saving after (de)compression: numpy copies a 512x512x200 int16 volume in
~0.75 s on one core, striding against the cache. Copied one plane (one index of the second
axis) at a time, each plane's source and destination stay in cache, and torch's copy kernel
does each plane faster still: ~0.16 s for the same volume (same values, same shape, only the
memory layout changes).
"""

from __future__ import annotations

import numpy as np
import torch

TORCH_COPYABLE = frozenset(
    np.dtype(t) for t in (np.bool_, np.uint8, np.int8, np.int16, np.int32, np.int64, np.float16, np.float32, np.float64)
)
"""numpy dtypes torch holds natively; other dtypes (uint16, big-endian ...) are copied by numpy."""
PLANE_AXIS = 1
"""Volumes are copied one index of this axis at a time: an (X, Z) plane, ~200 KB for 512x200 int16."""


def copy_by_planes(destination: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """Copies ``source`` into ``destination`` (same shape, any strides) plane by plane; returns ``destination``."""
    if source.ndim <= PLANE_AXIS + 1:
        return destination.copy_(source)
    for index in range(source.shape[PLANE_AXIS]):
        destination.select(PLANE_AXIS, index).copy_(source.select(PLANE_AXIS, index))
    return destination


def c_order(array: np.ndarray) -> np.ndarray:
    """``array`` as a C-contiguous array: itself if it already is one, else a plane-by-plane copy."""
    if array.flags.c_contiguous:
        return array
    if not array.flags.f_contiguous or array.dtype not in TORCH_COPYABLE or not array.flags.writeable:
        return np.ascontiguousarray(array)
    source = torch.from_numpy(array)
    return copy_by_planes(torch.empty(array.shape, dtype=source.dtype), source).numpy()


def fortran_order(tensor: torch.Tensor) -> np.ndarray:
    """A tensor as a Fortran-contiguous numpy array on the CPU (same shape), copied plane by plane."""
    tensor = tensor.detach().cpu()
    reversed_dims = tuple(reversed(range(tensor.ndim)))
    storage = torch.empty(tuple(tensor.shape[d] for d in reversed_dims), dtype=tensor.dtype)
    copy_by_planes(storage.permute(reversed_dims), tensor)
    return storage.numpy().T
