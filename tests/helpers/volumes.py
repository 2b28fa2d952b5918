"""Small synthetic volumes written as NIfTI files and DICOM series, with known geometry, and the way back
from the loaded grid to the file's."""

from __future__ import annotations

import locale
import math
from pathlib import Path

import nibabel as nib
import numpy as np
from monai.data import MetaTensor
from monai.transforms import Invertd

from transforms import LoadVolumed

SHAPE = (24, 20, 12)
SPACING = (0.8, 1.2, 2.5)
ORIGIN = (10.0, -20.0, 30.0)
NUM_LABELS = 6


def axis_aligned_affine(signs: tuple[int, int, int]) -> np.ndarray:
    """Voxel -> RAS affine with :data:`SPACING`, :data:`ORIGIN` and per-axis direction signs."""
    affine = np.diag([*(s * d for s, d in zip(signs, SPACING)), 1.0])
    affine[:3, 3] = ORIGIN
    return affine


def oblique_affine() -> np.ndarray:
    """A rotated affine whose voxel axes are permuted and flipped relative to RAS."""
    yaw, roll = math.radians(25.0), math.radians(-15.0)
    rot_z = np.array([[math.cos(yaw), -math.sin(yaw), 0], [math.sin(yaw), math.cos(yaw), 0], [0, 0, 1]])
    rot_x = np.array([[1, 0, 0], [0, math.cos(roll), -math.sin(roll)], [0, math.sin(roll), math.cos(roll)]])
    # voxel axis 0 -> about -y, axis 1 -> about x, axis 2 -> z: a reorientation has work to do
    permute = np.array([[0, 1, 0], [-1, 0, 0], [0, 0, 1]])
    affine = np.eye(4)
    affine[:3, :3] = rot_z @ rot_x @ permute @ np.diag(SPACING)
    affine[:3, 3] = ORIGIN
    return affine


AFFINES = {
    "RAS": axis_aligned_affine((1, 1, 1)),
    "LPS": axis_aligned_affine((-1, -1, 1)),
    "LAS": axis_aligned_affine((-1, 1, 1)),
    "oblique": oblique_affine(),
}


def label_volume(seed: int = 0, shape: tuple[int, int, int] = SHAPE) -> np.ndarray:
    """A random int16 label map: every voxel distinct enough that a wrong flip shows."""
    return np.random.default_rng(seed).integers(0, NUM_LABELS, size=shape).astype(np.int16)


def write_nifti(path: Path, array: np.ndarray, affine: np.ndarray) -> Path:
    """Saves ``array`` with ``affine`` (sform and qform) using nibabel; returns the path."""
    nib.save(nib.Nifti1Image(array, affine), str(path))
    return path


def to_file_grid(volume: MetaTensor, reference: MetaTensor) -> MetaTensor:
    """``volume`` (on the grid ``reference`` was loaded to, e.g. from ``slices_to_volume``) on the file's grid.

    As the inference config does it: MONAI's ``Invertd`` over the loader. A volume loaded without
    reorientation (``axcodes`` None) has nothing to undo: ``Invertd`` refuses an empty trace.
    """
    if not reference.applied_operations:
        return volume
    invert = Invertd("pred", transform=LoadVolumed("image"), orig_keys="image", nearest_interp=True)
    return invert({"image": reference, "pred": volume})["pred"]


def write_dicom_series(folder: Path, array: np.ndarray) -> Path:
    """Writes a (X, Y, Z) int16 array as an axial CT DICOM series with ITK (GDCM).

    Geometry (DICOM LPS): identity directions, :data:`SPACING`, :data:`ORIGIN`. Each slice gets
    its own ImagePositionPatient; without them GDCM would stack every slice at z = 0.
    """
    import itk

    folder.mkdir(parents=True, exist_ok=True)
    image = itk.image_from_array(np.ascontiguousarray(array.transpose(2, 1, 0)))  # ITK arrays are (z, y, x)
    image.SetSpacing(SPACING)
    image.SetOrigin(ORIGIN)
    # the writer takes raw pointers: keep the Python dictionaries alive until it has run
    dictionaries = []
    for z in range(array.shape[2]):
        position = (ORIGIN[0], ORIGIN[1], ORIGIN[2] + z * SPACING[2])
        tags = {
            "0008|0016": "1.2.840.10008.5.1.4.1.1.2",  # CT image storage
            "0008|0018": f"1.2.826.0.1.3680043.2.1125.{z + 1}",
            "0008|0060": "CT",
            "0020|000d": "1.2.826.0.1.3680043.2.1125.100",
            "0020|000e": "1.2.826.0.1.3680043.2.1125.101",
            "0020|0013": str(z + 1),
            "0020|0032": "\\".join(f"{p:g}" for p in position),
            "0020|0037": "1\\0\\0\\0\\1\\0",
            "0018|0050": f"{SPACING[2]:g}",
        }
        dictionary = itk.MetaDataDictionary()
        for tag, value in tags.items():
            dictionary[tag] = value
        dictionaries.append(dictionary)
    io = itk.GDCMImageIO.New()
    io.KeepOriginalUIDOn()  # one series UID for all files, so ITK reads them as one series
    writer = itk.ImageSeriesWriter[type(image), itk.Image[itk.SS, 2]].New()
    writer.SetInput(image)
    writer.SetImageIO(io)
    writer.SetFileNames([str(folder / f"slice{z:03d}.dcm") for z in range(array.shape[2])])
    dictionary_array = itk.vector[itk.MetaDataDictionary]()
    for dictionary in dictionaries:
        dictionary_array.append(dictionary)
    writer.SetMetaDataDictionaryArray(dictionary_array)
    settings = locale.setlocale(locale.LC_ALL)
    try:
        writer.Update()
    finally:
        # GDCM's writer sets the process locale to "C" and leaves it so, which makes Python's default
        # text encoding ASCII for every later test in the session (torch inductor then fails to read
        # its own kernel templates)
        locale.setlocale(locale.LC_ALL, settings)
    return folder


LPS_TO_RAS = (-1.0, -1.0, 1.0)
"""Axis signs from ITK's LPS world to RAS."""


def itk_affine(path) -> np.ndarray:
    """Voxel -> RAS affine of a NIfTI file as ITK (and so 3D Slicer) reads it."""
    import itk  # ITK loads slowly; only the tests that read with it pay

    image = itk.imread(str(path))
    affine = np.eye(4)
    affine[:3, :3] = itk.array_from_matrix(image.GetDirection()) @ np.diag(image.GetSpacing())
    affine[:3, 3] = image.GetOrigin()
    return np.diag([*LPS_TO_RAS, 1.0]) @ affine
