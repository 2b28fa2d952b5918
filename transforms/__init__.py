"""MONAI dictionary transforms: volume loading, intensity, 3D->2D slicing, model preprocessing, boxes,
slices->volume."""

from transforms.boxes import (
    mask_to_box,
    masks_to_boxes,
    normalised_to_pixel,
    pixel_to_normalised,
)
from transforms.cleanup import TargetMaskCleanup
from transforms.intensity import WINDOW_PRESETS, CTWindowd, FiniteValues, FiniteValuesd, MRNormalized
from transforms.loading import LoadVolumed, load_volume, nifti_header_shape
from transforms.preprocess import CLIP_MEAN, CLIP_SIZE, CLIP_STD, SAM_SIZE, clip_preprocess, medsam_preprocess
from transforms.reassemble import (
    box_3d,
    box_to_voxel_corners,
    slices_to_volume,
    volume_ml,
    voxel_to_world,
)
from transforms.slicing import in_plane_axes, iter_slices, take_slice

__all__ = [
    "CLIP_MEAN",
    "CLIP_SIZE",
    "CLIP_STD",
    "SAM_SIZE",
    "WINDOW_PRESETS",
    "CTWindowd",
    "FiniteValues",
    "FiniteValuesd",
    "LoadVolumed",
    "MRNormalized",
    "TargetMaskCleanup",
    "box_3d",
    "box_to_voxel_corners",
    "clip_preprocess",
    "in_plane_axes",
    "iter_slices",
    "load_volume",
    "nifti_header_shape",
    "mask_to_box",
    "masks_to_boxes",
    "medsam_preprocess",
    "normalised_to_pixel",
    "pixel_to_normalised",
    "slices_to_volume",
    "take_slice",
    "volume_ml",
    "voxel_to_world",
]
