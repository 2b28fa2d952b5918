"""Model inputs from slices: MedSAM's (B, 3, 1024, 1024) and CLIP's (B, 3, 336, 336) batches.

Both take a list of (1 or 3, H_i, W_i) slices of any sizes, or a (B, C, H, W) tensor, and are
plain torch ops (batched on the slices' device, differentiable, no torchvision).

Resizing is bicubic with antialiasing (``torch.nn.functional.interpolate``), matching MedSAM's
own preprocessing (skimage ``resize(order=3, anti_aliasing=True)``) and CLIP's bicubic resize.
For MedSAM the min-max scaling comes after the resize, as in MedSAM, so bicubic overshoot never
leaves [0, 1] and every slice spans exactly [0, 1] (constant slices become zeros); for CLIP the
resized image is clamped to [0, 1] before normalisation.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from monai.data import MetaTensor

from common.errors import ConfigError, DataError
from networks.config import SAM_RESIZE_SCHEMES

SAM_SIZE = 1024
"""Side of MedSAM's square input."""
CLIP_SIZE = 336
"""Side of CLIP ViT-L/14-336's square input."""
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
"""OpenAI CLIP's per-channel normalisation (RGB)."""

RGB_CHANNELS = 3
ACCEPTED_CHANNELS = (1, RGB_CHANNELS)
RESIZE_MODE = "bicubic"
MIN_INTENSITY_RANGE = 1e-8
"""Guard for min-max scaling of constant slices (they become all zeros), as in MedSAM."""

Images = torch.Tensor | Sequence[torch.Tensor]


def as_image_list(images: Images) -> list[torch.Tensor]:
    """Splits ``images`` into a list of float (C, H, W) tensors with 1 or 3 channels.

    Raises:
        DataError: a slice is not (1 or 3, H, W), or the batch is empty.
    """
    if isinstance(images, torch.Tensor):
        if images.ndim != 4:
            raise DataError(f"a batch tensor of slices must be (B, C, H, W), got shape {tuple(images.shape)}")
        images = list(images)
    if len(images) == 0:
        raise DataError("no slices to preprocess")
    for image in images:
        if image.ndim != 3 or image.shape[0] not in ACCEPTED_CHANNELS:
            raise DataError(f"a slice must be (1 or 3, H, W), got shape {tuple(image.shape)}")
    # plain tensors: model inputs need no metadata, and MetaTensor ops would copy it per slice
    return [(image.as_tensor() if isinstance(image, MetaTensor) else image).float() for image in images]


def resize_image(image: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Bicubic, antialiased resize of one (C, H, W) image to ``shape`` (H', W')."""
    return F.interpolate(image[None], size=shape, mode=RESIZE_MODE, align_corners=False, antialias=True)[0]


def min_max_scale(image: torch.Tensor) -> torch.Tensor:
    """Scales one image to [0, 1] by its own minimum and maximum (constant images become 0)."""
    low, high = image.min(), image.max()
    return (image - low) / torch.clamp(high - low, min=MIN_INTENSITY_RANGE)


def longest_side_shape(height: int, width: int, size: int) -> tuple[int, int]:
    """(H', W') of an (H, W) slice scaled so that its longest side is ``size``.

    Uses the rounding of ``networks.medsam.MedSAM.masks_to_original`` (``round(side * s)``,
    ``s = size / max(H, W)``), so content placed here is exactly what that method crops.
    """
    scale = size / max(height, width)
    return round(height * scale), round(width * scale)


def check_resize(resize_scheme: str) -> str:
    """Returns ``resize_scheme`` if it is one of ``networks.config.SAM_RESIZE_SCHEMES``.

    Raises:
        ConfigError: naming the ``resize`` setting.
    """
    if resize_scheme not in SAM_RESIZE_SCHEMES:
        raise ConfigError(f"setting 'resize' must be one of {SAM_RESIZE_SCHEMES}, got {resize_scheme!r}")
    return resize_scheme


def medsam_preprocess(images: Images, size: int = SAM_SIZE, resize: str = "stretch") -> torch.Tensor:
    """MedSAM's input: per slice resize, min-max to [0, 1], 3 channels, no mean/std normalisation.

    Args:
        images: (1 or 3, H_i, W_i) slices, or a (B, C, H, W) tensor.
        size: side of the square output.
        resize: ``"stretch"`` (MedSAM: resize to ``size`` x ``size``) or ``"longest_side"`` (SAM:
            scale to :func:`longest_side_shape`, place top-left, zeros bottom/right). Must equal
            the model's ``sam_config#resize``, which maps boxes and masks with the same rule.

    Returns:
        (B, 3, size, size) float32 in [0, 1].

    Raises:
        ConfigError: ``resize`` is unknown.
        DataError: a slice has the wrong shape.
    """
    check_resize(resize)
    slices = as_image_list(images)
    batch = slices[0].new_zeros(len(slices), RGB_CHANNELS, size, size)
    for row, image in enumerate(slices):
        height, width = image.shape[-2:]
        shape = (size, size) if resize == "stretch" else longest_side_shape(height, width, size)
        # Scaling before the resize makes constant slices exactly zero (interpolation rounding
        # would otherwise be stretched to [0, 1]); scaling again after it is MedSAM's order and
        # folds bicubic overshoot into [0, 1]. Min-max ignores the first scaling otherwise.
        batch[row, :, : shape[0], : shape[1]] = min_max_scale(resize_image(min_max_scale(image), shape))
    return batch


def clip_preprocess(images: Images, size: int = CLIP_SIZE) -> torch.Tensor:
    """CLIP's input: resize to ``size`` x ``size``, 3 channels, OpenAI CLIP mean/std.

    Args:
        images: (1 or 3, H_i, W_i) slices in [0, 1] (e.g. windowed), or a (B, C, H, W) tensor.
        size: side of the square output.

    Returns:
        (B, 3, size, size) float32, ``(x - CLIP_MEAN) / CLIP_STD`` per channel.

    Raises:
        DataError: a slice has the wrong shape.
    """
    slices = as_image_list(images)
    resized = torch.stack([resize_image(image, (size, size)).expand(RGB_CHANNELS, -1, -1) for image in slices])
    mean = resized.new_tensor(CLIP_MEAN).view(1, RGB_CHANNELS, 1, 1)
    std = resized.new_tensor(CLIP_STD).view(1, RGB_CHANNELS, 1, 1)
    # bicubic overshoot past the [0, 1] input range would shift CLIP's statistics
    return (resized.clamp(0.0, 1.0) - mean) / std
