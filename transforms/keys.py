"""Dictionary keys shared by the transforms, datasets and writers.

One place for the names, so that a slice dictionary made by :mod:`transforms.slicing` is read
under the same keys by the datasets, the inferer and the writers.
"""

from __future__ import annotations

IMAGE = "image"
"""The image: a (C, X, Y, Z) volume or a (C, H, W) slice."""

MASK = "mask"
"""A binary mask of the same spatial shape as the image."""

BOX = "box"
"""A normalised xyxy box (4,) of the mask, see :mod:`transforms.boxes`."""

BOX_EMPTY = "box_empty"
"""True when the mask is empty and the box is all zeros."""

SLICE_INDEX = "slice_index"
"""Index of a slice along :data:`SLICE_AXIS`."""

SLICE_AXIS = "slice_axis"
"""Spatial axis (0, 1 or 2 of a (C, X, Y, Z) volume) that a slice was taken along."""

IN_PLANE_AXES = "in_plane_axes"
"""The two volume axes that became the slice's (H, W), in that order."""

VOLUME_SHAPE = "volume_shape"
"""Spatial shape (X, Y, Z) of the volume a slice came from."""

AFFINE = "affine"
"""The volume's voxel-to-world (RAS mm) affine, shared (not copied) by its slices."""

FILENAME = "filename_or_obj"
"""Source file of the volume (MONAI's metadata key)."""
