"""DICOM series as hospitals write them, made with pydicom: geometry known exactly, one case per function.

Every writer takes a (columns, rows, slices) int16 volume and the DICOM patient (LPS) position of
each slice's first pixel, so a test can compute where every source pixel lies without reading the
files back. Files are named in reverse slice order: readers must sort by position, not by name.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import CTImageStorage, EnhancedCTImageStorage, ExplicitVRLittleEndian, MRImageStorage, generate_uid

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
"""ImageOrientationPatient of an axial slice: rows run to the patient's left, columns posterior."""
CORONAL = (1.0, 0.0, 0.0, 0.0, 0.0, -1.0)
SAGITTAL = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)
PIXEL_SPACING = (0.8, 1.1)
"""DICOM PixelSpacing: between rows, between columns (mm); not square, so swapped axes show."""
SLICE_STEP = 2.5
ORIGIN = (-20.0, 15.0, 40.0)
RESCALE_INTERCEPT = -1024.0
"""Stored values are HU + 1024, as scanners store them: a reader that skips the rescale is off by 1024."""
PREAMBLE = b"\0" * 128

PATIENT_STUDY = {
    "PatientName": "Phantom^5",
    "PatientID": "P5",
    "PatientSex": "O",
    "PatientBirthDate": "",
    "StudyDate": "20240101",
    "StudyTime": "120000",
    "StudyID": "1",
    "AccessionNumber": "",
    "ReferringPhysicianName": "",
    "BodyPartExamined": "ABDOMEN",
    "Manufacturer": "tests",
    "SeriesNumber": 1,
}
PIXEL_MODULE = {
    "SamplesPerPixel": 1,
    "PhotometricInterpretation": "MONOCHROME2",
    "BitsAllocated": 16,
    "BitsStored": 16,
    "HighBit": 15,
    "PixelRepresentation": 1,
}


def normal(orientation: Sequence[float]) -> np.ndarray:
    """The slice normal (row cosine x column cosine) of an ImageOrientationPatient."""
    return np.cross(np.asarray(orientation[:3], float), np.asarray(orientation[3:], float))


def regular_positions(count: int, orientation: Sequence[float] = AXIAL, step: float = SLICE_STEP) -> np.ndarray:
    """(count, 3) LPS positions ``step`` apart along the slice normal, from :data:`ORIGIN`."""
    return np.asarray(ORIGIN) + np.arange(count)[:, None] * step * normal(orientation)


def tilted_orientation(degrees: float) -> tuple[float, ...]:
    """An axial orientation tilted about the patient's left-right axis, as a CT gantry tilt makes it."""
    angle = math.radians(degrees)
    return (1.0, 0.0, 0.0, 0.0, math.cos(angle), -math.sin(angle))


def tilted_positions(count: int, degrees: float, step: float = SLICE_STEP) -> np.ndarray:
    """Positions of a tilted-gantry series: the table moves along the patient's axis, not along the normal."""
    del degrees  # the tilt is in the orientation; the table still steps along z
    return np.asarray(ORIGIN) + np.arange(count)[:, None] * np.array([0.0, 0.0, step])


def study(modality: str = "CT") -> dict:
    """UIDs and attributes shared by every instance of one series."""
    return {
        **PATIENT_STUDY,
        "Modality": modality,
        "StudyInstanceUID": generate_uid(),
        "SeriesInstanceUID": generate_uid(),
        "FrameOfReferenceUID": generate_uid(),
    }


def _file_dataset(sop_class: str) -> FileDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("", {}, file_meta=meta, preamble=PREAMBLE)
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
    return ds


def _stored(pixels: np.ndarray) -> bytes:
    """A (columns, rows) HU image as stored (rows x columns, HU - intercept)."""
    return np.ascontiguousarray(pixels.T - RESCALE_INTERCEPT, dtype=np.int16).tobytes()


def ct_slice(
    shared: dict,
    pixels: np.ndarray,
    position: Sequence[float],
    orientation: Sequence[float] = AXIAL,
    number: int = 1,
    spacing: Sequence[float] = PIXEL_SPACING,
    image_type: Sequence[str] = ("ORIGINAL", "PRIMARY", "AXIAL"),
) -> FileDataset:
    """One single-frame CT image of (columns, rows) HU ``pixels`` at ``position`` (LPS mm)."""
    ds = _file_dataset(CTImageStorage)
    ds.update({**shared, **PIXEL_MODULE})
    ds.ImageType = list(image_type)
    ds.InstanceNumber = number
    ds.Columns, ds.Rows = pixels.shape
    ds.ImagePositionPatient = [float(v) for v in position]
    ds.ImageOrientationPatient = [float(v) for v in orientation]
    ds.PixelSpacing = [float(v) for v in spacing]
    ds.SliceThickness = SLICE_STEP
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = RESCALE_INTERCEPT, 1, "HU"
    ds.KVP = 120
    ds.AcquisitionNumber = 1
    ds.PixelData = _stored(pixels)
    return ds


