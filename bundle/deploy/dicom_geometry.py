"""The selected DICOM series as the bundle's (1, X, Y, Z) volume, by the rules of :mod:`transforms.dicom_series`.

The SDK's loader and selector give the chosen series' instances; their headers decide the volume
(which images, in what order, on what grid: localizers left out, uneven spacing and gantry tilt
detected, enhanced multi-frame instances placed frame by frame, mosaics refused) and ITK reads
exactly those slices, as the inference workflow's reader does (:class:`transforms.dicom_reader.DicomSeriesReader`).
The :class:`DicomSource` travels with the volume to the DICOM SEG writer, which references the
instances (or frames) the volume was made of.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.data import MetaTensor
from monai.deploy.core.domain.dicom_series import DICOMSeries
from monai.deploy.core.domain.dicom_series_selection import StudySelectedSeries
from monai.utils import MetaKeys, SpaceKeys

from common.errors import DataError
from transforms.dicom_reader import DicomSeriesReader, report
from transforms.dicom_series import DEFAULT_TOLERANCE, SliceStack, plan_series
from transforms.keys import FILENAME

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


def selected_series(selection: Sequence[StudySelectedSeries]) -> DICOMSeries:
    """The series the selector chose: the first one selected in the first study.

    Raises:
        DataError: nothing was selected.
    """
    if not selection or not selection[0].selected_series:
        raise DataError("no DICOM series was selected from the input")
    return selection[0].selected_series[0].series


def series_source(
    series: DICOMSeries, tolerance: float = DEFAULT_TOLERANCE, repeats: Sequence[Any] = ()
) -> DicomSource:
    """The series' stack, decided from its instances' headers; what was decided is logged as warnings.

    Args:
        series: the selected series.
        tolerance: ``slice_spacing_tolerance``.
        repeats: headers of instances the SDK's loader left out at repeated positions (the rules decide again).

    Raises:
        DataError: the series is refused (a mosaic, no stack of parallel slices, two images at one position).
    """
    datasets = tuple(sop.get_native_sop_instance() for sop in series.get_sop_instances()) + tuple(repeats)
    uid = str(series.SeriesInstanceUID)
    names = [str(getattr(ds, "filename", "") or ds.SOPInstanceUID) for ds in datasets]
    where = f"DICOM series {uid}"
    stack = plan_series(datasets, names, where, tolerance)
    report(stack, where)
    return DicomSource(datasets, stack, uid)


def series_volume(source: DicomSource, folder: Path, reader: DicomSeriesReader | None = None) -> MetaTensor:
    """The stack's voxels (HU, read by ITK in slice order) as a (1, X, Y, Z) float32 MetaTensor, RAS affine.

    Args:
        source: the series and its stack.
        folder: the input folder, recorded as the volume's file name.
        reader: the DICOM reader (its tolerance is not used: the stack is decided already).

    Raises:
        DataError: an instance was not loaded from a file, or ITK decodes another shape.
    """
    reader = reader or DicomSeriesReader()
    files = [getattr(ds, "filename", None) for ds in source.datasets]
    if any(not isinstance(name, (str, Path)) for name in files):
        raise DataError(f"DICOM series {source.series_uid}: an instance was not read from a file")
    array, meta = reader.get_data(reader.read_stack(source.stack, [str(name) for name in files]))
    affine = torch.as_tensor(meta.pop(MetaKeys.AFFINE))
    meta.update({FILENAME: str(folder), MetaKeys.SPACE: SpaceKeys.RAS})
    voxels = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[None]
    return MetaTensor(voxels, affine=affine, meta=meta)
