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
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.data import MetaTensor
from monai.deploy.core.domain.dicom_series import DICOMSeries
from monai.deploy.core.domain.dicom_series_selection import StudySelectedSeries
from monai.utils import MetaKeys, SpaceKeys

from bundle.deploy.dicom_source import DicomSource
from common.errors import DataError
from transforms.dicom_reader import DicomSeriesReader, report
from transforms.dicom_series import DEFAULT_TOLERANCE, plan_series
from transforms.keys import FILENAME


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
