"""The DICOM SEG output: the mask as a binary Segmentation (highdicom) referencing the source series.

highdicom copies the patient and study of the source instances into the SEG (so it joins the
source's StudyInstanceUID), lists every source instance in its references (SOP Instance UIDs of
the source series, SeriesInstanceUID in the Referenced Series Sequence) and ties each frame to
the instance it segments, with that instance's position and orientation. Frames without target
are left out, as highdicom and the SDK's SEG writer do by default.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
import torch
from monai.deploy.core.domain.dicom_series import DICOMSeries
from pydicom.sr.codedict import codes

from bundle.deploy import ports
from bundle.deploy.dicom_geometry import DHW_TO_XYZ
from bundle.inference import keys as K
from bundle.inference.outputs import OutputLayout
from bundle.inference.writers import VolumeWriter
from networks.errors import DataError

SEG_FILE = "seg"
"""Output kind of the DICOM SEG (``OUT/NAME_seg.dcm``)."""
XYZ_TO_DHW = DHW_TO_XYZ
"""(column, row, slice) mask axes -> (slice, row, column) frames; reversing axes is its own inverse."""

DISTRIBUTION = "medisee-bundle"
UNKNOWN_VERSION = "unknown"
SEGMENT_NUMBER = 1
SEGMENT_LABEL = "MediSee target"
"""The target is whatever the question names, so its label is generic and the question is attached."""
SEGMENT_CATEGORY = codes.SCT.Tissue
SEGMENT_TYPE = codes.SCT.Tissue
SHORT_TEXT_MAX_CHARS = 1024
"""Longest value of a DICOM ST element (Segment Description holds the question)."""
ALGORITHM_NAME = "MediSee"
MANUFACTURER = "MediSee bundle"
DEVICE_SERIAL_NUMBER = "0"
CONTENT_LABEL = "MEDISEE"
SEG_SERIES_NUMBER = 901
"""Series number of the SEG; high, so viewers list it after the acquired series."""
SEG_INSTANCE_NUMBER = 1


def software_version() -> str:
    """The installed bundle's version (written into the SEG's equipment and algorithm identification)."""
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return UNKNOWN_VERSION


class SegmentationBuilder:
    """Builds the binary DICOM SEG of one target over the instances of its source series.

    Args:
        version: software version recorded in the SEG.
    """

    def __init__(self, version: str | None = None) -> None:
        self.version = version or software_version()

    def __call__(self, mask: torch.Tensor, series: DICOMSeries, query: str) -> hd.seg.Segmentation:
        """The SEG of a (1, X, Y, Z) mask on the series' grid (X = column, Y = row, Z = sorted slice).

        Raises:
            DataError: the mask does not match the series' instances and their size.
        """
        sources = [instance.get_native_sop_instance() for instance in series.get_sop_instances()]
        frames = self.frames(mask, sources, series.SeriesInstanceUID)
        return hd.seg.Segmentation(
            source_images=sources,
            pixel_array=frames,
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=[self.segment(query)],
            series_instance_uid=hd.UID(),
            series_number=SEG_SERIES_NUMBER,
            sop_instance_uid=hd.UID(),
            instance_number=SEG_INSTANCE_NUMBER,
            manufacturer=MANUFACTURER,
            manufacturer_model_name=ALGORITHM_NAME,
            software_versions=self.version,
            device_serial_number=DEVICE_SERIAL_NUMBER,
            content_label=CONTENT_LABEL,
        )

    @staticmethod
    def frames(mask: torch.Tensor, sources: list, series_uid: str) -> np.ndarray:
        """The mask as (slice, row, column) boolean frames, one per source instance in order."""
        frames = (mask[0] > 0).permute(*XYZ_TO_DHW).cpu().numpy()
        expected = (len(sources), int(sources[0].Rows), int(sources[0].Columns))
        if frames.shape != expected:
            raise DataError(f"mask of shape {frames.shape} does not fit DICOM series {series_uid} {expected}")
        return frames

    def segment(self, query: str) -> hd.seg.SegmentDescription:
        """The description of the one segment: generic codes, MediSee as the algorithm, the question attached."""
        description = hd.seg.SegmentDescription(
            segment_number=SEGMENT_NUMBER,
            segment_label=SEGMENT_LABEL,
            segmented_property_category=SEGMENT_CATEGORY,
            segmented_property_type=SEGMENT_TYPE,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=hd.AlgorithmIdentificationSequence(
                name=ALGORITHM_NAME, family=codes.DCM.ArtificialIntelligence, version=self.version
            ),
        )
        description.SegmentDescription = query[:SHORT_TEXT_MAX_CHARS]
        return description


class SaveDicomSegd(VolumeWriter):
    """Writes ``NAME_seg.dcm`` from the mask and its source series (atomic, with the layout's overwrite rule).

    Args:
        layout: output paths and the overwrite rule (knows the ``seg`` kind).
        builder: makes the SEG dataset.
        keys: key of the (1, X, Y, Z) mask on the series' grid.
        series_key: key of the source ``DICOMSeries``.
    """

    def __init__(
        self,
        layout: OutputLayout,
        builder: SegmentationBuilder | None = None,
        keys: str = K.PRED,
        series_key: str = ports.SOURCE_SERIES,
    ) -> None:
        super().__init__(layout, SEG_FILE, keys)
        self.builder = builder or SegmentationBuilder()
        self.series_key = series_key

    def write(self, path: Path, value: torch.Tensor, data: Mapping[Hashable, Any]) -> None:
        self.builder(value, data[self.series_key], data[K.QUERY]).save_as(path)
