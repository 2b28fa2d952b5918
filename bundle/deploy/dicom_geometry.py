"""The geometry of a DICOM series, and its volume as the bundle's (1, X, Y, Z) MetaTensor.

The SDK's ``DICOMSeriesToVolumeOperator`` sorts the series' instances along the slice normal and
stacks their pixels as a (D, H, W) array (slice, row, column). Its own affine scales the row
direction by PixelSpacing[0], which is the spacing *between rows*; for pixels that are not square
that puts the two in-plane spacings on the wrong axes. The affine here is computed from the
sorted instances instead: voxel axes (column, row, slice), DICOM's LPS converted to RAS, the
same affine ITK/MONAI give the series.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from monai.data import MetaTensor
from monai.deploy.core import Image
from monai.deploy.core.domain.dicom_series import DICOMSeries
from monai.deploy.core.domain.dicom_series_selection import StudySelectedSeries
from monai.utils import MetaKeys, SpaceKeys

from networks.errors import DataError
from transforms.keys import FILENAME

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
"""DICOM patient coordinates (LPS) -> the RAS world of NIfTI and MONAI."""
DHW_TO_XYZ = (2, 1, 0)
"""(slice, row, column) array -> (column, row, slice) voxel axes, the order of ITK/MONAI's DICOM volumes."""
MIN_SLICES = 2
"""Slices needed to know the step between them (a 3D volume)."""
SPATIAL_DIMS = 3


def selected_series(selection: Sequence[StudySelectedSeries]) -> DICOMSeries:
    """The series the SDK's series-to-volume operator converts: the first one selected in the first study.

    Raises:
        DataError: nothing was selected.
    """
    if not selection or not selection[0].selected_series:
        raise DataError("no DICOM series was selected from the input")
    return selection[0].selected_series[0].series


def series_affine(series: DICOMSeries) -> np.ndarray:
    """The voxel (column, row, slice) -> RAS mm affine of a series whose instances are sorted along the slice normal.

    Column index steps along a row: the row direction cosine (ImageOrientationPatient[:3]) times the
    column spacing (PixelSpacing[1]); row index steps down a column: the column cosine times
    PixelSpacing[0]; slice index steps from the first to the last ImagePositionPatient.

    Raises:
        DataError: fewer than two slices, or geometry attributes missing (names the series).
    """
    instances = [sop.get_native_sop_instance() for sop in series.get_sop_instances()]
    uid = series.SeriesInstanceUID
    if len(instances) < MIN_SLICES:
        raise DataError(f"DICOM series {uid} has {len(instances)} slice(s); a 3D volume is needed")
    first, last = instances[0], instances[-1]
    try:
        cosines = np.asarray(first.ImageOrientationPatient, dtype=np.float64)
        row_spacing, column_spacing = (float(value) for value in first.PixelSpacing)
        start = np.asarray(first.ImagePositionPatient, dtype=np.float64)
        end = np.asarray(last.ImagePositionPatient, dtype=np.float64)
    except (AttributeError, TypeError, ValueError) as exc:
        raise DataError(f"DICOM series {uid} lacks its geometry ({type(exc).__name__}: {exc})") from None
    lps = np.eye(SPATIAL_DIMS + 1)
    lps[:SPATIAL_DIMS, 0] = cosines[:SPATIAL_DIMS] * column_spacing
    lps[:SPATIAL_DIMS, 1] = cosines[SPATIAL_DIMS:] * row_spacing
    lps[:SPATIAL_DIMS, 2] = (end - start) / (len(instances) - 1)
    lps[:SPATIAL_DIMS, SPATIAL_DIMS] = start
    return LPS_TO_RAS @ lps


def series_volume(image: Image, series: DICOMSeries, source: Path) -> MetaTensor:
    """The SDK's (D, H, W) volume of ``series`` as a (1, X, Y, Z) float32 MetaTensor with the series' RAS affine.

    Args:
        image: the SDK series-to-volume operator's output (intensities already rescaled, e.g. to HU).
        series: the series it was made from (its instances sorted by that operator).
        source: the input folder, recorded as the volume's file name.

    Raises:
        DataError: the array is not 3D or does not have one slice per instance.
    """
    array = np.asarray(image.asnumpy())
    slices = len(series.get_sop_instances())
    if array.ndim != SPATIAL_DIMS or array.shape[0] != slices:
        raise DataError(
            f"DICOM series {series.SeriesInstanceUID}: volume of shape {array.shape} for {slices} slices; "
            "a single-channel 3D series is needed"
        )
    voxels = torch.from_numpy(np.ascontiguousarray(array.transpose(DHW_TO_XYZ), dtype=np.float32))[None]
    affine = torch.as_tensor(series_affine(series))
    meta = {
        FILENAME: str(source),
        MetaKeys.ORIGINAL_AFFINE: affine.clone(),
        MetaKeys.SPATIAL_SHAPE: np.asarray(voxels.shape[1:]),
        MetaKeys.SPACE: SpaceKeys.RAS,
    }
    return MetaTensor(voxels, affine=affine, meta=meta)
