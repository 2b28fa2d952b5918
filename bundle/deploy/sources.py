"""What the app reads: a NIfTI file, a folder of NIfTI files, or a folder holding a DICOM study.

The kind decides the operator graph (:mod:`bundle.deploy.app`). NIfTI inputs reuse the bundle's
own volume list (:func:`bundle.inference.find_volumes`), so outputs get the same names as with
``monai.bundle run``; a folder without NIfTI files is a DICOM input, read by the SDK's DICOM
loader, which also searches its subfolders.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

from bundle.inference import keys as K
from bundle.inference.inputs import (
    NIFTI_READER,
    NIFTI_SUFFIXES,
    SERIES_READER,
    VolumeSource,
    find_volumes,
    volume_name,
)
from common.errors import DataError
from transforms.dicom_reader import read_series_headers
from transforms.dicom_series import plan_series

DICOM_MODALITIES = ("CT", "MR")
"""The modalities the app reads (the series selector's rule; MediSee's modalities)."""


class InputKind(enum.Enum):
    """How the input is read."""

    NIFTI = "nifti"
    DICOM = "dicom"


@dataclass(frozen=True)
class AppInput:
    """The app's input and the volumes it holds.

    Attributes:
        path: the file or folder given with ``-i``.
        kind: NIfTI volumes or a DICOM study.
        volumes: one entry per NIfTI file; for DICOM, one entry for the folder (outputs are named after it).
    """

    path: Path
    kind: InputKind
    volumes: tuple[VolumeSource, ...]

    def entries(self) -> list[dict[str, str]]:
        """The volumes as datalist entries (``name``), for the output layout's checks."""
        return [{K.NAME: volume.name} for volume in self.volumes]


def resolve_input(path: str | Path) -> AppInput:
    """Classifies the input and lists its volumes.

    Raises:
        DataError: the path does not exist, is a file that is not NIfTI, or is a folder without files.
    """
    path = Path(path).expanduser()
    if path.is_dir() and not any(p.is_file() for p in path.iterdir()):
        # only subfolders (a study stored per series): the SDK's DICOM loader walks them
        return _dicom_input(path)
    volumes = find_volumes(path)
    if volumes[0].reader == NIFTI_READER:
        return AppInput(path, InputKind.NIFTI, tuple(volumes))
    if path.is_file():
        raise DataError(
            f"image {path} is not a NIfTI file ({', '.join(NIFTI_SUFFIXES)}); pass a NIfTI file, a folder of them "
            "or a folder holding a DICOM series"
        )
    return _dicom_input(path)


def _dicom_input(folder: Path) -> AppInput:
    """A DICOM input named after its folder.

    Raises:
        DataError: nothing in the folder or its subfolders is a file.
    """
    if not any(p.is_file() for p in folder.rglob("*")):
        raise DataError(f"image folder {folder} holds no NIfTI files ({', '.join(NIFTI_SUFFIXES)}) and no DICOM files")
    return AppInput(folder, InputKind.DICOM, (VolumeSource(folder, volume_name(folder), SERIES_READER),))


def check_dicom_study(folder: Path, tolerance: float) -> None:
    """Applies the series selector's rule (the largest CT or MR series) and the series rules to the headers.

    The graph does the same on the SDK's loaded series; checked here, a refused series stops the run
    before the model is built.

    Raises:
        DataError: no CT or MR images, or the series is refused (names it and why).
    """
    datasets, files = read_series_headers(folder, recursive=True, modalities=DICOM_MODALITIES, warn=False)
    plan_series(datasets, files, f"DICOM series {datasets[0].get('SeriesInstanceUID', '')}", tolerance)
