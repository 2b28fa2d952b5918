"""Intensity transforms: CT windows, MR percentile normalisation and non-finite voxel repair.

All map intensities to [0, 1] (with clipping), the range MedSAM and CLIP preprocessing start
from. Apply :class:`FiniteValuesd` first: one NaN voxel would otherwise turn a percentile or a
min-max into NaN for the whole slice.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
import torch
from monai.config import DtypeLike, KeysCollection, NdarrayOrTensor
from monai.data import MetaTensor, get_track_meta
from monai.transforms import MapTransform, ScaleIntensityRanged, ScaleIntensityRangePercentilesd, Transform
from monai.utils import TransformBackends, convert_to_tensor

from common.errors import ConfigError
from transforms.keys import FILENAME, IMAGE

logger = logging.getLogger(__name__)

WINDOW_PRESETS: dict[str, tuple[float, float]] = {
    "abdomen": (40.0, 400.0),
    "lung": (-600.0, 1500.0),
    "bone": (400.0, 1800.0),
    "brain": (40.0, 80.0),
    "soft_tissue": (50.0, 350.0),
}
"""Standard radiology CT windows: name -> (level, width) in Hounsfield units."""

OUTPUT_MIN = 0.0
OUTPUT_MAX = 1.0
DEFAULT_LOWER_PERCENTILE = 0.5
DEFAULT_UPPER_PERCENTILE = 99.5
EMPTY_FILL = 0.0
"""Value for non-finite voxels when an array has no finite value at all."""
CHECK_CHUNK_ELEMENTS = 1 << 24
"""Voxels checked at a time for non-finite values (a 64 MiB float32 slab): no volume-sized boolean mask."""


def window_range(level: float, width: float) -> tuple[float, float]:
    """(a_min, a_max) intensities of a CT window given by its ``level`` (centre) and ``width``."""
    return level - width / 2.0, level + width / 2.0


class CTWindowd(ScaleIntensityRanged):
    """Maps a CT window to [0, 1], clipping values outside it.

    Give either a named ``preset`` from :data:`WINDOW_PRESETS` or both ``a_min`` and ``a_max``
    (Hounsfield units mapped to 0 and 1).

    Args:
        keys: keys of the images to window.
        preset: name of a window in :data:`WINDOW_PRESETS`.
        a_min: intensity mapped to 0 (with ``a_max``, instead of a preset).
        a_max: intensity mapped to 1.
        dtype: output type.
        allow_missing_keys: do not fail when a key is absent.
        in_place: window a float tensor of the output type in its own memory (a volume-sized copy and
            its temporaries saved; the values are those of MONAI's ``ScaleIntensityRange``, operation
            for operation). Only for data nothing else holds, such as a volume just loaded.

    Raises:
        ConfigError: neither or both of ``preset`` and ``a_min``/``a_max`` are given, the preset
            is unknown, or ``a_min >= a_max`` (the message names the argument).
    """

    def __init__(
        self,
        keys: KeysCollection,
        preset: str | None = None,
        a_min: float | None = None,
        a_max: float | None = None,
        dtype: DtypeLike = np.float32,
        allow_missing_keys: bool = False,
        in_place: bool = False,
    ) -> None:
        low, high = _resolve_window(preset, a_min, a_max)
        super().__init__(
            keys,
            a_min=low,
            a_max=high,
            b_min=OUTPUT_MIN,
            b_max=OUTPUT_MAX,
            clip=True,
            dtype=dtype,
            allow_missing_keys=allow_missing_keys,
        )
        self.in_place = in_place

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Windows each keyed image (in its own memory with ``in_place``, when it is a float tensor of the output type)."""
        if not self.in_place:
            return super().__call__(data)
        d = dict(data)
        for key in self.key_iterator(d):
            image = d[key]
            windowable = isinstance(image, torch.Tensor) and image.dtype == _torch_dtype(self.scaler.dtype)
            d[key] = self.window_in_place(image) if windowable else self.scaler(image)
        return d

    def window_in_place(self, image: torch.Tensor) -> torch.Tensor:
        """``ScaleIntensityRange``'s steps (shift, scale, map to [b_min, b_max], clip) done in ``image`` itself."""
        s = self.scaler
        plain = image.as_tensor() if isinstance(image, MetaTensor) else image
        plain.sub_(s.a_min).div_(s.a_max - s.a_min).mul_(s.b_max - s.b_min).add_(s.b_min).clamp_(s.b_min, s.b_max)
        return image


def _torch_dtype(dtype: DtypeLike) -> torch.dtype | None:
    """The torch dtype of a numpy or torch dtype (None stays None)."""
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    return torch.from_numpy(np.empty(0, dtype=dtype)).dtype


