"""3D clean-up of a volume's per-slice target mask, with MONAI's own post-processing transforms.

A volume is segmented slice by slice, each slice deciding on its own whether the target is there.
The mask is then made consistent in 3D:

1. **one-slice gaps** along the slice axis are filled: a voxel on slice k joins the target when it
   is on both neighbours k-1 and k+1 (a morphological closing, MONAI's ``dilate`` then ``erode``,
   would bridge two-slice gaps as well, and MONAI's filters take one size for every axis);
2. **small objects** are removed: connected components below ``min_volume_ml``, measured in the
   volume's own voxel size (MONAI's ``RemoveSmallObjects`` by measure);
3. **the largest component** alone is kept when the target is a single structure (MONAI's
   ``KeepLargestConnectedComponent``): an organ is one piece, a lesion may be several.

The work is done on the mask's bounding box (plus a margin), so a large volume with a small target
costs little; voxels outside that box are empty before and after.
"""

from __future__ import annotations

import warnings

import torch
from monai.data import MetaTensor
from monai.transforms import KeepLargestConnectedComponent, RemoveSmallObjects, Transform

from networks.errors import ConfigError
from transforms.slicing import CHANNEL_DIMS, check_axis

MM3_PER_ML = 1000.0
MARGIN = 1
"""Voxels around the bounding box that gap filling may reach (a slice's neighbours)."""


def fill_slice_gaps(mask: torch.Tensor, slice_axis: int) -> torch.Tensor:
    """(1, X, Y, Z) ``mask`` with one-slice gaps along ``slice_axis`` filled: a voxel joins where both
    neighbouring slices hold it (the first and last slices, with one neighbour, never change)."""
    spatial = mask[0].movedim(slice_axis, -1) > 0
    filled = spatial.clone()
    filled[..., 1:-1] |= spatial[..., :-2] & spatial[..., 2:]
    return filled.movedim(-1, slice_axis)[None].to(mask.dtype)


class TargetMaskCleanup(Transform):
    """Fills one-slice gaps, removes small objects and keeps a single structure's largest component.

    Args:
        slice_axis: the axis the volume was sliced along.
        fill_gaps: fill one-slice gaps along ``slice_axis``.
        min_volume_ml: connected components smaller than this are removed (0: keep all).
        keep_largest: keep only the largest component when the caller says the target is a single
            structure (see ``__call__``); False: never.
        connectivity: neighbourhood of a component (1: faces, 3: faces, edges and corners).
    """

    def __init__(
        self,
        slice_axis: int = 2,
        fill_gaps: bool = True,
        min_volume_ml: float = 0.05,
        keep_largest: bool = True,
        connectivity: int = 3,
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

    def __call__(self, mask: MetaTensor, single_structure: bool = True) -> MetaTensor:
        """The cleaned (1, X, Y, Z) mask, same dtype, grid and metadata.

        Args:
            mask: the binary target mask on the grid it was sliced from.
            single_structure: whether the target is one structure (then only its largest component stays).
        """
        box = self._bounding_box(mask)
        if box is None:
            return mask
        crop = MetaTensor(mask.as_tensor()[box].clone(), affine=mask.affine)
        if self.fill_gaps:
            crop = MetaTensor(fill_slice_gaps(crop.as_tensor(), self.slice_axis), affine=mask.affine)
        if self.min_volume_ml > 0:
            remove = RemoveSmallObjects(
                min_size=self.min_volume_ml * MM3_PER_ML, connectivity=self.connectivity, by_measure=True
            )
            with warnings.catch_warnings():
                # MONAI 1.6 still passes scikit-image's deprecated min_size, and converts MetaTensors with numpy's
                # old __array__ call: notices for MONAI, not for our users
                warnings.filterwarnings("ignore", message=".*min_size.*deprecated.*")
                warnings.filterwarnings("ignore", message=".*__array__ implementation.*")
                crop = remove(crop)
        if self.keep_largest and single_structure:
            crop = KeepLargestConnectedComponent(applied_labels=[1], connectivity=self.connectivity)(crop)
        out = mask.clone()
        out.as_tensor()[box] = torch.as_tensor(crop).to(mask.dtype)
        return out

    @staticmethod
    def _bounding_box(mask: torch.Tensor) -> tuple[slice, ...] | None:
        """Index of the mask's bounding box widened by :data:`MARGIN`, or None for an empty mask."""
        voxels = mask[0].nonzero()
        if voxels.numel() == 0:
            return None
        low = (voxels.min(dim=0).values - MARGIN).clamp(min=0).tolist()
        high = (voxels.max(dim=0).values + MARGIN + 1).tolist()
        return (slice(None),) * CHANNEL_DIMS + tuple(slice(lo, hi) for lo, hi in zip(low, high))
