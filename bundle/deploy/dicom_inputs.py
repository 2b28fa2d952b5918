"""DICOM input operators: the SDK's loader and series selector, and the step to the bundle's volume.

The graph is the SDK's usual one (loader -> series selector -> series-to-volume) followed by
:class:`DicomVolumeOperator`. The two SDK subclasses only change what a user sees when the input
holds no usable series: a one-line :class:`networks.errors.DataError` naming the folder instead of
the SDK's generic exceptions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from monai.deploy.core import Fragment, Operator, OperatorSpec
from monai.deploy.exceptions import ItemNotExistsError
from monai.deploy.operators import DICOMDataLoaderOperator, DICOMSeriesSelectorOperator

from bundle.deploy import ports
from bundle.deploy.dicom_geometry import selected_series, series_volume
from bundle.inference import keys as K
from bundle.inference.inputs import VolumeSource
from networks.errors import DataError

SELECTION_RULES = json.dumps({"selections": [{"name": "CT or MR volume", "conditions": {"Modality": "(?i)^(CT|MR)$"}}]})
"""The SDK selector's rules: CT and MR series (MediSee's modalities); the largest one is used."""


class DicomStudyLoaderOperator(DICOMDataLoaderOperator):
    """The SDK's DICOM loader (all instances under ``input_folder``, grouped into studies and series).

    Named output:
        dicom_study_list: the ``DICOMStudy`` objects.
    """

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
        study_selected_series_list: the selection; the SDK converts and MediSee reads its first series.

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
    """The SDK's DICOM ``Image`` as the bundle's volume, with the affine computed from the series itself.

    Named inputs:
        image: the SDK series-to-volume operator's (D, H, W) ``Image``.
        study_selected_series_list: the selection it was made from.
    Named output:
        volume: ``{"image": (1, X, Y, Z) float32 MetaTensor (RAS affine), "name": str}``.

    Args:
        fragment: the application.
        source: the input folder and the name its outputs get.
    """

    def __init__(self, fragment: Fragment, *args: Any, source: VolumeSource, **kwargs: Any) -> None:
        self.source = source
        super().__init__(fragment, *args, **kwargs)

    def setup(self, spec: OperatorSpec) -> None:
        spec.input(ports.DICOM_IMAGE)
        spec.input(ports.SELECTED_SERIES)
        spec.output(ports.VOLUME)

    def compute(self, op_input: Any, op_output: Any, context: Any) -> None:
        """Emits the selected series as a volume.

        Raises:
            DataError: the series is not a 3D volume or lacks its geometry.
        """
        image = op_input.receive(ports.DICOM_IMAGE)
        series = selected_series(op_input.receive(ports.SELECTED_SERIES))
        volume = series_volume(image, series, self.source.path)
        op_output.emit({K.IMAGE: volume, K.NAME: self.source.name}, ports.VOLUME)
