"""The 2D images of a DICOM series, read from the instances' headers (pydicom datasets, pixels not needed).

A single-frame instance is one image; an enhanced (multi-frame) instance is one image per frame,
placed by its per-frame functional groups (Plane Position, Plane Orientation, Pixel Measures, with
the shared groups as defaults). Siemens mosaics, which tile several images in one frame, are
refused naming the file. :mod:`transforms.dicom_series` decides which images make the volume.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from common.errors import DataError

SPATIAL_DIMS = 3
MOSAIC = "MOSAIC"
SIEMENS_MOSAIC_COUNT = (0x0019, 0x100A)
"""Siemens' private NumberOfImagesInMosaic."""


@dataclass(frozen=True)
class DicomImage:
    """One 2D image of a series: a single-frame instance, or one frame of a multi-frame instance.

    Attributes:
        source: index of the instance in the datasets given to :func:`series_images`.
        frame: 0-based frame of a multi-frame instance, None for a single-frame one.
        sop_instance_uid: the instance's SOP Instance UID.
        position: ImagePositionPatient, the centre of the first pixel (LPS mm).
        orientation: ImageOrientationPatient: row cosine, then column cosine.
        spacing: PixelSpacing: between rows, between columns (mm).
        size: (rows, columns).
        name: the file (and frame) for messages.
        acquisition: the instance's AcquisitionNumber, or None.
    """

    source: int
    frame: int | None
    sop_instance_uid: str
    position: np.ndarray
    orientation: np.ndarray
    spacing: tuple[float, float]
    size: tuple[int, int]
    name: str
    acquisition: int | None = None

    @property
    def normal(self) -> np.ndarray:
        """The slice normal: row cosine x column cosine (LPS)."""
        return np.cross(self.orientation[:SPATIAL_DIMS], self.orientation[SPATIAL_DIMS:])


def _floats(value: Any, count: int, what: str, name: str) -> np.ndarray:
    try:
        array = np.asarray([float(v) for v in value], dtype=np.float64)
    except (TypeError, ValueError):
        array = np.empty(0)
    if array.shape != (count,) or not np.isfinite(array).all():
        raise DataError(f"DICOM file {name} has no usable {what} (got {value!r})")
    return array


def _group_item(group: Any, sequence: str) -> Any:
    """The first item of ``sequence`` in a functional group item, or None."""
    items = getattr(group, sequence, None) if group is not None else None
    return items[0] if items else None


def mosaic_images(ds: Any) -> int | None:
    """How many images a Siemens mosaic packs into its frame, or None when ``ds`` is no mosaic."""
    image_type = [str(v).upper() for v in (ds.get("ImageType") or [])]
    element = ds.get(SIEMENS_MOSAIC_COUNT)
    count = element.value if element is not None else None
    if MOSAIC in image_type or (isinstance(count, int) and count > 1):
        return int(count) if isinstance(count, int) else 0
    return None


def _refuse_mosaic(ds: Any, name: str) -> None:
    count = mosaic_images(ds)
    if count is None:
        return
    packed = f"{count} images" if count else "several images"
    raise DataError(
        f"DICOM file {name} is a Siemens mosaic ({packed} tiled in one {ds.get('Rows')}x{ds.get('Columns')} frame); "
        "mosaics are not unpacked here: convert the series to NIfTI first (e.g. with dcm2niix) and pass that"
    )


def _acquisition(ds: Any) -> int | None:
    try:
        return int(ds.get("AcquisitionNumber"))
    except (TypeError, ValueError):
        return None


def _image(
    source: int, frame: int | None, uid: str, position: Any, orientation: Any, spacing: Any, size: Any, name: str
) -> DicomImage:
    cosines = _floats(orientation, 2 * SPATIAL_DIMS, "ImageOrientationPatient", name)
    row_spacing, column_spacing = _floats(spacing, 2, "PixelSpacing", name)
    if row_spacing <= 0 or column_spacing <= 0:
        raise DataError(f"DICOM file {name} has PixelSpacing {list(spacing)}; both must be positive")
    return DicomImage(
        source=source,
        frame=frame,
        sop_instance_uid=uid,
        position=_floats(position, SPATIAL_DIMS, "ImagePositionPatient", name),
        orientation=cosines,
        spacing=(float(row_spacing), float(column_spacing)),
        size=(int(size[0]), int(size[1])),
        name=name,
    )


def instance_images(ds: Any, source: int, name: str) -> list[DicomImage]:
    """The images of one instance: itself, or each frame of a multi-frame instance (functional groups).

    Raises:
        DataError: a mosaic, a multi-frame instance without per-frame positions, or geometry attributes
            missing (names the file and the attribute).
    """
    _refuse_mosaic(ds, name)
    uid = str(ds.get("SOPInstanceUID", ""))
    size = (ds.get("Rows"), ds.get("Columns"))
    if None in size:
        raise DataError(f"DICOM file {name} has no Rows/Columns: not an image")
    frames = int(ds.get("NumberOfFrames") or 1)
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if frames == 1 and per_frame is None:
        spacing = ds.get("PixelSpacing") or ds.get("ImagerPixelSpacing")
        image = _image(
            source, None, uid, ds.get("ImagePositionPatient"), ds.get("ImageOrientationPatient"), spacing, size, name
        )
        return [dataclasses.replace(image, acquisition=_acquisition(ds))]
    if per_frame is None or len(per_frame) != frames:
        raise DataError(
            f"DICOM file {name} holds {frames} frames without a position for each "
            "(Per-frame Functional Groups); it cannot be placed as a volume"
        )
    shared = _group_item(ds, "SharedFunctionalGroupsSequence")
    images = []
    for frame, group in enumerate(per_frame):

        def attribute(sequence: str, keyword: str, group=group) -> Any:
            item = _group_item(group, sequence) or _group_item(shared, sequence)
            return None if item is None else item.get(keyword)

        images.append(
            _image(
                source,
                frame,
                uid,
                attribute("PlanePositionSequence", "ImagePositionPatient"),
                attribute("PlaneOrientationSequence", "ImageOrientationPatient"),
                attribute("PixelMeasuresSequence", "PixelSpacing"),
                size,
                f"{name} frame {frame + 1}",
            )
        )
    _check_one_rescale(ds, per_frame, shared, name)
    return [dataclasses.replace(image, acquisition=_acquisition(ds)) for image in images]


def _check_one_rescale(ds: Any, per_frame: Sequence, shared: Any, name: str) -> None:
    """Refuses frames with different rescales: readers apply one rescale to the whole instance."""
    values = set()
    for group in per_frame:
        item = _group_item(group, "PixelValueTransformationSequence") or _group_item(
            shared, "PixelValueTransformationSequence"
        )
        if item is not None:
            values.add((float(item.get("RescaleSlope", 1)), float(item.get("RescaleIntercept", 0))))
    if len(values) > 1:
        raise DataError(f"DICOM file {name}: its frames use {len(values)} different rescale slopes/intercepts")


def series_images(datasets: Sequence[Any], names: Sequence[str]) -> list[DicomImage]:
    """Every image of a series' instances (pydicom datasets, pixels not needed), with ``names`` for messages."""
    images = []
    for source, (ds, name) in enumerate(zip(datasets, names)):
        images.extend(instance_images(ds, source, name))
    return images
