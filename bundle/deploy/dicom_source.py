"""The DICOM instances a volume was made of, for a DICOM SEG that references them (no MONAI Deploy SDK needed).

A :class:`DicomSource` pairs a series' instances with the stack the volume was made of
(:func:`transforms.dicom_series.plan_series`: which images, in what order). The deploy app makes one
from the SDK's selected series (:func:`bundle.deploy.dicom_geometry.series_source`); any front end
reading a series folder makes one with :func:`folder_source`, by the same rules as the inference
workflow's reader, so the volume, the mask and the SEG's frames agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from common.errors import DataError
from transforms.dicom_reader import read_series_headers
from transforms.dicom_series import DEFAULT_TOLERANCE, SliceStack, plan_series

DHW_TO_XYZ = (2, 1, 0)
"""(slice, row, column) frames <-> (column, row, slice) voxel axes; reversing axes is its own inverse."""


@dataclass(frozen=True)
class DicomSource:
    """The instances of the selected series and the stack the volume was made of.

    Attributes:
        datasets: the series' instances, as the SDK loaded them.
        stack: the slices of the volume, in order (:func:`transforms.dicom_series.plan_stack`).
        series_uid: the series' SeriesInstanceUID.
    """

    datasets: tuple[Any, ...]
    stack: SliceStack
    series_uid: str

    def source_images(self) -> list[Any]:
        """The instances a SEG of the volume references: one per slice, or the one multi-frame instance."""
        if self.stack.frames() is not None:
            return [self.datasets[self.stack.images[0].source]]
        return [self.datasets[image.source] for image in self.stack.images]

    def frames(self, mask: torch.Tensor) -> np.ndarray:
        """A (1, X, Y, Z) mask as boolean (frame, row, column) frames in the order of :meth:`source_images`' frames.

        Raises:
            DataError: the mask does not have the stack's shape.
        """
        if tuple(mask.shape[1:]) != self.stack.shape:
            raise DataError(f"mask of shape {tuple(mask.shape[1:])} does not fit DICOM series {self.series_uid}")
        frames = (torch.as_tensor(mask)[0] > 0).permute(*DHW_TO_XYZ).cpu().numpy()  # (slice, row, column)
        order = self.stack.frames()
        if order is None:
            return frames
        (instance,) = self.source_images()
        stored = np.zeros((int(instance.NumberOfFrames), *frames.shape[1:]), dtype=bool)
        stored[order] = frames  # frames left out of the volume (none for one stack) stay empty
        return stored


def folder_source(folder: str | Path, tolerance: float = DEFAULT_TOLERANCE) -> DicomSource:
    """The source of the series a folder holds (its largest, as the inference reader chooses), headers only.

    Raises:
        DataError: the folder holds no DICOM image, or its series is refused.
    """
    folder = Path(folder)
    datasets, files = read_series_headers(folder, warn=False)
    stack = plan_series(datasets, files, f"DICOM series in {folder}", tolerance)
    return DicomSource(tuple(datasets), stack, str(datasets[0].get("SeriesInstanceUID", "")))
