"""DICOM input operators: the SDK's loader and series selector, and the step to the bundle's volume.

The graph is the SDK's loader -> series selector, then :class:`DicomVolumeOperator`, which makes the
volume by the bundle's DICOM series rules (:mod:`transforms.dicom_series`) instead of the SDK's
series-to-volume operator, which stacks every instance of the series (localizers, repeated positions,
the frames of an enhanced instance as one 2D image) and averages the slice spacing. The two SDK
subclasses only change what a user sees when the input holds no usable series: a one-line
:class:`common.errors.DataError` naming the folder instead of the SDK's generic exceptions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pydicom
from monai.deploy.core import Fragment, Operator, OperatorSpec
from monai.deploy.exceptions import ItemNotExistsError
from monai.deploy.operators import DICOMDataLoaderOperator, DICOMSeriesSelectorOperator

from bundle.deploy import ports
from bundle.deploy.dicom_geometry import selected_series, series_source, series_volume
from bundle.deploy.sources import DICOM_MODALITIES
from bundle.inference import keys as K
from bundle.inference.inputs import VolumeSource
from common.errors import DataError
from transforms.dicom_reader import DicomSeriesReader
from transforms.dicom_series import DEFAULT_TOLERANCE

SELECTION_RULES = json.dumps(
    {"selections": [{"name": "CT or MR volume", "conditions": {"Modality": f"(?i)^({'|'.join(DICOM_MODALITIES)})$"}}]}
)
"""The SDK selector's rules: CT and MR series (MediSee's modalities); the largest one is used."""


REPEATS = "medisee_repeats"
"""Attribute of a loaded ``DICOMSeries``: headers of its instances the SDK left out as repeated positions."""


class DicomStudyLoaderOperator(DICOMDataLoaderOperator):
    """The SDK's DICOM loader (all instances under ``input_folder``, grouped into studies and series).

    The SDK keeps one instance per position, the one with the higher AcquisitionNumber, else the first
    it read. The bundle's series rules keep the later acquisition too but refuse a position they
    cannot decide (:mod:`transforms.dicom_series`), so the headers of the instances the SDK left out
    stay with their series (:data:`REPEATS`) for those rules to see.

    Named output:
        dicom_study_list: the ``DICOMStudy`` objects.
    """

    def _load_data(self, files: list[str]) -> list:
        # the SDK 4.0.0 loader's one step that reads files (pinned in pyproject.toml)
        studies = super()._load_data(files)
        kept = {
            str(sop.get_native_sop_instance().SOPInstanceUID)
            for study in studies
            for series in study.get_all_series()
            for sop in series.get_sop_instances()
        }
        repeats: dict[str, list] = {}
        for name in files:
            try:
                ds = pydicom.dcmread(name, stop_before_pixels=True)
            except (pydicom.errors.InvalidDicomError, OSError, ValueError, EOFError):
                continue
            if str(ds.get("SOPInstanceUID")) not in kept and "ImagePositionPatient" in ds:
                repeats.setdefault(str(ds.get("SeriesInstanceUID")), []).append(ds)
        for study in studies:
            for series in study.get_all_series():
                setattr(series, REPEATS, repeats.get(str(series.SeriesInstanceUID), []))
        return studies

    def load_data_to_studies(self, input_path: Path) -> list:
        """The studies under ``input_path``.

        Raises:
            DataError: no DICOM study was found there (names the folder).
        """
        try:
            return super().load_data_to_studies(Path(input_path))
        except ItemNotExistsError:
            raise DataError(f"image folder {input_path} holds no DICOM study (and no NIfTI files)") from None


class VolumeSeriesSelectorOperator(DICOMSeriesSelectorOperator):
    """The SDK's series selector with MediSee's rules: every CT or MR series, the one with most instances first.

    Named input:
        dicom_study_list: the loader's studies.
    Named output:
        study_selected_series_list: the selection; MediSee reads its first series.

    Args:
        fragment: the application.
        source: the input folder, named when nothing matches.
    """

    def __init__(self, fragment: Fragment, *args: Any, source: Path, **kwargs: Any) -> None:
        self.source = source
        super().__init__(
            fragment, *args, rules=SELECTION_RULES, all_matched=True, sort_by_sop_instance_count=True, **kwargs
        )

    def filter(self, selection_rules: Any, dicom_study_list: list, *args: Any, **kwargs: Any) -> list:
        """The SDK's selection, refusing an empty one.

        Raises:
            DataError: no CT or MR series in the input (names the folder).
        """
        selection = super().filter(selection_rules, dicom_study_list, *args, **kwargs)
        if not selection:
            raise DataError(f"image folder {self.source} holds no CT or MR series")
        return selection


class DicomVolumeOperator(Operator):
    """The selected series as the bundle's volume, by the bundle's DICOM series rules.

    Named input:
        study_selected_series_list: the selector's choice.
    Named output:
        volume: ``{"image": (1, X, Y, Z) float32 MetaTensor (RAS affine), "name": str, "dicom_source": DicomSource}``.

    Args:
        fragment: the application.
        source: the input folder and the name its outputs get.
        slice_spacing_tolerance: the bundle's tolerance for uneven slices (fraction of the step).
    """

    def __init__(
        self,
        fragment: Fragment,
        *args: Any,
        source: VolumeSource,
        slice_spacing_tolerance: float = DEFAULT_TOLERANCE,
        **kwargs: Any,
    ) -> None:
        self.source = source
        self.reader = DicomSeriesReader(slice_spacing_tolerance)
        super().__init__(fragment, *args, **kwargs)

    def setup(self, spec: OperatorSpec) -> None:
        spec.input(ports.SELECTED_SERIES)
        spec.output(ports.VOLUME)

    def compute(self, op_input: Any, op_output: Any, context: Any) -> None:
        """Emits the selected series as a volume, with the instances it came from.

        Raises:
            DataError: the series is refused (names it and why).
        """
        series = selected_series(op_input.receive(ports.SELECTED_SERIES))
        dicom = series_source(series, self.reader.tolerance, getattr(series, REPEATS, ()))
        volume = series_volume(dicom, self.source.path, self.reader)
        op_output.emit({K.IMAGE: volume, K.NAME: self.source.name, ports.DICOM_SOURCE: dicom}, ports.VOLUME)
