"""``DicomSeriesReader``: MONAI's ``ITKReader``, reading a DICOM series folder by the rules of :mod:`transforms.dicom_series`.

For a folder, the headers are read first (pydicom, no pixels), the volume's slices chosen and
ordered and its grid decided; ITK then reads exactly those files in that order (each slice with its
own rescale to HU), and the affine is the stack's, not the one ITK would average from the first
slices. Anything else (a NIfTI, ``.mha`` or ``.nrrd`` file) is read as by ``ITKReader``.

Metadata added for DICOM: :data:`SLICE_ORIGINS` (uneven stacks only: each slice's RAS position,
the truth the result's boxes and volume are computed from) and :data:`TILT_DEGREES`.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import itk
import numpy as np
import pydicom
from monai.data import ITKReader
from monai.utils import MetaKeys, ensure_tuple

from common.errors import DataError
from transforms.dicom_series import DEFAULT_TOLERANCE, SliceStack, check_tolerance, plan_series

logger = logging.getLogger(__name__)

SLICE_ORIGINS = "slice_origins"
"""Metadata key: (slices, 3) RAS mm position of each slice's first voxel, for a stack no regular grid holds."""
TILT_DEGREES = "tilt_degrees"
"""Metadata key: the angle between the slice step and the slice normal (a sheared grid when > 0)."""
HIDDEN_PREFIX = "."
DIRECTORY_CLASS = "1.2.840.10008.1.3.10"
"""Media Storage Directory (DICOMDIR): a DICOM file that is not an image."""


@dataclass(frozen=True)
class StackImage:
    """What :meth:`DicomSeriesReader.read` returns for a series: ITK's image of the files and the stack's geometry."""

    image: Any
    stack: SliceStack


def report(stack: SliceStack, where: str) -> None:
    """Logs what was decided about a stack (left-out images, tilt, uneven spacing) as warnings."""
    for note in stack.notes:
        logger.warning("%s: %s", where, note)


def read_series_headers(
    folder: Path, recursive: bool = False, modalities: Collection[str] | None = None, warn: bool = True
) -> tuple[list[pydicom.Dataset], list[str]]:
    """The headers (no pixels) of the DICOM images of the largest series in ``folder``, and their paths.

    Args:
        folder: where the files are.
        recursive: search subfolders too (a study stored per series).
        modalities: consider only series of these modalities (e.g. CT and MR), or all.
        warn: log a warning when the folder holds several series.

    Raises:
        DataError: the folder holds no DICOM image (of those modalities).
    """
    series: dict[str, list[tuple[pydicom.Dataset, str]]] = {}
    paths = folder.rglob("*") if recursive else folder.iterdir()
    for path in sorted(p for p in paths if p.is_file() and not p.name.startswith(HIDDEN_PREFIX)):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except (pydicom.errors.InvalidDicomError, OSError, ValueError, EOFError):
            continue  # not DICOM (a README, a thumbnail): not part of the series
        if "Rows" not in ds or ds.get("SOPClassUID") == DIRECTORY_CLASS:
            continue
        if modalities is not None and str(ds.get("Modality", "")).upper() not in modalities:
            continue
        series.setdefault(str(ds.get("SeriesInstanceUID", "")), []).append((ds, str(path)))
    if not series:
        kinds = "" if modalities is None else f" {' or '.join(sorted(modalities))}"
        raise DataError(f"cannot read image {folder}: it holds no{kinds} DICOM images")
    ordered = sorted(series.items(), key=lambda item: len(item[1]), reverse=True)
    uid, chosen = ordered[0]
    if len(ordered) > 1 and warn:
        logger.warning(
            "%s holds %d DICOM series; reading the largest, %s (%d files), as the deploy app's series selector does",
            folder,
            len(ordered),
            uid,
            len(chosen),
        )
    return [ds for ds, _ in chosen], [path for _, path in chosen]


class _ItkWarningsOff:
    """Silences ITK's warnings while it reads a planned stack (its "non uniform sampling" warning is ours to give)."""

    def __enter__(self) -> None:
        self.previous = itk.Object.GetGlobalWarningDisplay()
        itk.Object.SetGlobalWarningDisplay(False)

    def __exit__(self, *exc: object) -> None:
        itk.Object.SetGlobalWarningDisplay(self.previous)


class DicomSeriesReader(ITKReader):
    """``ITKReader`` whose DICOM series follow :mod:`transforms.dicom_series` (slices chosen, sorted, placed).

    Args:
        slice_spacing_tolerance: how far a slice may lie off a regular grid, as a fraction of the step.
        kwargs: ``ITKReader`` arguments.

    Raises:
        ConfigError: the tolerance is not a non-negative number.
    """

    def __init__(self, slice_spacing_tolerance: float = DEFAULT_TOLERANCE, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tolerance = check_tolerance(slice_spacing_tolerance)

    def read(self, data: Sequence[str] | str, **kwargs: Any) -> Any:
        """A folder: its series' stack (:class:`StackImage`); anything else as ``ITKReader`` reads it.

        Raises:
            DataError: the folder holds no DICOM image, or its series is refused (names it and why).
        """
        paths = ensure_tuple(data)
        if len(paths) != 1 or not Path(paths[0]).is_dir():
            return super().read(data, **kwargs)
        folder = Path(paths[0])
        datasets, files = read_series_headers(folder)
        where = f"DICOM series in {folder}"
        stack = plan_series(datasets, files, where, self.tolerance)
        report(stack, where)
        return self.read_stack(stack, files, **kwargs)

    def read_stack(self, stack: SliceStack, files: Sequence[str], **kwargs: Any) -> StackImage:
        """ITK's image of the stack's files in slice order (``files``: the path of each source instance)."""
        sources = list(dict.fromkeys(str(files[image.source]) for image in stack.images))
        kwargs_ = {**self.kwargs, **kwargs}
        with _ItkWarningsOff():
            image = itk.imread(sources if len(sources) > 1 else sources[0], **kwargs_)
        return StackImage(image, stack)

    def get_data(self, img: Any) -> tuple[np.ndarray, dict]:
        """(X, Y, Z) array and metadata; for a stack, the slices in order and the stack's own affine.

        Raises:
            DataError: ITK decoded another number of slices than the stack holds.
        """
        if not isinstance(img, StackImage):
            return super().get_data(img)
        array, meta = super().get_data(img.image)
        stack = img.stack
        frames = stack.frames()
        if frames is not None:  # one multi-frame instance: ITK gives its frames in stored order
            if array.shape[-1] != max(frames) + 1:
                raise DataError(f"{stack.images[0].name}: ITK decoded {array.shape[-1]} frames of {max(frames) + 1}")
            array = array[..., frames]
        if tuple(array.shape) != stack.shape:
            raise DataError(f"{stack.images[0].name}: ITK decoded a volume of {array.shape}, expected {stack.shape}")
        affine = stack.affine()
        meta[MetaKeys.ORIGINAL_AFFINE] = affine
        meta[MetaKeys.AFFINE] = affine.copy()
        meta[MetaKeys.SPATIAL_SHAPE] = np.asarray(array.shape)
        meta[TILT_DEGREES] = stack.tilt_degrees
        if not stack.regular:
            meta[SLICE_ORIGINS] = stack.origins()
        return array, meta