def _resolve_window(preset: str | None, a_min: float | None, a_max: float | None) -> tuple[float, float]:
    """(a_min, a_max) from a preset name or explicit bounds, validated."""
    explicit = (a_min, a_max)
    if preset is not None:
        if any(bound is not None for bound in explicit):
            raise ConfigError("CTWindowd: give either 'preset' or 'a_min'/'a_max', not both")
        if preset not in WINDOW_PRESETS:
            raise ConfigError(f"CTWindowd: 'preset' must be one of {sorted(WINDOW_PRESETS)}, got {preset!r}")
        return window_range(*WINDOW_PRESETS[preset])
    if any(bound is None for bound in explicit):
        raise ConfigError("CTWindowd: give 'preset' or both 'a_min' and 'a_max'")
    if not a_min < a_max:
        raise ConfigError(f"CTWindowd: 'a_min' ({a_min}) must be below 'a_max' ({a_max})")
    return float(a_min), float(a_max)


class MRNormalized(ScaleIntensityRangePercentilesd):
    """Maps the ``lower``..``upper`` intensity percentiles of each channel to [0, 1], clipping.

    MR intensities have no absolute scale, so the range comes from the volume itself. The
    percentiles are taken over the whole array given (normally the volume, so all its slices
    share one scale).

    Args:
        keys: keys of the images to normalise.
        lower: percentile mapped to 0, in [0, 100).
        upper: percentile mapped to 1, in (lower, 100].
        dtype: output type.
        allow_missing_keys: do not fail when a key is absent.

    Raises:
        ConfigError: the percentiles are out of range or not increasing (names the argument).
    """

    def __init__(
        self,
        keys: KeysCollection,
        lower: float = DEFAULT_LOWER_PERCENTILE,
        upper: float = DEFAULT_UPPER_PERCENTILE,
        dtype: DtypeLike = np.float32,
        allow_missing_keys: bool = False,
    ) -> None:
        if not 0.0 <= lower < upper <= 100.0:
            raise ConfigError(f"MRNormalized: need 0 <= 'lower' < 'upper' <= 100, got lower={lower}, upper={upper}")
        super().__init__(
            keys,
            lower=lower,
            upper=upper,
            b_min=OUTPUT_MIN,
            b_max=OUTPUT_MAX,
            clip=True,
            channel_wise=True,
            dtype=dtype,
            allow_missing_keys=allow_missing_keys,
        )


class FiniteValues(Transform):
    """Replaces NaN by the finite minimum, +Inf by the finite maximum and -Inf by the finite minimum.

    The extremes are those of the whole array given. An array without any finite value
    becomes all zeros.
    """

    backend = [TransformBackends.TORCH]

    def __call__(self, img: NdarrayOrTensor) -> torch.Tensor:
        """Returns ``img`` as a tensor (MetaTensor when meta tracking is on) with finite values only."""
        img = convert_to_tensor(img, track_meta=get_track_meta())
        if not img.is_floating_point() or all_finite(img):
            return img  # integer voxels are always finite
        finite = torch.isfinite(img)
        values = img[finite]
        low, high = (values.min().item(), values.max().item()) if values.numel() else (EMPTY_FILL, EMPTY_FILL)
        # repaired, not refused: one bad voxel should not stop a scan, but the user must hear of it
        source = img.meta.get(FILENAME) if isinstance(img, MetaTensor) else None
        logger.warning(
            "image %s: %d of %d voxels are NaN or infinite; replaced by the finite minimum / maximum (%g / %g)",
            source or "(in memory)", img.numel() - values.numel(), img.numel(), low, high,
        )  # fmt: skip
        return torch.nan_to_num(img, nan=low, posinf=high, neginf=low)


def all_finite(image: torch.Tensor) -> bool:
    """Whether every value is finite, checked a slab at a time (no volume-sized boolean mask)."""
    plain = convert_to_tensor(image, track_meta=False).reshape(-1) if image.is_contiguous() else None
    if plain is None:
        return bool(torch.isfinite(image).all())
    return all(bool(torch.isfinite(part).all()) for part in plain.split(CHECK_CHUNK_ELEMENTS))


class FiniteValuesd(MapTransform):
    """Dictionary form of :class:`FiniteValues`.

    Args:
        keys: keys of the images to repair.
        allow_missing_keys: do not fail when a key is absent.
    """

    backend = FiniteValues.backend

    def __init__(self, keys: KeysCollection, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.repair = FiniteValues()

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Repairs each keyed array; other entries are passed through."""
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.repair(d[key])
        return d


def intensity_transform(intensity: str | Mapping, in_place: bool = False) -> MapTransform:
    """The intensity transform of the image key: ``mr`` (percentile normalisation), a CT window preset name,
    or ``{"a_min", "a_max"}`` bounds in HU.

    Args:
        intensity: the preset, ``mr`` or the bounds.
        in_place: a CT window works in the image's own memory (:class:`CTWindowd`).
    """
    if intensity == "mr":
        return MRNormalized(keys=[IMAGE])
    if isinstance(intensity, Mapping):
        return CTWindowd(keys=[IMAGE], a_min=intensity.get("a_min"), a_max=intensity.get("a_max"), in_place=in_place)
    return CTWindowd(keys=[IMAGE], preset=intensity, in_place=in_place)