def write_series(
    folder: Path,
    volume: np.ndarray,
    positions: np.ndarray,
    orientation: Sequence[float] = AXIAL,
    shared: dict | None = None,
) -> list[FileDataset]:
    """Writes slice ``k`` of a (columns, rows, slices) HU volume at ``positions[k]``; returns the datasets in slice order."""
    folder.mkdir(parents=True, exist_ok=True)
    shared = shared or study()
    datasets = []
    for k in range(volume.shape[2]):
        ds = ct_slice(shared, volume[..., k], positions[k], orientation, number=k + 1)
        ds.filename = str(folder / f"im{volume.shape[2] - k:03d}.dcm")
        ds.save_as(ds.filename, enforce_file_format=True)
        datasets.append(ds)
    return datasets


def write_localizers(folder: Path, shared: dict, size: tuple[int, int] = (30, 24)) -> list[FileDataset]:
    """A three-plane localizer (coronal, sagittal, axial; another size) in the series ``shared`` describes."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    localizers = []
    for n, orientation in enumerate((CORONAL, SAGITTAL, AXIAL)):
        pixels = rng.integers(-100, 100, size=size).astype(np.int16)
        position = (-20.0 + 5.0 * n, 15.0, 60.0)
        ds = ct_slice(
            shared, pixels, position, orientation, number=100 + n, image_type=("ORIGINAL", "PRIMARY", "LOCALIZER")
        )
        ds.save_as(folder / f"loc{n}.dcm", enforce_file_format=True)
        localizers.append(ds)
    return localizers


def _item(**attributes) -> Dataset:
    ds = Dataset()
    ds.update(attributes)
    return ds


def write_enhanced_ct(
    path: Path,
    volume: np.ndarray,
    positions: np.ndarray,
    frame_order: Sequence[int],
    orientation: Sequence[float] = AXIAL,
) -> FileDataset:
    """One Enhanced CT instance holding every slice as a frame, stored in ``frame_order`` (slice indices).

    Geometry lives only in the functional groups: pixel measures and orientation shared, a plane
    position per frame; the rescale is in the shared Pixel Value Transformation.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    ds = _file_dataset(EnhancedCTImageStorage)
    ds.update({**study(), **PIXEL_MODULE})
    ds.ImageType = ["ORIGINAL", "PRIMARY", "VOLUME", "NONE"]
    ds.InstanceNumber = 1
    ds.ContentDate, ds.ContentTime, ds.AcquisitionDateTime = "20240101", "120000", "20240101120000"
    ds.Columns, ds.Rows = volume.shape[:2]
    ds.NumberOfFrames = len(frame_order)
    ds.PresentationLUTShape = "IDENTITY"
    ds.BurnedInAnnotation, ds.LossyImageCompression = "NO", "00"
    ds.SharedFunctionalGroupsSequence = DicomSequence(
        [
            _item(
                PixelMeasuresSequence=DicomSequence(
                    [_item(PixelSpacing=list(PIXEL_SPACING), SliceThickness=SLICE_STEP)]
                ),
                PlaneOrientationSequence=DicomSequence([_item(ImageOrientationPatient=list(orientation))]),
                PixelValueTransformationSequence=DicomSequence(
                    [_item(RescaleIntercept=RESCALE_INTERCEPT, RescaleSlope=1, RescaleType="HU")]
                ),
            )
        ]
    )
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(
        [
            _item(
                PlanePositionSequence=DicomSequence([_item(ImagePositionPatient=[float(v) for v in positions[k]])]),
                FrameContentSequence=DicomSequence([_item(StackID="1", InStackPositionNumber=int(k) + 1)]),
            )
            for k in frame_order
        ]
    )
    ds.PixelData = b"".join(_stored(volume[..., k]) for k in frame_order)
    ds.save_as(path, enforce_file_format=True)
    return ds


MOSAIC_TILES = 2
"""A mosaic of 2 x 2 tiles: four 2D images packed into one frame, as Siemens writes fMRI and DWI."""


def write_mosaic(path: Path, tile: tuple[int, int] = (16, 16), images: int = 4) -> FileDataset:
    """A Siemens-style mosaic MR image: ``images`` tiles in one frame, ImageType MOSAIC and the private count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ds = _file_dataset(MRImageStorage)
    ds.update({**study("MR"), **PIXEL_MODULE})
    ds.Manufacturer = "SIEMENS"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "MOSAIC"]
    ds.InstanceNumber = 1
    pixels = np.random.default_rng(3).integers(0, 500, size=(tile[0] * MOSAIC_TILES, tile[1] * MOSAIC_TILES))
    ds.Columns, ds.Rows = pixels.shape
    ds.ImagePositionPatient = list(ORIGIN)
    ds.ImageOrientationPatient = list(AXIAL)
    ds.PixelSpacing = [2.0, 2.0]
    ds.SliceThickness = 3.0
    ds.private_block(0x0019, "SIEMENS MR HEADER", create=True).add_new(0x0A, "US", images)  # NumberOfImagesInMosaic
    ds.PixelData = np.ascontiguousarray(pixels.T, dtype=np.int16).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return ds


def read_back(folder: Path) -> list[pydicom.Dataset]:
    """Every file of ``folder`` read with pydicom (for tests that compare what a reader made of them)."""
    return [pydicom.dcmread(p) for p in sorted(folder.iterdir()) if p.is_file()]
