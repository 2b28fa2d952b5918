"""Training augmentation of 2D slice samples that keeps image, mask and box consistent."""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
from monai.transforms import Compose, MapTransform, RandAdjustContrastd, RandAffined, RandGaussianNoised, Randomizable

from transforms import keys as K
from transforms.boxes import mask_to_box

DEFAULT_AFFINE_PROB = 0.5
DEFAULT_ROTATE_RANGE = math.radians(15.0)
DEFAULT_SCALE_RANGE = 0.1
DEFAULT_TRANSLATE_RANGE = 16.0
DEFAULT_CONTRAST_PROB = 0.5
DEFAULT_GAMMA = (0.8, 1.25)
DEFAULT_NOISE_PROB = 0.5
DEFAULT_NOISE_STD = 0.02
"""Noise scale for images already windowed / normalised to [0, 1]."""


class RandSliceAugmentd(Randomizable, MapTransform):
    """Random small affine + intensity jitter on a slice sample, then the box recomputed.

    The sample is ``{image: (1, H, W), mask: (1, H, W), ...}``. The same random affine
    (rotation, scaling, translation; zero padding) moves image and mask, bilinear for the
    image and nearest for the mask so it stays binary; contrast (gamma) and Gaussian noise
    touch the image only. The box (normalised xyxy) and its empty flag are then recomputed
    from the augmented mask, since a rotated box is not the box of the rotated mask.

    There are deliberately **no flips**: left-right flips would make questions about the
    patient's left or right side (left kidney, right lung) wrong for the flipped image.

    Deterministic for a given :meth:`set_random_state` seed.

    Args:
        image_key: key of the (1, H, W) image.
        mask_key: key of the (1, H, W) mask.
        box_key: key the recomputed (4,) box is written to.
        empty_key: key the recomputed "mask is empty" flag is written to.
        affine_prob: probability of applying the affine.
        rotate_range: largest rotation, radians (uniform in +/- this).
        scale_range: largest relative zoom per axis (uniform in 1 +/- this).
        translate_range: largest shift per axis, in pixels.
        contrast_prob: probability of a gamma contrast change.
        gamma: range of the gamma exponent.
        noise_prob: probability of adding Gaussian noise.
        noise_std: largest noise standard deviation (MONAI samples it in [0, noise_std]).
    """

    def __init__(
        self,
        image_key: str = K.IMAGE,
        mask_key: str = K.MASK,
        box_key: str = K.BOX,
        empty_key: str = K.BOX_EMPTY,
        affine_prob: float = DEFAULT_AFFINE_PROB,
        rotate_range: float = DEFAULT_ROTATE_RANGE,
        scale_range: float = DEFAULT_SCALE_RANGE,
        translate_range: float = DEFAULT_TRANSLATE_RANGE,
        contrast_prob: float = DEFAULT_CONTRAST_PROB,
        gamma: tuple[float, float] = DEFAULT_GAMMA,
        noise_prob: float = DEFAULT_NOISE_PROB,
        noise_std: float = DEFAULT_NOISE_STD,
    ) -> None:
        MapTransform.__init__(self, (image_key, mask_key))
        self.image_key, self.mask_key, self.box_key, self.empty_key = image_key, mask_key, box_key, empty_key
        self.pipeline = Compose(
            [
                RandAffined(
                    keys=(image_key, mask_key),
                    prob=affine_prob,
                    rotate_range=rotate_range,
                    scale_range=(scale_range, scale_range),
                    translate_range=(translate_range, translate_range),
                    mode=("bilinear", "nearest"),
                    padding_mode="zeros",
                ),
                RandAdjustContrastd(keys=image_key, prob=contrast_prob, gamma=gamma),
                RandGaussianNoised(keys=image_key, prob=noise_prob, std=noise_std),
            ]
        )

    def set_random_state(
        self, seed: int | None = None, state: np.random.RandomState | None = None
    ) -> RandSliceAugmentd:
        """Seeds this transform and, from it, each random step."""
        super().set_random_state(seed=seed, state=state)
        self.pipeline.set_random_state(state=self.R)
        return self

    def randomize(self, data: Any = None) -> None:
        """No own random draw: each step of the pipeline draws its own parameters."""

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Returns the augmented sample with ``box_key`` and ``empty_key`` recomputed from the mask."""
        d = dict(data)
        mask_dtype = d[self.mask_key].dtype
        d = self.pipeline(d)
        d[self.mask_key] = d[self.mask_key].to(mask_dtype)  # nearest resampling keeps the values exact
        d[self.box_key], d[self.empty_key] = mask_to_box(d[self.mask_key][0])
        return d
