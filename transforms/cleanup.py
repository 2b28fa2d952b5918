"""3D clean-up of a volume's per-slice target mask, with MONAI's own post-processing transforms.

A volume is segmented slice by slice, each slice deciding on its own whether the target is there.
The mask is then made consistent in 3D:

1. **one-slice gaps** along the slice axis are filled: a voxel on slice k joins the target when it
   is on both neighbours k-1 and k+1 (a morphological closing, MONAI's ``dilate`` then ``erode``,
   would bridge two-slice gaps as well, and MONAI's filters take one size for every axis);
2. **small objects** are removed: connected components of at most ``min_volume_ml`` (rounded up to
   whole voxels of the volume's own size) (the rule of MONAI's ``RemoveSmallObjects`` by measure);
3. **the largest component** alone is kept when the target is a single structure (the rule of
   MONAI's ``KeepLargestConnectedComponent``): an organ is one piece, a lesion may be several.

The work is done on the mask's bounding box (plus a margin), so a large volume with a small target
costs little; voxels outside that box are empty before and after. Components are found slab by
slab (:mod:`transforms.components`: MONAI's transforms label the whole mask at once, about 19
bytes a voxel), so the clean-up needs a few tens of MiB on top of the mask; with ``in_place`` it
writes into the mask it is given (the volume inferer's own), without a copy of it.
"""

from __future__ import annotations

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import Transform

from common.errors import ConfigError
from transforms.components import keep_components, label_components, slab_planes
from transforms.slicing import CHANNEL_DIMS, check_axis

MM3_PER_ML = 1000.0
MARGIN = 1
"""Voxels around the bounding box that gap filling may reach (a slice's neighbours)."""


def fill_slice_gaps_(mask: torch.Tensor, slice_axis: int) -> torch.Tensor:
    """Fills one-slice gaps of the (1, X, Y, Z) binary ``mask`` along ``slice_axis`` in place and returns it: a
    voxel joins where both neighbouring slices held it (the first and last slices, with one neighbour, never
    change). A slab of slices is copied at a time, so the mask is never held twice."""
    planes = mask[0].movedim(slice_axis, 0)
    count = planes.shape[0]
    if count < 3:
        return mask
    step = slab_planes((count, *planes.shape[1:]))
    before = planes[0:1].to(torch.bool, copy=True)  # the slice before the slab, as it was
    for start in range(1, count - 1, step):
        stop = min(start + step, count - 1)
        own = planes[start:stop].to(torch.bool, copy=True)
        after = torch.cat([own[1:], planes[stop : stop + 1].bool()])
        planes[start:stop] = (own | (torch.cat([before, own[:-1]]) & after)).to(mask.dtype)
        before = own[-1:]
    return mask


def voxel_mm3(mask: MetaTensor) -> float:
    """The volume of one voxel in mm^3, from the mask's affine (1 without one, as MONAI's measure)."""
    volume = float(np.prod(np.asarray(mask.pixdim, dtype=np.float64))) if isinstance(mask, MetaTensor) else 1.0
    return volume or 1.0


class TargetMaskCleanup(Transform):
    """Fills one-slice gaps, removes small objects and keeps a single structure's largest component.

    Args:
        slice_axis: the axis the volume was sliced along.
        fill_gaps: fill one-slice gaps along ``slice_axis``.
        min_volume_ml: connected components of at most this volume (mL) are removed (0: keep all).
        keep_largest: keep only the largest component when the caller says the target is a single
            structure (see ``__call__``); False: never.
        connectivity: neighbourhood of a component (1: faces, 3: faces, edges and corners).
        in_place: clean the given mask itself (its owner no longer needs the per-slice masks) instead of a copy.
    """

    def __init__(
        self,
        slice_axis: int = 2,
        fill_gaps: bool = True,
        min_volume_ml: float = 0.05,
        keep_largest: bool = True,
        connectivity: int = 3,
        in_place: bool = False,
    ) -> None:
        if float(min_volume_ml) < 0:
            raise ConfigError(f"config 'min_target_ml' must be non-negative, got {min_volume_ml!r}")
        if connectivity not in (1, 2, 3):
            raise ConfigError(f"cleanup connectivity must be 1, 2 or 3, got {connectivity!r}")
        self.slice_axis = check_axis(slice_axis)
        self.fill_gaps = bool(fill_gaps)
        self.min_volume_ml = float(min_volume_ml)
        self.keep_largest = bool(keep_largest)
        self.connectivity = connectivity
        self.in_place = bool(in_place)

    def __call__(self, mask: MetaTensor, single_structure: bool = True) -> MetaTensor:
        """The cleaned (1, X, Y, Z) mask, same dtype, grid and metadata.

        Args:
            mask: the binary target mask on the grid it was sliced from.
            single_structure: whether the target is one structure (then only its largest component stays).
        """
        box = self._bounding_box(mask)
        if box is None:
            return mask
        out = mask if self.in_place else mask.clone()
        crop = out.as_tensor()[box]
        if self.fill_gaps:
            fill_slice_gaps_(crop, self.slice_axis)
        largest = self.keep_largest and single_structure
        if self.min_volume_ml > 0 or largest:
            on_cpu = crop.device.type == "cpu"
            voxels = crop[0] if on_cpu else crop[0].cpu()
            components = label_components(voxels.numpy(), self.connectivity)
            keep_components(voxels.numpy(), components, self.small_voxels(voxel_mm3(mask)), only_largest=largest)
            if not on_cpu:
                crop[0].copy_(voxels)
        return out

    def small_voxels(self, voxel_volume: float) -> int:
        """Components of at most this many voxels are removed: ``min_volume_ml`` rounded up to whole voxels.

        A component of exactly that size goes, as with MONAI 1.6's ``RemoveSmallObjects`` under scikit-image
        0.26 (whose deprecated ``min_size``, passed by position, became ``max_size``: "at most"), so that the
        outputs are those of the bundle's releases so far.
        """
        if self.min_volume_ml <= 0:
            return 0
        return int(np.ceil(self.min_volume_ml * MM3_PER_ML / voxel_volume))

    @staticmethod
    def _bounding_box(mask: torch.Tensor) -> tuple[slice, ...] | None:
        """Index of the mask's bounding box widened by :data:`MARGIN`, or None for an empty mask."""
        spatial = mask.as_tensor()[0] if isinstance(mask, MetaTensor) else mask[0]
        bounds = []
        for axis in range(spatial.ndim):
            # a per-axis profile: nonzero() of a mostly-target mask would list every voxel (24 bytes each)
            profile = spatial.amax(dim=tuple(d for d in range(spatial.ndim) if d != axis)).nonzero().flatten()
            if profile.numel() == 0:
                return None
            low, high = int(profile[0]) - MARGIN, int(profile[-1]) + MARGIN + 1
            bounds.append(slice(max(low, 0), min(high, spatial.shape[axis])))
        return (slice(None),) * CHANNEL_DIMS + tuple(bounds)
